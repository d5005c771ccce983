"""The world the unprivileged users run eagle3-patch in reads nothing from this checkout directly."""

from __future__ import annotations

import json
import os

from support import userenv


PROBE = """
import json, os, sys
import eagle3_patch
print(json.dumps({"file": eagle3_patch.__file__, "executable": sys.executable,
                  "uid": os.getuid(), "groups": os.getgroups()}))
"""


def test_the_user_imports_eagle3_patch_from_the_read_only_mounted_src(user_env):
    done = user_env.run("e3i7", str(user_env.python), "-c", PROBE, env=user_env.pythonpath({}),
                        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["file"] == str(user_env.src / "eagle3_patch" / "__init__.py")
    assert os.path.realpath(seen["executable"]) == str(userenv.DEBIAN_PYTHON)
    assert seen["uid"] == userenv.ensure_user("e3i7").pw_uid and seen["groups"] == []
    assert not os.access(user_env.src, os.W_OK) and not os.access(user_env.site, os.W_OK)
    assert {str(user_env.src), str(user_env.site)} <= set(userenv.mounts_under(user_env.root))
