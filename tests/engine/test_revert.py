"""revert keeps its promise or refuses; --from-backup restores only a provably shipped file."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import shlex
import shutil
import sys

import pytest

from support.marks import first_fast
from support.releases import install_release, release_file



MODELS = "sglang/srt/models/"
SHIPPED = {name: MODELS + name for name in ("qwen3_5.py", "qwen3_5_text.py")}


def _ours(s):
    """Every file in the models folder: the target files and our backups beside them."""
    return {p.name: p.read_bytes() for p in s.models.iterdir() if p.is_file()}


def _drop_marker_lines(data: bytes) -> bytes:
    return b"".join(line for line in data.splitlines(keepends=True) if b"[EAGLE3-PATCH]" not in line)


DAMAGE = {
    "markers deleted": _drop_marker_lines,
    "markers reworded": lambda data: data.replace(b"[EAGLE3-PATCH]", b"[EAGLE3 PATCH]"),
    "emptied": lambda data: b"",
    "not valid Python": lambda data: data + b"\ndef broken(:\n",
}


@pytest.mark.parametrize("damage", first_fast(*DAMAGE))
def test_revert_refuses_what_it_cannot_undo_exactly_and_touches_nothing(site, damage):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    s.file().write_bytes(DAMAGE[damage](s.read()))
    before = _ours(s)
    result = s.invoke("revert")
    assert result.returncode == 11, result
    assert "Traceback" not in result.stderr
    assert _ours(s) == before   # the file, the other patched file and both backups
    assert "eagle3-patch revert --from-backup\n" in result.stderr
    pip = f"{shlex.quote(sys.executable)} -m pip install --force-reinstall --no-deps sglang==0.5.21"
    assert pip in result.stderr
    assert "would downgrade" not in result.stderr + result.stdout


@pytest.mark.slow
def test_refusal_hints_repeat_the_selector_the_user_typed(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    s.file().write_bytes(b"")
    result = s.invoke("revert", "--sglang-dir", str(s.package))
    assert result.returncode == 11
    assert f"eagle3-patch revert --from-backup --sglang-dir {s.package}\n" in result.stderr


@pytest.mark.parametrize("damage", first_fast(*reversed(DAMAGE)))
def test_from_backup_puts_back_exactly_the_shipped_files(site, damage):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    s.file().write_bytes(DAMAGE[damage](s.read()))
    result = s.invoke("revert", "--from-backup", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["state"] == "unpatched" and report["outcome"] == "reverted"
    for name, shipped in SHIPPED.items():
        assert s.read(name) == release_file("0.5.21", shipped)
    assert not [name for name in _ours(s) if ".eagle3-bak" in name]


@pytest.mark.slow  # test_revert_decisions proves the refusal in this process, from the snapshot
def test_from_backup_refuses_a_backup_pip_did_not_install(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    s.file().write_bytes(b"")
    backup = s.file("qwen3_5.py.eagle3-bak")
    backup.write_bytes(backup.read_bytes() + b"# not what pip installed\n")
    before = _ours(s)
    restore = s.invoke("revert", "--from-backup")
    assert restore.returncode == 11
    assert "not the one pip recorded for SGLang 0.5.21" in restore.stderr
    plain = s.invoke("revert")
    assert plain.returncode == 11 and "--from-backup" not in plain.stderr
    assert "-m pip install --force-reinstall --no-deps sglang==0.5.21" in plain.stderr
    assert _ours(s) == before


def _forget_record(s):
    """A source tree or an editable install: pip recorded no hash for the model files."""
    for record in s.root.glob("sglang-*.dist-info/RECORD"):
        record.unlink()


@pytest.mark.slow
def test_without_pips_record_from_backup_trusts_our_own_record(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    _forget_record(s)
    s.file().write_bytes(_drop_marker_lines(s.read()))
    assert s.invoke("revert").returncode == 11
    assert s.invoke("revert", "--from-backup").returncode == 0
    assert s.read() == release_file("0.5.21", SHIPPED["qwen3_5.py"])


@pytest.mark.slow
def test_without_either_record_from_backup_refuses(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    _forget_record(s)
    s.file().write_bytes(b"")
    s.file("qwen3_5.py.eagle3-bak.json").write_text("{not json")
    before = _ours(s)
    result = s.invoke("revert", "--from-backup")
    assert result.returncode == 11 and "record is corrupt" in result.stderr
    assert _ours(s) == before


def test_revert_removes_exactly_our_methods_around_user_edits_on_both_sides(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    edited = b"# mine, first line\n" + s.read().replace(b"class Qwen3_5ForCausalLM",
                                                       b"# mine, mid-file\nclass Qwen3_5ForCausalLM", 1)
    s.file().write_bytes(edited)
    assert s.invoke("revert").returncode == 0
    shipped = release_file("0.5.21", SHIPPED["qwen3_5.py"])
    assert s.read() == b"# mine, first line\n" + shipped.replace(
        b"class Qwen3_5ForCausalLM", b"# mine, mid-file\nclass Qwen3_5ForCausalLM", 1)
    assert not s.file("qwen3_5.py.eagle3-bak").exists()


@pytest.mark.parametrize("version,state", [("0.5.21", "unpatched"), ("0.5.22", "native")])
@pytest.mark.slow
def test_revert_json_reports_the_state_after_it_with_its_files(site, version, state):
    s = site(version)
    assert s.invoke("apply").returncode == 0
    report = json.loads(s.invoke("revert", "--json").stdout)
    assert report["state"] == state and report["capture_works"] is (state == "native")
    assert [f["file"] for f in report["files"]] == ["qwen3_5.py", "qwen3_5_text.py"]


@pytest.mark.slow
def test_apply_json_reports_the_state_after_it_and_dry_run_the_state_now(site):
    s = site("0.5.21")
    dry = json.loads(s.invoke("apply", "--dry-run", "--json").stdout)
    assert dry["state"] == "unpatched" and "+    # [EAGLE3-PATCH]" in dry["diff"]
    done = json.loads(s.invoke("apply", "--json").stdout)
    assert done["state"] == "patched" and done["capture_works"] is True
    assert [f["state"] for f in done["files"]] == ["patched", "patched"]
    assert done["files"][0]["backup"]["backup"] == "present"
    again = json.loads(s.invoke("apply", "--json").stdout)
    assert again["outcome"] == "already-patched" and again["files"] == done["files"]


@pytest.mark.slow
def test_a_deleted_file_is_refused_then_restored_from_backup_readable_by_all(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    s.file().unlink()
    assert "is missing; its backup" in s.invoke("status").stdout
    refused = s.invoke("revert")
    assert refused.returncode == 11 and "it is missing" in refused.stderr
    assert not s.file().exists() and s.file("qwen3_5.py.eagle3-bak").exists()
    assert s.invoke("revert", "--from-backup").returncode == 0
    assert s.read() == release_file("0.5.21", SHIPPED["qwen3_5.py"])
    umask = os.umask(0)
    os.umask(umask)
    assert s.file().stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("mangled", ["a,row,with,four\n", "x" * 200_000 + ",sha256=abc,1\n",
                                     '"an unclosed quote,sha256=abc,1\n'],
                         ids=["four-fields", "a-field-past-csvs-limit", "unclosed-quote"])
@pytest.mark.slow
def test_a_mangled_record_proves_nothing_and_our_own_record_decides(site, mangled):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    record = next(s.root.glob("sglang-*.dist-info/RECORD"))
    record.write_text(mangled + record.read_text())
    s.file().write_bytes(b"")
    result = s.invoke("revert", "--from-backup")
    assert result.returncode == 0, result.stderr
    assert s.read() == release_file("0.5.21", SHIPPED["qwen3_5.py"])


@pytest.mark.parametrize("record", first_fast("without RECORD", "with RECORD"))
def test_revert_after_upgrading_to_a_native_release_drops_the_old_backup(site, record):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    for dist in s.root.glob("sglang-*.dist-info"):
        shutil.rmtree(dist)
    install_release("0.5.22", s.root)   # what `pip install -U sglang==0.5.22` does
    if record == "without RECORD":
        _forget_record(s)
        restore = s.invoke("revert", "--from-backup")
        assert restore.returncode == 11 and "made from SGLang 0.5.21" in restore.stderr
    result = s.invoke("revert", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["state"] == "native" and "another release's file" in report["notes"][0]
    assert s.read() == release_file("0.5.22", SHIPPED["qwen3_5.py"])
    assert not [name for name in _ours(s) if ".eagle3-bak" in name]


@pytest.mark.slow
def test_revert_of_a_file_edited_before_apply_says_the_edits_are_kept_not_that_ours_changed(site):
    # A BOM added by the user before apply: revert gives back exactly what they had,
    # and must not claim the file was changed after eagle3-patch wrote it.
    s = site("0.5.21")
    edited = b"\xef\xbb\xbf" + s.read()
    s.file().write_bytes(edited)
    assert s.invoke("apply").returncode == 0
    reverted = s.invoke("revert")
    assert reverted.returncode == 0, reverted.stderr
    assert s.read() == edited
    assert "changed after eagle3-patch wrote it" not in reverted.stdout
    assert "back to what it was before eagle3-patch patched it" in reverted.stdout


@pytest.mark.parametrize("selector", ["--sglang-dir", "found"])
@pytest.mark.slow
def test_a_package_without_init_whose_files_are_still_patched_is_reverted_not_treated_as_uninstalled(
        site, selector):
    # Uninstalled means pip removed the model files too; here only __init__.py went.
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    (s.package / "__init__.py").unlink()
    args = ["--sglang-dir", str(s.package)] if selector == "--sglang-dir" else []
    result = s.invoke("revert", "--json", *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "unpatched"
    for name, shipped in SHIPPED.items():
        assert s.read(name) == release_file("0.5.21", shipped)
    assert not [name for name in _ours(s) if ".eagle3-bak" in name]


def _swap_backup_for(s, version: str) -> bytes:
    """Backup and our record of qwen3_5.py now describe another release's file; the bytes."""
    other = release_file(version, SHIPPED["qwen3_5.py"])
    s.file("qwen3_5.py.eagle3-bak").write_bytes(other)
    meta = s.file("qwen3_5.py.eagle3-bak.json")
    record = json.loads(meta.read_text())
    record["original_sha256"] = hashlib.sha256(other).hexdigest()
    meta.write_text(json.dumps(record))
    return other


