"""Files Python accepts but that are not plain UTF-8 regular files: BOM, coding cookie, symlink."""

from __future__ import annotations

import ast
import json

import pytest

from support.marks import first_fast


ODD_HEADERS = {
    "utf8-bom": b"\xef\xbb\xbf",
    "latin1-cookie": b"# -*- coding: latin-1 -*-\n# Qwen3.5, adapt\xe9 pour le caf\xe9\n",
}


@pytest.mark.parametrize("header", first_fast(*ODD_HEADERS.values()), ids=ODD_HEADERS.keys())
def test_declared_encoding_is_patched_and_reverted_byte_exact(site, header):
    s = site("0.5.21")
    s.file().write_bytes(header + s.read())
    original = s.read()
    applied = s.invoke("apply")
    assert applied.returncode == 0, applied.stderr
    assert s.read().startswith(header)
    assert json.loads(s.invoke("status", "--json").stdout)["state"] == "patched"
    assert s.invoke("check").returncode == 0
    reverted = s.invoke("revert")
    assert reverted.returncode == 0, reverted.stderr
    assert s.read() == original


@pytest.mark.parametrize("header", first_fast(*ODD_HEADERS.values()), ids=ODD_HEADERS.keys())
def test_declared_encoding_dry_run_diff_shows_only_the_added_methods(site, header):
    s = site("0.5.21")
    s.file().write_bytes(header + s.read())
    result = s.invoke("diff")
    assert result.returncode == 0, result.stderr
    removed = [line for line in result.stdout.splitlines()
               if line.startswith("-") and not line.startswith("---")]
    assert removed == [] and "+    # [EAGLE3-PATCH]" in result.stdout


@pytest.mark.parametrize("newline", first_fast(b"\r", b"\r\n"), ids=["cr", "crlf"])
def test_a_coding_cookie_counts_in_a_file_whose_lines_end_in_cr(site, newline):
    # Python ends a line at \r; reading "lines" up to \n made the whole CR-only file the
    # cookie's line, decoded as UTF-8 before the cookie was seen: "not valid Python", exit 5.
    s = site("0.5.21")
    edited = (ODD_HEADERS["latin1-cookie"] + s.read()).replace(b"\n", newline)
    s.file().write_bytes(edited)
    compile(edited, "qwen3_5.py", "exec")  # Python reads it
    assert s.invoke("apply").returncode == 0
    assert s.invoke("check").returncode == 0
    assert s.invoke("revert").returncode == 0
    assert s.read() == edited


def test_unknown_coding_cookie_is_refused_as_unreadable(site):
    s = site("0.5.21")
    s.file().write_bytes(b"# -*- coding: no-such-codec -*-\n" + s.read())
    before = s.read()
    result = s.invoke("apply")
    assert result.returncode == 5 and "not valid Python" in result.stderr
    assert "Traceback" not in result.stderr and s.read() == before


def test_symlinked_target_stays_a_link_and_its_target_is_patched_and_reverted(site, tmp_path):
    s = site("0.5.21")
    real = s.link_to_store(tmp_path / "store")
    original = real.read_bytes()
    applied = s.invoke("apply")
    assert applied.returncode == 0, applied.stderr
    assert s.file().is_symlink() and s.file().resolve() == real
    assert b"[EAGLE3-PATCH]" in real.read_bytes()
    assert s.file("qwen3_5.py.eagle3-bak").read_bytes() == original   # beside the link
    assert sorted(p.name for p in real.parent.iterdir()) == ["qwen3_5.py"]
    assert s.invoke("check").returncode == 0
    reverted = s.invoke("revert")
    assert reverted.returncode == 0, reverted.stderr
    assert s.file().is_symlink() and s.file().resolve() == real
    assert real.read_bytes() == original
    assert not s.file("qwen3_5.py.eagle3-bak").exists()


def test_symlinked_target_in_a_read_only_store_is_refused_untouched(site, tmp_path):
    s = site("0.5.21")
    real = s.link_to_store(tmp_path / "store", read_only=True)
    result = s.invoke("apply")
    assert result.returncode == 6 and "read-only" in result.stderr
    assert s.file().is_symlink() and b"[EAGLE3-PATCH]" not in real.read_bytes()
    assert not s.file("qwen3_5.py.eagle3-bak").exists()


# A fork may shorten a wrapper that adds nothing to one line; Python accepts it, and our
# methods have no indented block to be appended to.
HEADER_LINE_CLASS = b"\nclass Qwen3_5MoeForConditionalGeneration(Qwen3VLForConditionalGeneration): pass\n"


