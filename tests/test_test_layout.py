"""The tests' own layout: tests/ mirrors the package, what tests share lives in one support
package, never in a test module or conftest.py, and imports wait inside a function only where
``LAZY_IMPORTS`` names.

Read from the source, as test_layers reads eagle3_patch: every ``import`` (function-level
ones included) of every test module, conftest.py and the support package.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import eagle3_patch

from support.paths import TESTS
from support.realclasses import PROBE, PROBE_FILES

PACKAGE = Path(eagle3_patch.__file__).parent
SUPPORT = TESTS / "support"
# Test folders that are no package of eagle3_patch: the GPU kit's (benchmarks/gpu).
OTHER_FOLDERS = {"gpukit"}
# Where an import may wait inside a function, and of what; everywhere else imports go at the top.
# The scripts the real-SGLang venv runs import what prints, and SGLang, only once their main has
# set the process up (each says why in its docstring); bench loads only for the tests that run it.
LAZY_IMPORTS = {
    "support/probes/": ("torch", "transformers", "safetensors", "sglang", "capture_weights"),
    "support/sglang_cpu.py": ("torch", "sglang"),
    "support/cli.py": ("eagle3_patch.commands.bench",),
}


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@functools.cache
def _imports(path: Path) -> frozenset[str]:
    """The modules ``path`` imports, by absolute name (relative ones resolved in support)."""
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module
            if node.level:
                package = path.relative_to(TESTS).parent.parts
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{module}" if module else base
            found.add(module)
            if module.split(".")[0] == "support":  # `from support import x`: x may be a module
                found.update(f"{module}.{alias.name}" for alias in node.names
                             if _support_file(f"{module}.{alias.name}"))
    return frozenset(found)


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if p.name.startswith("test_") or p.name == "conftest.py")


def _is_a_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] in ("conftest", "tests") or any(part.startswith("test_") for part in parts)


def test_no_test_module_imports_another_test_module_or_conftest():
    borrowed = sorted(f"{path.relative_to(TESTS)} -> {name}" for path in _test_modules()
                      for name in _imports(path) if _is_a_test_module(name))
    assert borrowed == []


def test_the_support_package_imports_no_test_module():
    borrowed = sorted(f"{path.relative_to(TESTS)} -> {name}" for path in SUPPORT.rglob("*.py")
                      for name in _imports(path) if _is_a_test_module(name))
    assert borrowed == []


def test_every_support_module_a_test_names_exists():
    missing = sorted(f"{path.relative_to(TESTS)} -> {name}"
                     for path in [*_test_modules(), *SUPPORT.rglob("*.py")] for name in _imports(path)
                     if name.split(".")[0] == "support" and not _support_file(name))
    assert missing == []


def _support_file(name: str) -> Path | None:
    path = TESTS / Path(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_the_test_folders_mirror_the_package():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    folders = {p.parent.name for p in TESTS.glob("*/test_*.py")}
    assert folders == packages | OTHER_FOLDERS
    assert not list(TESTS.glob("*/*/test_*.py")), "one level of folders, as the package has"


def _imports_inside_functions(node: ast.AST, inside: bool = False) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if inside and isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        in_function = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        yield from _imports_inside_functions(child, in_function)


def test_imports_wait_inside_functions_only_where_named():
    waiting = []
    for path in sorted(TESTS.rglob("*.py")):
        where = path.relative_to(TESTS).as_posix()
        allowed = next((names for place, names in LAZY_IMPORTS.items() if where.startswith(place)), ())
        for node in _imports_inside_functions(_tree(path)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
            waiting += [f"{where}:{node.lineno} {module}" for module in modules
                        if not any(module == name or module.startswith(name + ".") for name in allowed)]
    assert waiting == []


def test_what_travels_with_the_probe_is_everything_of_ours_it_imports():
    # test_inmemory_real copies PROBE_FILES to an unprivileged user's folder and runs the probe
    # there, with SGLang's interpreter: no eagle3_patch, no support module left behind.
    needed, todo = set(), [PROBE]
    while todo:
        path = todo.pop()
        needed.add(path.relative_to(TESTS))
        for name in _imports(path):
            assert name.split(".")[0] != "eagle3_patch", (path, name)
            found = _support_file(name) if name.split(".")[0] == "support" else None
            if found and found.relative_to(TESTS) not in needed:
                todo.append(found)
                parent = found.parent / "__init__.py"
                if parent.is_file() and parent != found:
                    todo.append(parent)
    assert needed == set(PROBE_FILES)
