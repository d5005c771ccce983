"""What is ours: status and revert agree on every layout of a marker, and with libcst's grouping."""

from __future__ import annotations

import pytest
import libcst as cst

from eagle3_patch.patch import ownership
from eagle3_patch.patch.analysis import marked_methods, parse_source
from eagle3_patch.patch.hooks import HOOKS, MARKER
from eagle3_patch.patch.ownership import remove_hooks

M = f"# {MARKER} m"
# name -> (class body lines around a method f, whether f is ours)
LAYOUTS = {
    "marker right above": (["    x = 1", "", f"    {M}", "    def f(self):", "        return 1"], True),
    # status said "damaged, stray marker" while revert removed the method: the case they disagreed on
    "a user comment between": (["    x = 1", f"    {M}", "    # a user note", "    def f(self):",
                                "        return 1"], True),
    "a blank line between": (["    x = 1", f"    {M}", "", "    def f(self):", "        return 1"], True),
    "first in its class": ([f"    {M}", "    def f(self):", "        return 1"], True),
    "above its decorator": (["    x = 1", f"    {M}", "    @staticmethod", "    def f():",
                             "        return 1"], True),
    "between decorator and def": (["    x = 1", "    @staticmethod", f"    {M}", "    def f():",
                                   "        return 1"], False),
    "closing the method before": (["    def g(self):", "        return 2", f"        {M}",
                                   "    def f(self):", "        return 1"], False),
    "closing the method before, blank after": (["    def g(self):", "        return 2", f"        {M}",
                                                "", "    def f(self):", "        return 1"], False),
    "after the method before closes": (["    def g(self):", "        return 2", "        # g's end",
                                        f"    {M}", "    def f(self):", "        return 1"], True),
    "deeper after a plain statement": (["    x = 1", f"        {M}", "    def f(self):",
                                        "        return 1"], True),
    "in column 0": (["    def g(self):", "        return 2", M, "    def f(self):", "        return 1"],
                    True),
    "a string, not a comment": (["    x = 1", f"    s = '{M}'", "    def f(self):", "        return 1"],
                                False),
    "no marker": (["    x = 1", "    # a user note", "    def f(self):", "        return 1"], False),
}


def _source(body: list[str], newline: str = "\n") -> str:
    return newline.join(["import os", "", "", "class A:", *body, "", "", "class B:", "    y = 2", ""])


def _status_says_ours(text: str) -> bool:
    source = parse_source("m.py", "m.py", text.encode())
    return any(node.name == "f" for node in marked_methods(source, source.classes["A"]))


def _revert_removes(text: str) -> bool:
    return "def f(" not in remove_hooks(text)


def _libcst_removes(text: str) -> str:
    """Reference: libcst drops each function whose leading lines carry the marker, and every
    other comment line that carries it (how revert removed ours before it kept lines as they are)."""
    def marked(lines):
        return any(line.comment is not None and ownership.is_marker_line(line.comment.value)
                   for line in lines)

    class Remove(cst.CSTTransformer):
        def leave_FunctionDef(self, original_node, updated_node):
            return cst.RemoveFromParent() if marked(original_node.leading_lines) else updated_node

        def leave_EmptyLine(self, original_node, updated_node):
            return cst.RemoveFromParent() if marked([original_node]) else updated_node

    return cst.parse_module(text).visit(Remove()).code


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_status_calls_a_method_ours_exactly_when_revert_removes_it(layout, newline):
    body, ours = LAYOUTS[layout]
    text = _source(body, newline)
    assert _status_says_ours(text) is ours
    assert _revert_removes(text) is ours
    assert remove_hooks(text) == _libcst_removes(text)


def test_a_marker_the_method_does_not_own_is_a_stray_line_revert_removes():
    text = _source(LAYOUTS["closing the method before"][0])
    source = parse_source("m.py", "m.py", text.encode())
    assert ownership.marker_lines(source.lines, source.tree) == [7]
    assert M not in remove_hooks(text) and "def f(" in remove_hooks(text)


def test_marker_lines_are_counted_as_python_counts_them_past_a_form_feed():
    text = "x = 1\n\x0c\n" + _source(LAYOUTS["marker right above"][0])
    source = parse_source("m.py", "m.py", text.encode())
    (node,) = [n for n in marked_methods(source, source.classes["A"])]
    assert marked_methods(source, source.classes["A"])[node] == [node.lineno - 1]
    assert remove_hooks(text) == text.replace(f"\n    {M}\n    def f(self):\n        return 1\n", "")


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: f"{h.cls}")
def test_only_the_exact_method_we_write_is_our_hook_source(hook):
    node = ownership.spec_node(hook)
    assert ownership.is_hook_source(node, hook)
    edited = ownership.spec_node(hook._replace(source=hook.source.replace("self", "me")))
    assert not ownership.is_hook_source(edited, hook)


@pytest.mark.parametrize("data,problem", [(b"", "it is empty"), (b"  \n", "it is empty"),
                                          (b"def f(:\n", "it is not valid Python"),
                                          (b"\xff\xfe\x00", "it is not valid Python"),
                                          (b"x = 1\n", "")])
def test_unparseable_says_why_or_nothing(data, problem):
    assert ownership.unparseable(data).startswith(problem) and bool(problem) == bool(
        ownership.unparseable(data))


@pytest.mark.parametrize("text", [
    f"import os\n{M}\ndef f():\n    return 1\n",
    f"class A:\n    class Inner:\n        {M}\n        def f(self):\n            return 1\n",
    f"class A:\n    def g(self):\n        {M}\n        def f():\n            return 1\n        return f\n",
], ids=["module function", "nested class", "nested function"])
def test_a_marker_above_what_we_never_write_is_stray_and_only_it_goes(text):
    # Ours are methods of top-level classes only (we write nothing else): status calls this
    # marker stray, and revert removes that line and keeps the function.
    source = parse_source("m.py", "m.py", text.encode())
    (line,) = ownership.marker_lines(source.lines, source.tree)
    assert all(line not in found for cls in source.classes.values()
               for found in marked_methods(source, cls).values())
    assert remove_hooks(text) == "".join(x for x in text.splitlines(keepends=True) if MARKER not in x)