@pytest.mark.parametrize("command", first_fast((("apply",),), (("diff",),),
                                                (("run", "--dry-run", "--", "python", "-c", "0"),)), ids=" ".join)
def test_a_class_with_its_body_on_its_header_line_is_refused_untouched_not_a_bug(site, command):
    s = site("0.5.21")
    s.file().write_bytes(_with_class(s.read(), "Qwen3_5MoeForConditionalGeneration", HEADER_LINE_CLASS))
    before = _model_files(s)
    done = s.invoke(*command)
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert f"class Qwen3_5MoeForConditionalGeneration in {s.file()}" in done.stderr
    assert "its body is on its header line" in done.stderr
    assert "pip install --force-reinstall --no-deps sglang==0.5.21" in done.stderr
    assert _model_files(s) == before
    assert s.invoke("status").returncode == 0


def _with_class(data: bytes, name: str, new: bytes) -> bytes:
    """``data`` with its top-level class ``name`` replaced by ``new``, as a fork would write it
    (defined twice, the class would be refused as ambiguous: test_twin_classes.py)."""
    lines = data.splitlines(keepends=True)
    node = next(n for n in ast.parse(data).body if isinstance(n, ast.ClassDef) and n.name == name)
    return b"".join(lines[:node.lineno - 1]) + new + b"".join(lines[node.end_lineno:])


def _model_files(s) -> dict[str, bytes]:
    """Everything in the models folder but apply's lock, which it takes before it decides."""
    return {p.name: p.read_bytes() for p in s.models.iterdir() if p.name != ".eagle3-patch.lock"}


# Python's own parser gives up on these (RecursionError, MemoryError): the file cannot be
# imported either, so it is "not valid Python", not a bug of ours.
TOO_DEEP = {
    "long-sum": "\nX = 1" + "+1" * 300_000 + "\n",
    "long-attribute-chain": "\nX = a" + ".b" * 200_000 + "\n",
    "many-unary-minus": "\nX = " + "-" * 200_000 + "1\n",
}


@pytest.mark.parametrize("command", first_fast("status", "apply", "revert"))
@pytest.mark.parametrize("tail", first_fast(*TOO_DEEP.values()), ids=TOO_DEEP.keys())
def test_a_file_too_deep_for_pythons_parser_is_not_valid_python_not_a_bug(site, tail, command):
    s = site("0.5.21")
    s.file().write_bytes(s.read() + tail.encode())
    before = _model_files(s)
    done = s.invoke(command)
    assert done.returncode == 5, done.stderr
    assert f"{s.file()} is not valid Python" in done.stderr and "internal error" not in done.stderr
    assert _model_files(s) == before


@pytest.mark.parametrize("header_line_body", first_fast(
    b"\nclass Qwen3_5MoeForConditionalGeneration(Qwen3VLForConditionalGeneration): \\\n    pass\n",
    b"\nclass Qwen3_5MoeForConditionalGeneration(\n    Qwen3VLForConditionalGeneration\n):  \\\n  x = 1\n",
), ids=["backslash-then-pass", "multi-line-header-backslash"])
def test_a_body_joined_to_its_header_by_a_backslash_is_on_the_header_line(site, header_line_body):
    """The statement sits on a line of its own but continues the header's logical line:
    our indented methods after it would not parse, so the class is refused as on one line."""
    s = site("0.5.21")
    s.file().write_bytes(_with_class(s.read(), "Qwen3_5MoeForConditionalGeneration", header_line_body))
    before = _model_files(s)
    done = s.invoke("apply")
    assert done.returncode == 5, done.stderr
    assert "its body is on its header line" in done.stderr and "not valid Python" not in done.stderr
    assert _model_files(s) == before


def test_a_models_folder_that_is_a_file_holds_no_backup_and_nothing_to_revert(site):
    # Reading a backup through it was ENOTDIR, taken for an unreadable backup: status said each
    # backup "is still there" (revert --from-backup puts it back), and revert failed with exit 6
    # saying the folder was not writable by this user (run it with sudo).
    s = site("0.5.21")
    for path in s.models.iterdir():
        path.unlink()
    s.models.rmdir()
    s.models.write_text("not a folder\n")
    status, reverted = s.invoke("status", "--json"), s.invoke("revert")
    assert status.returncode == 0 and json.loads(status.stdout)["notes"] == [], status.stdout
    assert reverted.returncode == 0, reverted.stderr
    assert "Nothing to revert" in reverted.stdout and s.models.read_text() == "not a folder\n"
