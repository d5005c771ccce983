"""Every release in the matrix: what run hands to SGLang's processes is exactly what apply writes."""

from __future__ import annotations

import base64
import gzip
import json
import sys
from pathlib import Path

import pytest

from support.releases import NATIVE, RELEASES, UNSUPPORTED


pytestmark = pytest.mark.slow


@pytest.mark.parametrize("version", RELEASES)
def test_in_memory_source_equals_what_apply_writes(site, version, tmp_path):
    s = site(version)
    cache = str(tmp_path / "cache")
    planned = s.run("run", "--dry-run", "--json", "--", sys.executable, XDG_CACHE_HOME=cache)

    if version in UNSUPPORTED:
        applied = s.run("apply", "--python", sys.executable)  # the interpreter run analysed
        assert planned.returncode == applied.returncode == 4
        assert planned.stderr == applied.stderr
        return
    applied = s.run("apply", "--json")
    assert planned.returncode == 0 and applied.returncode == 0, planned.stderr + applied.stderr
    env = json.loads(planned.stdout)["env"]
    changed = json.loads(applied.stdout)["changed"]
    if version in NATIVE:
        assert env == {} and changed == []
        return
    sources = env["EAGLE3_PATCH_INMEMORY"].partition(";")[2]
    modules = json.loads(gzip.decompress(base64.b64decode(sources)))["modules"]
    assert sorted(m["path"] for m in modules) == sorted(changed)
    for module in modules:
        assert module["data"].encode("latin-1") == Path(module["path"]).read_bytes(), module["name"]
