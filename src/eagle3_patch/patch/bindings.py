"""Which statements bind a name in a model file's global scope, and a method outside its class.

Facts for the analysis's one rule (``analysis.judged_class``): a class is judged only where
one class statement binds its name. ``ast`` only, run on a memo miss.
"""

from __future__ import annotations

import ast
import re
from typing import NamedTuple

from eagle3_patch.patch.hooks import METHOD


class Binding(NamedTuple):
    """One statement that binds a name in a module's global scope."""

    line: int
    how: str                      # "class statement", "assignment", "import from m", ...
    node: ast.AST | None = None   # the class statement, where it is one run unconditionally
    module: str | None = None     # for an import: the module it imports from


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
# A class statement always begins a line of its own; indented, it is in a block.
_INDENTED_CLASS = re.compile(r"[ \t\f]+class\s+(\w+)")
# The keyword, never part of a longer name: SGLang's model files call get_global_...() helpers.
_GLOBAL_KEYWORD = re.compile(r"global\b")
_WORD_CHARACTER = re.compile(r"\w")


def module_bindings(tree: ast.Module, lines: list[str]) -> dict[str, list[Binding]]:
    """Every statement that may bind a name in the module's global scope: at the top level or
    under an if/try/for/with there, an assignment, import, ``del``, loop or ``with`` target,
    walrus, ``except ... as``, match capture, def or class; a ``global`` declaration in any
    function; and, since a function may hand it to ``EntryClass``, a class statement of that
    name inside a function or class."""
    found: dict[str, list[Binding]] = {}

    def bind(name: str, at: ast.AST, how: str, **extra) -> None:
        found.setdefault(name, []).append(Binding(at.lineno, how, **extra))

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            is_class = isinstance(node, ast.ClassDef)
            how = ("class statement" if top else "class statement under a condition") if is_class else "def"
            bind(node.name, node, how, node=node if is_class and top else None)
            # Only what runs in the module's scope: decorators, bases, defaults; not the body.
            heads = [*node.decorator_list, *(node.bases + node.keywords if is_class else [node.args]),
                     *([node.returns] if not is_class and node.returns else [])]
            for head in heads:
                visit(head, False)
            return
        if isinstance(node, ast.Lambda):
            visit(node.args, False)
            return
        if isinstance(node, _COMPREHENSIONS):  # their own scope, but a walrus there binds the module's
            for inner in ast.walk(node):
                if isinstance(inner, ast.NamedExpr):
                    bind(inner.target.id, inner, "assignment (:=)")
            return
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bind(node.id, node, "del" if isinstance(node.ctx, ast.Del) else "assignment")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                how = f"`from {module} import *`" if name == "*" else f"import from {module}" if module else "import"
                bind(name, node, how, module=module)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bind(node.name, node, "capture")
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bind(node.rest, node, "capture")
        for child in ast.iter_child_nodes(node):
            visit(child, False)

    for statement in tree.body:
        visit(statement, True)
    if _word_starts(_GLOBAL_KEYWORD, "\n".join(lines)):  # rare in a model file: only then the whole tree is walked
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                for name in node.names:
                    bind(name, node, "`global` in a function")
    # The nested ones, found by their lines: walking every function body would cost more than the
    # whole analysis of a file otherwise does.
    seen = {b.line for bindings in found.values() for b in bindings if b.how.startswith("class statement")}
    for number, line in enumerate(lines, 1):
        nested = _INDENTED_CLASS.match(line)
        if nested and number not in seen:
            found.setdefault(nested[1], []).append(Binding(number, "class statement inside a function or class"))
    return found


def method_rebinds(tree: ast.Module, text: str, method: str = METHOD) -> tuple[int, ...]:
    """The lines that bind ``method`` other than by a ``def`` in a class's body: an attribute
    assigned or deleted (``X.method = f``, ``setattr(X, "method", f)``, in a loop or a function
    too), or, in a class body, a name assigned or a def under an ``if``/``try``. Any of them can
    replace what SGLang calls, whatever the class statement defines."""
    found = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for statement in cls.body:
            if isinstance(statement, ast.FunctionDef):
                continue
            for node in _outside_functions(statement):
                if getattr(node, "name", None) == method or (
                        isinstance(node, ast.Name) and node.id == method and not isinstance(node.ctx, ast.Load)):
                    found.append(node.lineno)
    # Elsewhere the name shows in the text: only an occurrence that is not a def or a call is walked for.
    defs, calls = _word_starts(re.compile(rf"def\s+{method}\b"), text), re.findall(rf"\.{method}\s*\(", text)
    if text.count(method) > len(defs) + len(calls):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == method and not isinstance(node.ctx, ast.Load):
                found.append(node.lineno)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("setattr", "delattr") and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant) and node.args[1].value == method):
                found.append(node.lineno)
    return tuple(sorted(set(found)))


def _outside_functions(node: ast.AST):
    """``node`` and what it holds, short of function bodies."""
    yield node
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        for child in ast.iter_child_nodes(node):
            yield from _outside_functions(child)


def _word_starts(pattern: re.Pattern, text: str) -> list[re.Match]:
    """The matches of ``pattern`` (letters first, ending a word) that also begin one, as a pattern
    starting with ``\\b`` would find them: searched by its letters, which is a string search, not
    an attempt at every position of the file."""
    return [match for match in pattern.finditer(text)
            if not (match.start() and _WORD_CHARACTER.match(text, match.start() - 1))]
