"""The bootstrap ships as package data: `run` from an installed wheel, not from this source tree."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO
from support.releases import install_release, release_file
from support.sites import STANDIN_SGLANG_PARENTS


pytestmark = pytest.mark.slow

DEBIAN_PYTHON = "/usr/bin/python3"
FIND_SPEC = STANDIN_SGLANG_PARENTS + '''\
spec = importlib.util.find_spec("sglang.srt.models.qwen3_5")
print(json.dumps({"sitecustomize": sys.modules["sitecustomize"].__file__,
                  "sha256": hashlib.sha256(spec.loader.get_source(spec.name).encode()).hexdigest()}))
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with eagle3-patch installed from a wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
                    str(REPO)], check=True, timeout=600)
    (wheel,) = (root / "dist").glob("eagle3_patch-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    subprocess.run([str(root / "venv/bin/python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=600)
    return root / "venv"


def test_run_from_an_installed_wheel_patches_a_child_of_another_interpreter(installed, tmp_path):
    site = tmp_path / "site"
    install_release("0.5.21", site)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"))

    done = subprocess.run([str(installed / "bin/eagle3-patch"), "run", "--", DEBIAN_PYTHON, "-c",
                           FIND_SPEC, str(site)], env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    # The chain ran Debian's own sitecustomize after ours; ours came from the wheel's files.
    assert seen["sitecustomize"].startswith("/usr/lib/python3")
    plan = json.loads(subprocess.run(
        [str(installed / "bin/eagle3-patch"), "run", "--dry-run", "--json", "--", DEBIAN_PYTHON],
        env=env, capture_output=True, text=True, timeout=120, check=True).stdout)
    bootstrap = Path(plan["env"]["PYTHONPATH"].split(os.pathsep)[0])
    assert bootstrap.is_relative_to(installed) and (bootstrap / "sitecustomize.py").is_file()
    assert not bootstrap.is_relative_to(REPO)

    assert subprocess.run([str(installed / "bin/eagle3-patch"), "apply"], env=env,
                          capture_output=True, timeout=120).returncode == 0
    patched = (site / "sglang/srt/models/qwen3_5.py").read_bytes()
    assert patched != release_file("0.5.21", "sglang/srt/models/qwen3_5.py")
    assert seen["sha256"] == hashlib.sha256(patched).hexdigest()
