"""What the start-up paths import: container starts must stay near Python's import floor.

Measured by Python itself (``-X importtime``) on the real CLI process; the
timing targets live in benchmarks/cli_speed.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from serve_fixtures import write_drafter, write_target

# Each costs 10-300 ms to import and none is needed to decide or report the state.
HEAVY = {"libcst", "huggingface_hub", "importlib.metadata", "difflib"}
# A few ms each (OpenSSL, version parsing, path objects, process and temp-file
# plumbing, the in-memory planner): what a repeated apply, check or status must
# not pay for.
NOT_ON_REPEAT = {"hashlib", "packaging", "pathlib", "subprocess", "tempfile",
                 "eagle3_patch.inmemory", "eagle3_patch.serve"}


# What only a memo miss needs: parsing the model files and probing their methods.
MISS_ONLY = {"eagle3_patch.analysis", "eagle3_patch.probe"}


def heavy(modules: set[str], names: set[str] = HEAVY) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in names)}


def imported(s, *args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "eagle3_patch", *args],
                            capture_output=True, text=True, env=s.env(), timeout=120)
    assert result.returncode == 0, result.stderr
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("version", ["0.5.21", "0.5.23"], ids=["patched", "native"])
def test_repeat_apply_check_status_import_nothing_heavy(site, version):
    s = site(version)
    assert s.run("apply").returncode == 0
    for command in ("status", "status", "check", "apply"):  # apply remembered its analysis
        modules = imported(s, command)
        assert not heavy(modules, HEAVY | NOT_ON_REPEAT), command
        assert "eagle3_patch.memo" in modules
        # The memo answers: nothing parses or probes (click itself imports ast).
        assert not heavy(modules, MISS_ONLY), command
    assert heavy(imported(s, "status", "--no-cache"), MISS_ONLY) == MISS_ONLY


def test_serve_dry_run_with_local_model_and_drafter_imports_nothing_heavy(site, tmp_path):
    s = site("0.5.21")
    assert s.run("apply").returncode == 0
    model, drafter = write_target(tmp_path / "target"), write_drafter(tmp_path / "compressed")
    args = ("serve", "--model", str(model), "--drafter", str(drafter), "--dry-run")
    for n in range(2):
        modules = imported(s, *args)
        assert not heavy(modules)
        # The interpreter to exec is this one: asked in-process; a launch that
        # writes to disk needs nothing of the in-memory hand-off.
        assert not heavy(modules, {"subprocess", "eagle3_patch.inmemory.planner", "hashlib"})
        assert not n or not heavy(modules, MISS_ONLY)
