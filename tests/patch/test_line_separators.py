"""Characters Python reads as whitespace or as part of a comment, but that other tools treat as
line breaks or indentation: a form feed (Python resets the indentation column at it), \\v,
\\x1c-\\x1e, \\x85, \\u2028, \\u2029 (``str.splitlines`` breaks at them, Python does not).

apply and revert keep every byte that is not ours, whatever such characters the file holds.
"""

from __future__ import annotations

import ast
import hashlib
import json

import pytest

from eagle3_patch.patch.analysis import marked_methods, parse_source
from eagle3_patch.patch.hooks import MARKER, MARKER_COMMENT, HookSpec
from eagle3_patch.patch import ownership
from eagle3_patch.patch.ownership import remove_hooks
from eagle3_patch.patch.transform import add_hooks
from eagle3_patch.inmemory.memo import bytecode_key
from eagle3_patch.inmemory.payload import ModulePatch, child_env, encode
from eagle3_patch.cache.usercache import identity

from support.cli import invoke_main
from support.marks import first_fast
from support.releases import release_file
from support.servedmodule import DEBIAN_PYTHON, MODULE, PATCHED, REPORT, module_file, plain, run, sglang_site


HOOK = HookSpec("m.py", "Target", "def set_eagle3_layers_to_capture(self, ids):\n    self.ids = ids\n",
                role="decoder")
CLASS = "class Qwen3_5ForCausalLM("


def _insert(data: bytes, text: bytes, after: bytes, skip_lines: int) -> bytes:
    """``data`` with ``text`` at the start of the ``skip_lines``-th line after ``after``."""
    at = data.index(after)
    for _ in range(skip_lines):
        at = data.index(b"\n", at) + 1
    return data[:at] + text + data[at:]


# Where in Qwen3_5ForCausalLM (qwen3_5.py, 0.5.21) a form feed goes: libcst read the first
# two as indentation it could not match (exit 70), and dropped the others (bytes lost).
FORM_FEEDS = {
    "before the class's first statement": (b"\x0c", CLASS.encode(), 1),
    "before a later method": (b"\x0c", b"    def get_input_embeddings", 0),
    "on a line of its own": (b"\x0c\n", b"    def get_input_embeddings", 0),
    "before our marker": (b"\x0c", b"    " + MARKER_COMMENT.encode(), 0),
}


@pytest.mark.parametrize("where", first_fast(*FORM_FEEDS))
def test_revert_removes_only_our_methods_from_a_class_holding_a_form_feed(site, where):
    s = site("0.5.21")
    assert invoke_main("apply", "--sglang-dir", str(s.package)).exit_code == 0
    text, after, skip = FORM_FEEDS[where]
    s.file().write_bytes(_insert(s.read(), text, after, skip))
    done = invoke_main("revert", "--sglang-dir", str(s.package))
    assert done.exit_code == 0, done.stderr
    shipped = release_file("0.5.21", "sglang/srt/models/qwen3_5.py")
    if after.startswith(b"    # "):  # the form feed went with the marker line it started
        assert s.read() == shipped
    else:
        assert s.read() == _insert(shipped, text, after, skip)


@pytest.mark.parametrize("where", first_fast(*(w for w in FORM_FEEDS if w != "before our marker")))
def test_apply_keeps_a_form_feed_in_the_class_it_patches(site, where):
    s = site("0.5.21")
    text, after, skip = FORM_FEEDS[where]
    edited = _insert(s.read(), text, after, skip)
    s.file().write_bytes(edited)
    done = invoke_main("apply", "--sglang-dir", str(s.package))
    assert done.exit_code == 0, done.stderr
    assert edited.count(b"\x0c") == s.read().count(b"\x0c")
    assert invoke_main("check", "--sglang-dir", str(s.package)).exit_code == 0
    assert invoke_main("revert", "--sglang-dir", str(s.package)).exit_code == 0
    assert s.read() == edited


@pytest.mark.parametrize("char", first_fast("\x0c", "\x85", "\u2028"), ids=lambda c: f"U+{ord(c):04X}")
def test_diff_breaks_lines_where_python_does(site, char):
    s = site("0.5.21")
    data = s.read()
    end = max(n.end_lineno for n in ast.parse(data).body
              if isinstance(n, ast.ClassDef) and n.name == "Qwen3_5ForCausalLM")
    lines = data.splitlines(keepends=True)  # the release's own file: \n only
    lines[end - 1] = lines[end - 1].rstrip(b"\n") + f"  # a{char}b\n".encode()
    s.file().write_bytes(b"".join(lines))
    done = invoke_main("diff", "--json", "--sglang-dir", str(s.package))
    assert done.exit_code == 0, done.stderr
    diff = json.loads(done.stdout)["diff"]
    context = [line for line in diff.split("\n") if line.startswith(" ") and "# a" in line]
    assert context == [" " + lines[end - 1].decode().rstrip("\n")]


