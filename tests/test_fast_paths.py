"""The fast path's import budget, as ``fastpath`` names it: the one test of it.

Measured by Python itself (``-X importtime``, and ``sys.modules`` at exit) on the real CLI
process; the timing targets live in benchmarks/cli_speed.py, the reasons in benchmarks/README.md.
Everywhere else imports sit at the top of their module, read from the source.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import eagle3_patch

from support import fastpath
from support.serve_fixtures import write_drafter, write_target

PACKAGE = Path(eagle3_patch.__file__).parent


def among(modules: set[str], names) -> set[str]:
    return {m for m in modules if any(m == n or m.startswith(n + ".") for n in names)}


def ours_unnamed(modules: set[str], named) -> set[str]:
    return {m for m in modules if m.split(".")[0] == "eagle3_patch"} - set(named)


# ``python -m eagle3_patch ARGS`` (runpy is how -m runs it), then the names in sys.modules: -X importtime
# reports only what an import statement loads, not what importlib.import_module does (the command
# module cli's LazyGroup loads, and its package).
_RUN_THEN_LIST = """
import runpy, sys
try:
    runpy.run_module("eagle3_patch", run_name="__main__", alter_sys=True)
finally:
    print(*("loaded: " + name for name in sys.modules), sep="\\n", file=sys.stderr)
"""


def imported(s, *args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", _RUN_THEN_LIST, *args],
                            capture_output=True, text=True, env=s.env(), timeout=120)
    assert result.returncode == 0, result.stderr
    return {line.split("|")[-1].strip() if line.startswith("import time:") else line.removeprefix("loaded: ")
            for line in result.stderr.splitlines() if line.startswith(("import time:", "loaded: "))}


def test_the_module_list_sees_the_command_cli_loads_by_name(site):
    assert {"eagle3_patch.commands", "eagle3_patch.commands.status"} <= imported(site("0.5.23"), "status")


@pytest.mark.parametrize("version", ["0.5.21", "0.5.23"], ids=["patched", "native"])
def test_repeat_apply_check_status_stay_within_the_fast_path_budget(site, version):
    s = site(version)
    assert s.run("apply").returncode == 0
    loaded: set[str] = set()
    for command in ("status", "status", "check", "apply"):  # apply remembered its analysis
        modules = imported(s, command)
        loaded |= modules
        assert ours_unnamed(modules, fastpath.REPEAT) == set(), command
        assert not among(modules, fastpath.HEAVY + fastpath.NOT_ON_REPEAT), command
        assert "eagle3_patch.cache.analysismemo" in modules
        # The memo answers: nothing parses or probes (click itself imports ast).
        assert not among(modules, fastpath.MISS_ONLY), command
    # Named there and not loaded would let an import wait inside a function of a module off the path.
    assert set(fastpath.REPEAT) - loaded == set()
    assert among(imported(s, "status", "--no-cache"), fastpath.MISS_ONLY) == set(fastpath.MISS_ONLY)


def test_serve_dry_run_with_local_model_and_drafter_stays_within_the_fast_path_budget(site, tmp_path):
    s = site("0.5.21")
    assert s.run("apply").returncode == 0
    model, drafter = write_target(tmp_path / "target"), write_drafter(tmp_path / "compressed")
    args = ("serve", "--model", str(model), "--drafter", str(drafter), "--dry-run")
    for n in range(2):
        modules = imported(s, *args)
        assert ours_unnamed(modules, fastpath.REPEAT + fastpath.SERVE) == set()
        assert set(fastpath.SERVE) - modules == set()
        assert not among(modules, fastpath.HEAVY + fastpath.NOT_ON_SERVE)
        assert not n or not among(modules, fastpath.MISS_ONLY)


def _imports_inside_functions() -> dict[str, list[tuple[int, bool]]]:
    """Per module, each import made inside a function: its line, and whether a comment on it, on
    the imports beside it or on the line just above them says why."""
    found: dict[str, list[tuple[int, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(["eagle3_patch", *path.relative_to(PACKAGE).with_suffix("").parts]).removesuffix(".__init__")
        lines = path.read_text(encoding="utf-8").splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    first = node.lineno - 1  # the imports beside it, and blank lines between them
                    while first > 0 and (not lines[first - 1].strip()
                                         or lines[first - 1].lstrip().startswith(("import ", "from "))):
                        first -= 1
                    said = any("#" in line for line in lines[max(first - 1, 0):node.end_lineno])
                    found.setdefault(module, []).append((node.lineno, said))
    return found


def test_imports_wait_inside_functions_only_on_the_fast_path_each_with_its_reason():
    allowed = set(fastpath.REPEAT + fastpath.SERVE + fastpath.LAZY_IMPORTS_ALSO_IN)
    found = _imports_inside_functions()
    assert {module for module in found if module not in allowed} == set()
    unexplained = [f"{module}:{line}" for module, imports in found.items() for line, said in imports
                   if not said and module != "eagle3_patch.inmemory.bootstrap.sitecustomize"]
    assert unexplained == []
