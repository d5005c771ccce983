"""The fast path's import budget, as ``eagle3_patch.fastpath`` names it: the one test of it.

Measured by Python itself (``-X importtime``) on the real CLI process; the
timing targets live in benchmarks/cli_speed.py, the reasons in benchmarks/README.md.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from support import fastpath
from support.serve_fixtures import write_drafter, write_target



def among(modules: set[str], names) -> set[str]:
    return {m for m in modules if any(m == n or m.startswith(n + ".") for n in names)}


def ours_unnamed(modules: set[str], named) -> set[str]:
    return {m for m in modules if m.split(".")[0] == "eagle3_patch"} - set(named)


def imported(s, *args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "eagle3_patch", *args],
                            capture_output=True, text=True, env=s.env(), timeout=120)
    assert result.returncode == 0, result.stderr
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("version", ["0.5.21", "0.5.23"], ids=["patched", "native"])
def test_repeat_apply_check_status_stay_within_the_fast_path_budget(site, version):
    s = site(version)
    assert s.run("apply").returncode == 0
    for command in ("status", "status", "check", "apply"):  # apply remembered its analysis
        modules = imported(s, command)
        assert ours_unnamed(modules, fastpath.REPEAT) == set(), command
        assert not among(modules, fastpath.HEAVY + fastpath.NOT_ON_REPEAT), command
        assert "eagle3_patch.cache.memo" in modules
        # The memo answers: nothing parses or probes (click itself imports ast).
        assert not among(modules, fastpath.MISS_ONLY), command
    assert among(imported(s, "status", "--no-cache"), fastpath.MISS_ONLY) == set(fastpath.MISS_ONLY)


def test_serve_dry_run_with_local_model_and_drafter_stays_within_the_fast_path_budget(site, tmp_path):
    s = site("0.5.21")
    assert s.run("apply").returncode == 0
    model, drafter = write_target(tmp_path / "target"), write_drafter(tmp_path / "compressed")
    args = ("serve", "--model", str(model), "--drafter", str(drafter), "--dry-run")
    for n in range(2):
        modules = imported(s, *args)
        assert ours_unnamed(modules, fastpath.REPEAT + fastpath.SERVE) == set()
        assert not among(modules, fastpath.HEAVY + fastpath.NOT_ON_SERVE)
        assert not n or not among(modules, fastpath.MISS_ONLY)
