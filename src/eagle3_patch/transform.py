"""The pure source transforms: add our hooks, remove exactly what carries our marker.

``source text -> source text``; no I/O. Anchors are libcst nodes found by class
and method name. libcst round-trips text exactly, so every byte that is not
ours stays as it was: comments, CRLF line endings, odd spacing.

Parsing a whole model file with libcst is slow (benchmarks/README.md), and most
of it is code we never touch. So ``ast`` finds the line span of each top-level class we
edit, and only that class is parsed and rewritten with libcst, then spliced
back. A class is a complete statement starting in column 0, so its span is a
valid module on its own. If a marker ever sits outside every class (a damaged
file), removal falls back to the whole module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

import libcst as cst

from eagle3_patch import ownership
from eagle3_patch.hooks import MARKER_COMMENT, HookSpec


def _has_marker(lines: Iterable[cst.EmptyLine]) -> bool:
    return any(line.comment is not None and ownership.is_marker_line(line.comment.value)
               for line in lines)


class _RemoveMarked(cst.CSTTransformer):
    """Drops functions whose leading lines carry the marker (``ownership``'s rule, in
    libcst's own grouping), and stray marker comments."""

    def leave_FunctionDef(self, original_node, updated_node):
        if _has_marker(original_node.leading_lines):
            return cst.RemoveFromParent()
        return updated_node

    def leave_EmptyLine(self, original_node, updated_node):
        if _has_marker([original_node]):
            return cst.RemoveFromParent()
        return updated_node


class _AppendMethods(cst.CSTTransformer):
    """Appends methods to the body of the (single, top-level) class of a span."""

    def __init__(self, methods: Sequence[cst.FunctionDef]) -> None:
        super().__init__()
        self.methods = methods

    def visit_ClassDef(self, node):
        return False  # only the outermost class, never a nested one

    def leave_ClassDef(self, original_node, updated_node):
        body = updated_node.body
        return updated_node.with_changes(body=body.with_changes(body=[*body.body, *self.methods]))


def _method_node(hook: HookSpec) -> cst.FunctionDef:
    node = cst.parse_module(hook.source).body[0]
    assert isinstance(node, cst.FunctionDef), hook
    # A blank line, then the marker comment that owns the method. Both are the
    # method's own leading lines, so removing the node removes them too.
    return node.with_changes(leading_lines=[
        cst.EmptyLine(indent=False),
        cst.EmptyLine(comment=cst.Comment(MARKER_COMMENT)),
    ])


def _class_spans(tree: ast.Module) -> dict[str, tuple[int, int]]:
    """name -> (first, last) 1-based line of each top-level class; the last definition wins."""
    spans = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            spans[node.name] = (ownership.first_line(node), node.end_lineno)
    return spans


def _edit_spans(source: str, edits: dict[tuple[int, int], cst.CSTTransformer],
                headers: dict[tuple[int, int], str] | None = None) -> str:
    """Each span parsed, transformed and spliced back; a span with a header is
    parsed with that line in front of it, and put back without it."""
    lines = ownership.source_lines(source, keepends=True)
    for (first, last), transformer in sorted(edits.items(), reverse=True):
        header = (headers or {}).get((first, last), "")
        segment = header + "".join(lines[first - 1:last])
        edited = cst.parse_module(segment).visit(transformer).code
        if not edited.startswith(header):
            raise ValueError(f"lines {first}-{last} did not keep their stand-in class line")
        lines[first - 1:last] = [edited[len(header):]]
    return "".join(lines)


def _class_tails(tree: ast.Module, lines: list[str]) -> dict[str, tuple[tuple[int, int], str]]:
    """name -> ((first, last) line of the class's last body statement, stand-in class line).

    Appending to a class only needs libcst to see where its body ends, so only
    its last statement is parsed, under a stand-in ``class`` line: a tenth of a
    300-line class, most of a first apply's time. A class whose last statement
    does not start its own line (``class A: pass``, ``x = 1; y = 2``) is taken
    whole.
    """
    tails = {}
    for name, (first, last) in _class_spans(tree).items():
        node = next(n for n in reversed(tree.body) if isinstance(n, ast.ClassDef) and n.name == name)
        stmt = node.body[-1]
        start = ownership.first_line(stmt)
        line = lines[start - 1]
        indent = len(line) - len(line.lstrip(" \t"))
        header_line = lines[first - 1]
        newline = header_line[len(header_line.rstrip("\r\n")):] or "\n"
        if start > node.lineno and 0 < indent == stmt.col_offset:
            tails[name] = ((start, last), f"class _EAGLE3_TAIL:{newline}")
        else:
            tails[name] = ((first, last), "")
    return tails


def remove_hooks(source: str) -> str:
    """``source`` without any method or comment that carries the marker."""
    markers = ownership.marker_lines(ownership.source_lines(source))
    if not markers:
        return source
    spans = _class_spans(ast.parse(source)).values()
    owners = {span for line in markers for span in spans if span[0] <= line <= span[1]}
    if any(not any(a <= line <= b for a, b in owners) for line in markers):
        return cst.parse_module(source).visit(_RemoveMarked()).code
    return _edit_spans(source, {span: _RemoveMarked() for span in owners})


def add_hooks(source: str, hooks: Sequence[HookSpec], tree: ast.Module | None = None) -> str:
    """``source`` with our hooks removed, then each of ``hooks`` appended to its class.

    Appending puts our method after any same-named one upstream defines in
    that class, so ours is the one Python resolves. ``tree`` is
    ``ast.parse(source)`` if the caller has it, so the file is not parsed twice.
    """
    cleaned = remove_hooks(source)
    if cleaned is not source or tree is None:
        tree = ast.parse(cleaned)
    source = cleaned
    tails = _class_tails(tree, ownership.source_lines(source, keepends=True))
    by_class: dict[str, list[cst.FunctionDef]] = {}
    for hook in hooks:
        if hook.cls not in tails:
            raise ValueError(f"no top-level class {hook.cls}")
        by_class.setdefault(hook.cls, []).append(_method_node(hook))
    return _edit_spans(source, {tails[name][0]: _AppendMethods(methods)
                                for name, methods in by_class.items()},
                       headers={tails[name][0]: tails[name][1] for name in by_class})
