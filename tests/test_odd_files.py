"""Files Python accepts but that are not plain UTF-8 regular files: BOM, coding cookie, symlink."""

from __future__ import annotations

import json

import pytest

ODD_HEADERS = {
    "utf8-bom": b"\xef\xbb\xbf",
    "latin1-cookie": b"# -*- coding: latin-1 -*-\n# Qwen3.5, adapt\xe9 pour le caf\xe9\n",
}


@pytest.mark.parametrize("header", ODD_HEADERS.values(), ids=ODD_HEADERS.keys())
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


@pytest.mark.parametrize("header", ODD_HEADERS.values(), ids=ODD_HEADERS.keys())
def test_declared_encoding_dry_run_diff_shows_only_the_added_methods(site, header):
    s = site("0.5.21")
    s.file().write_bytes(header + s.read())
    result = s.invoke("diff")
    assert result.returncode == 0, result.stderr
    removed = [line for line in result.stdout.splitlines()
               if line.startswith("-") and not line.startswith("---")]
    assert removed == [] and "+    # [EAGLE3-PATCH]" in result.stdout


@pytest.mark.parametrize("newline", [b"\r", b"\r\n"], ids=["cr", "crlf"])
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
