"""The import graph of eagle3_patch: each package a layer, no import that runs back up the layers,
and no cycle, between modules or between packages.

Read from the source (every ``import``, lazy and ``TYPE_CHECKING`` ones included, and
the ``"eagle3_patch.x:attr"`` strings the CLI loads commands by), not from a process.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import eagle3_patch

PACKAGE = Path(eagle3_patch.__file__).parent

# Lowest first: each entry a module at the top of the package or a whole package (".*"). A module
# may import its own layer and those below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    # Standard library only: the version, and what the SGLang processes `run` starts share with us
    # (the bootstrap loads sharedrules by path).
    ("eagle3_patch", "sharedrules"),
    # Text that crosses our boundary: masked for printing, shell words, JSON from outside.
    ("text.*",),
    # Typed errors and the exit-code table.
    ("errors",),
    # The pure core: hooks, states, analysis, ownership, the transform. No disk.
    ("patch.*",),
    # An installation on disk: finding it, reading it once, writing beside it, the programs around it.
    ("site.*",),
    # The user's cache and the remembered analysis.
    ("cache.*",),
    # apply, status, check, diff, revert: snapshot, decide, commit.
    ("engine.*",),
    # What is shown: results, and every error.
    ("ui.*",),
    ("inmemory.*",),
    ("serve.*",),
    ("bench.*",),
    # One module per command, and the options they share.
    ("commands.*",),
    ("cli", "__main__"),
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


@functools.cache  # read once: every test below asks for it
def import_graph() -> dict[str, frozenset[str]]:
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
        graph[name] = frozenset(target for target in targets if target in modules and target != name)
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
    assert "eagle3_patch.commands.serve" in graph["eagle3_patch.cli"]  # "eagle3_patch.commands.serve:serve"
    assert "eagle3_patch.patch.analysis" in graph["eagle3_patch.site.sources"]  # imported inside a method


def test_the_top_of_the_package_keeps_at_most_eight_modules():
    assert len(list(PACKAGE.glob("*.py"))) <= 8


def test_every_layer_is_a_top_level_module_or_a_whole_package():
    entries = [entry for layer in LAYERS for entry in layer]
    assert [e for e in entries if "." in e.removesuffix(".*")] == []
    assert [e for e in entries if not e.endswith(".*") and e != "eagle3_patch"
            and not (PACKAGE / f"{e}.py").is_file()] == []
    assert [e for e in entries if e.endswith(".*") and not (PACKAGE / e[:-2] / "__init__.py").is_file()] == []


def test_each_package_is_a_layer_of_its_own():
    assert [layer for layer in LAYERS if sum(entry.endswith(".*") for entry in layer) > 1] == []


def test_contributings_map_names_every_package_and_top_level_module_and_nothing_else():
    layout = (PACKAGE.parents[1] / "CONTRIBUTING.md").read_text(encoding="utf-8").partition("\n## Layout\n")[2]
    bullets = layout[layout.index("\n- "):].partition("\n\n")[0]  # the map: its list, up to the first blank line
    named = set(re.findall(r"`(\w+/|\w+\.py)`", bullets))
    assert named == ({f"{p.parent.name}/" for p in PACKAGE.glob("*/__init__.py")}
                     | {p.name for p in PACKAGE.glob("*.py")})


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if layer_of(m) is None] == []


def test_no_import_runs_back_up_the_layers():
    graph = import_graph()
    upward = sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                    if layer_of(target) > layer_of(module))
    assert upward == []


def package_graph() -> dict[str, set[str]]:
    """The import graph between the packages and the top-level modules, each package one node."""
    def node(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        graph.setdefault(node(module), set()).update(node(t) for t in targets if node(t) != node(module))
    return graph


def first_cycle(graph: dict[str, set[str]]) -> list[str]:
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

    return next((cycle for module in sorted(graph) if (cycle := visit(module, []))), [])


def test_the_import_graph_has_no_cycle():
    assert " -> ".join(first_cycle(import_graph())) == ""


def test_the_packages_import_each_other_without_a_cycle():
    graph = package_graph()
    assert "eagle3_patch.patch" in graph["eagle3_patch.site"]
    assert " -> ".join(first_cycle(graph)) == ""
