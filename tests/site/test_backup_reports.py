"""What status says about a backup: a typed value from hand-built backups, its JSON keys fixed."""

from __future__ import annotations

from eagle3_patch.site.backups import BackupMeta, BackupReport, meta_path, report
from eagle3_patch.site.filebytes import sha256

from support.builders import backup


TARGET = "/nonexistent/site-packages/sglang/srt/models/qwen3_5.py"
SHIPPED = b"class Qwen3_5ForCausalLM:\n    x = 1\n"
PATCHED = SHIPPED + b"    # [EAGLE3-PATCH] ours\n"
META = BackupMeta(sha256(SHIPPED), sha256(PATCHED), "0.0.0", "0.5.21")
# status --json's "backup" object, key for key and in this order: scripts read it.
JSON_KEYS = ["path", "backup", "metadata", "metadata_path", "intact", "stale", "modified_since_patch",
             "tool_version", "sglang_version"]


def test_an_intact_backup_of_this_release_is_reported_as_typed_fields():
    found = report(backup(TARGET, SHIPPED, META), sha256(PATCHED), True, "0.5.21")
    assert isinstance(found, BackupReport)
    assert found.path == TARGET + ".eagle3-bak" and found.meta_path == meta_path(TARGET)
    assert (found.state, found.meta_state) == ("present", "ok")
    assert found.intact is True and found.stale is False and found.modified_since_patch is False
    assert (found.tool_version, found.sglang_version) == ("0.0.0", "0.5.21")


def test_backup_report_json_keeps_the_keys_and_order_status_has_always_printed():
    found = report(backup(TARGET, SHIPPED, META), sha256(PATCHED + b"# edited\n"), True, "0.5.22")
    assert list(found.to_json()) == JSON_KEYS
    assert found.to_json() == {
        "path": TARGET + ".eagle3-bak", "backup": "present", "metadata": "ok",
        "metadata_path": TARGET + ".eagle3-bak.json", "intact": True, "stale": True,
        "modified_since_patch": True, "tool_version": "0.0.0", "sglang_version": "0.5.21"}


def test_a_backup_without_its_record_reports_unknowns_as_none():
    found = report(backup(TARGET, SHIPPED, meta_state="corrupt"), sha256(PATCHED), True, "0.5.21")
    assert found.to_json() == {
        "path": TARGET + ".eagle3-bak", "backup": "present", "metadata": "corrupt",
        "metadata_path": TARGET + ".eagle3-bak.json", "intact": None, "stale": None,
        "modified_since_patch": None, "tool_version": None, "sglang_version": None}


def test_a_record_whose_backup_is_gone_says_the_bytes_are_not_checked():
    found = report(backup(TARGET, meta=META), sha256(PATCHED), True, "0.5.21")
    assert found.state == "missing" and found.intact is None and found.stale is False


def test_no_backup_and_no_record_is_no_report():
    assert report(backup(TARGET), sha256(SHIPPED), False, "0.5.21") is None