@pytest.mark.slow
def test_revert_never_restores_a_backup_pips_record_disowns_it_removes_our_methods(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    _swap_backup_for(s, "0.5.20")
    result = s.invoke("revert")
    assert result.returncode == 0, result.stderr
    for name, shipped in SHIPPED.items():
        assert s.read(name) == release_file("0.5.21", shipped)
    assert "back to what it was" not in result.stdout
    assert "was not put back: its SHA-256 is not the one pip recorded for SGLang 0.5.21" in result.stdout
    assert not [name for name in _ours(s) if ".eagle3-bak" in name]


@pytest.mark.slow
def test_without_pips_record_a_backup_of_another_release_is_not_restored_either(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    _forget_record(s)
    _swap_backup_for(s, "0.5.20")
    record = json.loads(s.file("qwen3_5.py.eagle3-bak.json").read_text())
    s.file("qwen3_5.py.eagle3-bak.json").write_text(json.dumps({**record, "sglang_version": "0.5.20"}))
    result = s.invoke("revert")
    assert result.returncode == 0, result.stderr
    assert s.read() == release_file("0.5.21", SHIPPED["qwen3_5.py"])
    assert "back to what it was" not in result.stdout and "changed after" not in result.stdout
    assert "the backup was made from SGLang 0.5.20, not the installed 0.5.21" in result.stdout


def _not_as_pip_recorded(s) -> dict[str, str]:
    """Every file in the models folder that pip's RECORD does not list, or lists with other bytes."""
    record = next(s.root.glob("sglang-*.dist-info/RECORD"))
    with open(record, newline="") as f:
        hashes = {row[0]: row[1] for row in csv.reader(f) if row and row[0].startswith(MODELS)}
    found = {}
    for path in s.models.iterdir():
        if not path.is_file():
            continue  # __pycache__
        listed = hashes.get(MODELS + path.name)
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
        if listed != f"sha256={digest}":
            found[path.name] = "not in RECORD" if listed is None else "other bytes"
    return found


@pytest.mark.parametrize("version", first_fast("0.5.21", "0.5.12"))
def test_apply_then_revert_leaves_the_models_folder_exactly_as_pips_record_lists_it(site, version):
    # The GPU record's run 5 found our lock file left behind: the one file RECORD did not list.
    s = site(version)
    assert s.invoke("apply").returncode == 0
    assert ".eagle3-patch.lock" in _not_as_pip_recorded(s)
    reverted = s.invoke("revert")
    assert reverted.returncode == 0, reverted.stderr
    assert _not_as_pip_recorded(s) == {}


def test_a_lock_file_an_earlier_revert_left_goes_with_the_next_revert(site):
    s = site("0.5.21")
    (s.models / ".eagle3-patch.lock").write_bytes(b"")
    result = s.invoke("revert")
    assert result.returncode == 0, result.stderr
    assert _not_as_pip_recorded(s) == {}

