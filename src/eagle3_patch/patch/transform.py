"""The pure transform that adds our hooks: ``source text -> source text``; no I/O.

Each hook's method goes after the last statement of the last top-level class
of its name (``ast`` finds it), so ours is the one Python resolves even where
upstream defines a method of the same name. The file's own lines are spliced,
never re-rendered: only our methods pass through libcst, which indents them as
the class's body is indented and ends their lines as the class's header line
ends (CRLF stays CRLF). Every byte that is not ours stays as it was, a form feed
in the indentation (which libcst would drop) included. Removal is
``ownership.remove_hooks``: what is ours is defined there.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import libcst as cst

from eagle3_patch.patch import ownership
from eagle3_patch.patch.hooks import MARKER_COMMENT, HookSpec


class BodyOnHeaderLine(ValueError):
    """A class to append to has its body on its ``class ...:`` line: there is no indented block
    for our methods to join, and rewriting the user's line would leave revert nothing exact to undo."""

    def __init__(self, cls: str) -> None:
        super().__init__(f"class {cls} has its body on its header line")
        self.cls = cls


def _method_node(hook: HookSpec) -> cst.FunctionDef:
    node = cst.parse_module(hook.source).body[0]
    assert isinstance(node, cst.FunctionDef), hook
    # A blank line, then the marker comment that owns the method. Both are the
    # method's own leading lines, so removing the method removes them too.
    return node.with_changes(leading_lines=[
        cst.EmptyLine(indent=False),
        cst.EmptyLine(comment=cst.Comment(MARKER_COMMENT)),
    ])


def _body_indent(node: ast.ClassDef, lines: list[str]) -> str | None:
    """The indentation of the class's body; None where its body shares the header's line."""
    if ownership.header_continues(lines, node):
        return None
    for i in reversed(range(len(node.body))):
        stmt = node.body[i]
        if ownership.starts_logical_line(lines, stmt, node.body[i - 1] if i else None):
            return ownership.indentation(lines[ownership.first_line(stmt) - 1])
    return None


def _rendered(hooks: Sequence[HookSpec], indent: str, newline: str) -> str:
    """Our methods as lines of a class body indented by ``indent``, each ending in ``newline``."""
    # Rendered with \n, then given the file's line ends: libcst drops the last \r of a
    # CR-only module (the file's next blank line went with it). Our methods hold no string
    # that spans lines, so every \n is a line end.
    header, first = "class _EAGLE3_BODY:\n", f"{indent}pass\n"
    code = cst.parse_module(header + first).visit(_AppendMethods([_method_node(h) for h in hooks])).code
    return code[len(header) + len(first):].replace("\n", newline)


class _AppendMethods(cst.CSTTransformer):
    """Appends methods to the body of the stand-in class ``_rendered`` parses."""

    def __init__(self, methods: Sequence[cst.FunctionDef]) -> None:
        super().__init__()
        self.methods = methods

    def leave_ClassDef(self, original_node, updated_node):
        body = updated_node.body
        return updated_node.with_changes(body=body.with_changes(body=[*body.body, *self.methods]))


def add_hooks(source: str, hooks: Sequence[HookSpec], tree: ast.Module | None = None) -> str:
    """``source`` with our hooks removed, then each of ``hooks`` appended to its class.

    ``tree`` is ``ast.parse(source)`` if the caller has it, so the file is not parsed twice.
    """
    cleaned = ownership.remove_hooks(source, tree)
    if cleaned is not source or tree is None:
        tree = ast.parse(cleaned)
    lines = ownership.source_lines(cleaned, keepends=True)
    classes = ownership.classes(tree)
    by_class: dict[str, list[HookSpec]] = {}
    for hook in hooks:
        if hook.cls not in classes:
            raise ValueError(f"no top-level class {hook.cls}")
        by_class.setdefault(hook.cls, []).append(hook)
    for name in sorted(by_class, key=lambda n: classes[n].end_lineno, reverse=True):
        node = classes[name]
        indent = _body_indent(node, lines)
        if indent is None:
            raise BodyOnHeaderLine(name)
        header = lines[node.lineno - 1]
        newline = header[len(header.rstrip("\r\n")):] or "\n"
        methods = _rendered(by_class[name], indent, newline)
        last = lines[node.end_lineno - 1]
        if last.endswith(("\n", "\r")):
            lines.insert(node.end_lineno, methods)
        else:  # the file's last line: it keeps lacking a final line break
            lines[node.end_lineno - 1] = last + newline + methods[:-len(newline)]
    return "".join(lines)
