"""The import graph of eagle3_patch: no cycle, and no import that runs back up the layers.

Read from the source (every ``import``, lazy and ``TYPE_CHECKING`` ones included, and
the ``"eagle3_patch.x:attr"`` strings the CLI loads commands by), not from a process.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import eagle3_patch

PACKAGE = Path(eagle3_patch.__file__).parent

# Lowest first. A module may import its own layer and those below it; a name ending in
# ".*" is a package with all its modules.
LAYERS: tuple[tuple[str, ...], ...] = (
    # Knows nothing of SGLang installations: errors, what is secret, shell words, the hooks, foreign programs,
    # JSON from outside, and what the SGLang processes `run` starts share with us (the bootstrap loads it by path).
    ("eagle3_patch", "sharedrules", "masking", "errors", "shellwords", "hooks", "sourcetext", "filebytes",
     "programs", "jsontext"),
    # Pure decisions on source text.
    ("probe", "states", "ownership", "transform", "bindings", "analysis"),
    # The disk: reading, writing, finding SGLang, the user's cache.
    ("reading", "writable", "lock", "locate", "backups", "leftovers", "install", "sources", "snapshot",
     "usercache"),
    # Which interpreter owns an installation, and the commands we print for it.
    ("interpreters", "hints"),
    # apply, revert, status, check and what they remember.
    ("memo", "patchplan", "engine", "revert"),
    # What is shown: results, and every error.
    ("render", "crashlog", "errorreport"),
    # Shared by the commands below serve/ and inmemory/: their options, the process handed over to.
    ("options", "handoff"),
    ("inmemory.*",),
    ("serve.*",),
    ("bench.*",),
    ("cli", "__main__"),
    # Data for tests/test_fast_paths.py: names every fast-path module, imported by none.
    ("fastpath",),
)
_LAZY = re.compile(r"eagle3_patch(\.\w+)+(:\w+)?")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["eagle3_patch", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import"
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _LAZY.fullmatch(node.value):
                targets.add(node.value.split(":")[0])
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def layer_of(module: str) -> int | None:
    short = module.removeprefix("eagle3_patch.") if module != "eagle3_patch" else module
    for rank, layer in enumerate(LAYERS):
        for entry in layer:
            if short == entry or (entry.endswith(".*") and (short + ".").startswith(entry[:-1])):
                return rank
    return None


def test_the_graph_sees_lazy_and_string_imports():
    graph = import_graph()
    assert "eagle3_patch.serve.command" in graph["eagle3_patch.cli"]  # "eagle3_patch.serve.command:serve"
    assert "eagle3_patch.analysis" in graph["eagle3_patch.sources"]  # imported inside a method


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if layer_of(m) is None] == []


def test_no_import_runs_back_up_the_layers():
    graph = import_graph()
    upward = sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                    if layer_of(target) > layer_of(module))
    assert upward == []


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for target in sorted(graph[module]):
            cycle = visit(target, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    cycles = [cycle for module in sorted(graph) if (cycle := visit(module, []))]
    assert cycles == [], " -> ".join(cycles[0])
