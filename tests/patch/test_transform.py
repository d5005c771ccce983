"""Before/after pairs for the pure transforms (no disk, no SGLang)."""

from __future__ import annotations

import ast

import pytest

from eagle3_patch.patch.hooks import HOOKS, MARKER_COMMENT, HookSpec
from eagle3_patch.patch.ownership import remove_hooks
from eagle3_patch.patch.transform import add_hooks

from support.reference import whole_class_append

HOOK = HookSpec("m.py", "Target", "def set_eagle3_layers_to_capture(self, ids):\n    self.ids = ids\n",
                role="decoder")

BEFORE = '''\
import os


class Target(Base):
    """Doc."""

    def forward(self, x):
        # a comment inside a neighbouring method
        return x  # trailing


class Other:
    pass
'''

AFTER = f'''\
import os


class Target(Base):
    """Doc."""

    def forward(self, x):
        # a comment inside a neighbouring method
        return x  # trailing

    {MARKER_COMMENT}
    def set_eagle3_layers_to_capture(self, ids):
        self.ids = ids


class Other:
    pass
'''


def test_add_appends_marked_method_at_end_of_its_class():
    assert add_hooks(BEFORE, [HOOK]) == AFTER


def test_remove_restores_exact_original():
    assert remove_hooks(AFTER) == BEFORE


def test_remove_without_marker_is_identity():
    assert remove_hooks(BEFORE) is BEFORE


def test_add_twice_gives_same_text():
    once = add_hooks(BEFORE, [HOOK])
    assert add_hooks(once, [HOOK]) == once


def test_crlf_file_keeps_crlf_everywhere():
    crlf = BEFORE.replace("\n", "\r\n")
    patched = add_hooks(crlf, [HOOK])
    assert patched == AFTER.replace("\n", "\r\n")
    assert remove_hooks(patched) == crlf


@pytest.mark.parametrize("source", [BEFORE, BEFORE.rstrip("\n")], ids=["final-newline", "no-final-newline"])
def test_cr_only_file_keeps_every_line_break(source):
    # libcst drops the last \r of what it renders with CR-only line ends: the blank line
    # after our method went, and revert could not give the file back.
    cr = source.replace("\n", "\r")
    patched = add_hooks(cr, [HOOK])
    expected = AFTER.replace("\n", "\r")
    assert patched == (expected if source.endswith("\n") else expected.rstrip("\r"))
    assert remove_hooks(patched) == cr
    last = "class Target:\r    x = 1"  # the class ends the file without a line break
    assert add_hooks(last, [HOOK]).endswith("\r        self.ids = ids")
    assert remove_hooks(add_hooks(last, [HOOK])) == last


@pytest.mark.parametrize("last", ["x = 1; \\\n        y = 2", "x = 1; \\\n  y = 2", "x = 1 \\\n  ; y = 2",
                                  "x = 1; \\\n\\\n y = 2"])
def test_a_statement_continuing_the_line_before_does_not_set_the_methods_indentation(last):
    # After a backslash, y starts its physical line but not its logical line: its column is
    # not the body's indentation (the result was "not valid Python", exit 5, for a valid file).
    source = f"class Target:\n    {last}\n\n\nx = 2\n"
    patched = add_hooks(source, [HOOK])
    assert "\n    def set_eagle3_layers_to_capture(self, ids):\n        self.ids = ids\n" in patched
    ast.parse(patched)
    assert remove_hooks(patched) == source


def test_a_backslash_ending_a_comment_continues_nothing():
    source = "class Target:\n    x = 1; y = 0  # c \\\n    y = 2\n"
    patched = add_hooks(source, [HOOK])
    assert "\n    def set_eagle3_layers_to_capture(self, ids):\n" in patched
    assert remove_hooks(patched) == source


def test_method_lands_in_last_definition_of_class_and_not_in_nested_class():
    source = ("class Target:\n    x = 1\n\nclass Target:\n"
              "    class Target:\n        pass\n    y = 2\n")
    patched = add_hooks(source, [HOOK])
    tree = ast.parse(patched)
    first, last = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert not any(isinstance(n, ast.FunctionDef) for n in first.body)
    assert [n.name for n in last.body if isinstance(n, ast.FunctionDef)] == [HOOK.method]
    nested = next(n for n in last.body if isinstance(n, ast.ClassDef))
    assert not any(isinstance(n, ast.FunctionDef) for n in nested.body)


def test_our_method_comes_after_an_upstream_method_of_the_same_name():
    source = "class Target:\n    def set_eagle3_layers_to_capture(self, ids):\n        pass\n"
    patched = add_hooks(source, [HOOK])
    defs = [n for n in ast.parse(patched).body[0].body]
    assert len(defs) == 2 and ast.unparse(defs[-1].body[0]) == "self.ids = ids"
    assert remove_hooks(patched) == source


def test_file_without_final_newline_round_trips():
    source = "class Target:\n    def f(self):\n        return 1"
    patched = add_hooks(source, [HOOK])
    ast.parse(patched)
    assert remove_hooks(patched) == source


def test_tab_indented_class_gets_tab_indented_method():
    source = "class Target:\n\tdef f(self):\n\t\treturn 1\n"
    patched = add_hooks(source, [HOOK])
    assert "\n\tdef set_eagle3_layers_to_capture(self, ids):\n\t\tself.ids = ids\n" in patched
    assert remove_hooks(patched) == source


def test_stray_marker_comment_outside_classes_is_removed():
    damaged = f"x = 1\n{MARKER_COMMENT}\ny = 2\n"
    assert remove_hooks(damaged) == "x = 1\ny = 2\n"


def test_edited_marked_method_is_still_ours_to_remove():
    edited = AFTER.replace("self.ids = ids", "self.ids = list(ids)  # user edit")
    assert remove_hooks(edited) == BEFORE


def test_missing_class_is_a_value_error():
    with pytest.raises(ValueError, match="no top-level class Target"):
        add_hooks("class Other:\n    pass\n", [HOOK])


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: f"{h.file}:{h.cls}")
def test_every_declared_hook_compiles_and_names_the_method(hook):
    node = ast.parse(hook.source).body[0]
    assert isinstance(node, ast.FunctionDef) and node.name == hook.method
    compile(hook.source, hook.file, "exec")



@pytest.mark.parametrize("source", [
    BEFORE,
    "class Target:\n    x = 1; y = 2\n",
    "class Target:\n    @property\n    @staticmethod\n    def f():\n        return 1\n",
    "class Target:\n    def f(self):\n        return 1\n        # inner trailing\n    # class trailing\n\nx = 1\n",
    "class Target(\n    Base,\n):\n    '''Doc.'''\n    x = (1,\n         2)\n",
    "@decorated\nclass Target:\n\tdef f(self):\n\t\treturn 1\n\n\nclass Other:\n\tpass\n",
    "class Target:\n    def f(self):\n        return 1",
], ids=["neighbours", "semicolons", "decorated-last", "trailing-comments",
        "multiline-header", "tabs", "no-final-newline"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_appending_after_the_last_statement_equals_appending_to_the_whole_class(source, newline):
    source = source.replace("\n", newline)
    patched = add_hooks(source, [HOOK])
    assert patched == whole_class_append(source, [HOOK])
    assert remove_hooks(patched) == source
