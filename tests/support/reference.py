"""Reference implementations the code under test is compared with, written another way."""

from __future__ import annotations

import ast

import libcst as cst

from eagle3_patch.patch.hooks import MARKER_COMMENT


def whole_class_append(source: str, hooks) -> str:
    """Reference: libcst over each whole top-level class (not just its tail), spliced back."""
    class Append(cst.CSTTransformer):
        def __init__(self, methods):
            super().__init__()
            self.methods = methods

        def visit_ClassDef(self, node):
            return False

        def leave_ClassDef(self, original_node, updated_node):
            body = updated_node.body
            return updated_node.with_changes(body=body.with_changes(body=[*body.body, *self.methods]))

    lines = source.splitlines(keepends=True)
    spans = {n.name: (min([n.lineno, *(d.lineno for d in n.decorator_list)]), n.end_lineno)
             for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    for first, last in sorted({spans[h.cls] for h in hooks}, reverse=True):
        methods = [cst.parse_module(h.source).body[0].with_changes(leading_lines=[
            cst.EmptyLine(indent=False), cst.EmptyLine(comment=cst.Comment(MARKER_COMMENT))])
            for h in hooks if spans[h.cls] == (first, last)]
        segment = cst.parse_module("".join(lines[first - 1:last])).visit(Append(methods)).code
        lines[first - 1:last] = [segment]
    return "".join(lines)