def test_a_traceback_through_a_served_module_names_the_line_python_ran_past_a_form_feed(tmp_path):
    site = sglang_site(tmp_path / "site")
    module = module_file(site)
    served = "\x0c\n" + PATCHED  # the raise is now on line 7
    patch = ModulePatch(MODULE, str(module.resolve()), hashlib.sha256(module.read_bytes()).hexdigest(),
                        served)
    given = {"PYTHONPATH": str(site)}
    env = {**plain(site), **given, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           **child_env(encode([patch], "test", bytecode_key(identity())), given)}
    done = run(str(DEBIAN_PYTHON), REPORT, env, tmp_path)
    assert done.returncode == 0, done.stderr
    trace = json.loads(done.stdout)["traceback"]
    assert f'File "{module.resolve()}", line 7, in fail' in trace
    assert 'raise RuntimeError("raised inside a patched method")' in trace


# Each of these, where Python allows it, inside the class we patch: in a comment, in a string.
SEPARATORS = ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
PLACES = {
    "indentation": "class Target:\n    x = 1\n{c}    y = 2\n",
    "a comment": "class Target:\n    # a{c}b\n    x = 1\n",
    "a string": "class Target:\n    s = 'a{c}b'\n    x = 1\n",
    "a docstring line": 'class Target:\n    """Doc.\n{c}    # [EAGLE3-PATCH] in a string\n    """\n',
    "the last line": "class Target:\n    x = 1  # {c}\n",
}


def _python_reads(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


# Only where Python accepts the character (\\v in indentation is a syntax error, for one).
ACCEPTED = [pytest.param(PLACES[place].format(c=char), id=f"U+{ord(char):04X}-{place}")
            for char in SEPARATORS for place in PLACES if _python_reads(PLACES[place].format(c=char))]


@pytest.mark.parametrize("source", ACCEPTED)
def test_add_then_remove_gives_back_every_byte(source):
    patched = add_hooks(source, [HOOK])
    assert patched.startswith(source.rstrip("\n"))
    parsed = parse_source("m.py", "m.py", patched.encode())
    (ours,) = marked_methods(parsed, parsed.classes["Target"])
    assert ours.name == HOOK.method and ast.unparse(ours.body[0]) == "self.ids = ids"
    assert remove_hooks(patched) == source


@pytest.mark.parametrize("comment,def_line", [("\x0c        ", "    "), ("        ", "\x0c    "),
                                               ("    \x0c        ", "    ")])
def test_a_marker_closing_the_method_before_counts_its_columns_after_a_form_feed(comment, def_line):
    # Indented deeper than f, the marker ends g's body: it is a stray line, f is not ours.
    source = (f"class A:\n    def g(self):\n        return 2\n{comment}# {MARKER} m\n"
              f"{def_line}def f(self):\n        return 1\n")
    parsed = parse_source("m.py", "m.py", source.encode())
    assert marked_methods(parsed, parsed.classes["A"]) == {}
    assert remove_hooks(source) == source.replace(f"{comment}# {MARKER} m\n", "")


@pytest.mark.parametrize("char", SEPARATORS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_marker_inside_a_string_is_not_ours_to_remove(char):
    source = f'class Target:\n    """Doc.{char}\n    # {MARKER} quoted\n    """\n    x = 1\n'
    assert remove_hooks(source) == source
    parsed = parse_source("m.py", "m.py", source.encode())
    assert ownership.marker_lines(parsed.lines, parsed.tree) == []  # status sees no stray marker


@pytest.mark.parametrize("newline", first_fast(b"\r", b"\r\n"), ids=["cr", "crlf"])
def test_apply_then_revert_gives_back_a_release_file_with_other_line_ends(site, newline):
    s = site("0.5.21")
    edited = s.read().replace(b"\n", newline)
    s.file().write_bytes(edited)
    assert invoke_main("apply", "--sglang-dir", str(s.package)).exit_code == 0
    patched = s.read()
    assert patched.count(newline * 2) == edited.count(newline * 2) + 3  # a blank line above each method
    assert invoke_main("check", "--sglang-dir", str(s.package)).exit_code == 0
    assert invoke_main("revert", "--sglang-dir", str(s.package)).exit_code == 0
    assert s.read() == edited
