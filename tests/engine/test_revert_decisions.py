"""revert's decision for one file, from hand-built bytes and backups: no disk, no pip, milliseconds."""

from __future__ import annotations

import pytest

from eagle3_patch.site.backups import Backup, BackupMeta, provenance
from eagle3_patch.errors import CannotRevert
from eagle3_patch.site.filebytes import sha256
from eagle3_patch.patch.hooks import HOOKS
from eagle3_patch.engine.revertplan import decide, plan_revert
from eagle3_patch.patch.transform import add_hooks

from support import builders


SGLANG = builders.install()
PATH = "/nonexistent/site-packages/sglang/srt/models/qwen3_5.py"
SHIPPED = b"".join(f"class {cls}:\n    x = 1\n\n\n".encode() for cls in dict.fromkeys(
    h.cls for h in HOOKS if h.file == "qwen3_5.py"))
PATCHED = add_hooks(SHIPPED.decode(), [h for h in HOOKS if h.file == "qwen3_5.py"]).encode()
EDITED = SHIPPED + b"# the user's own line\n"


def _meta(original: bytes, version: str = "0.5.21") -> BackupMeta:
    return BackupMeta(sha256(original), sha256(PATCHED), "0.0.0", version)


def _backup(data: bytes | None, meta: BackupMeta | None = None) -> Backup:
    return builders.backup(PATH, data, meta)


def _evidence(backup: Backup, recorded: str | None = sha256(SHIPPED), version: str = "0.5.21"):
    return provenance(backup, recorded, version)


def test_a_file_exactly_as_apply_wrote_it_gets_the_proven_backup_back():
    decision = decide(SGLANG, PATH, PATCHED, _evidence(_backup(SHIPPED, _meta(SHIPPED))))
    assert decision.change.new == SHIPPED and decision.change.drop_backup and not decision.note


def test_a_backup_pip_disowns_is_not_restored_our_methods_are_removed_instead():
    other = SHIPPED + b"# another release\n"
    decision = decide(SGLANG, PATH, PATCHED, _evidence(_backup(other, _meta(other))))
    assert decision.change.new == SHIPPED
    assert "was not put back" in decision.note and "pip recorded" in decision.note


def test_without_pips_record_our_record_of_this_release_proves_the_backup():
    evidence = _evidence(_backup(SHIPPED, _meta(SHIPPED)), recorded=None)
    assert evidence.not_restorable == "" and evidence.belongs is True
    assert decide(SGLANG, PATH, PATCHED, evidence).change.new == SHIPPED


def test_without_pips_record_a_backup_made_under_another_release_proves_nothing():
    evidence = _evidence(_backup(SHIPPED, _meta(SHIPPED, "0.5.20")), recorded=None)
    assert "made from SGLang 0.5.20" in evidence.not_restorable and evidence.belongs is False
    with pytest.raises(CannotRevert, match="Cannot restore"):
        decide(SGLANG, PATH, PATCHED, evidence, from_backup=True)


def test_from_backup_restores_a_proven_backup_over_any_file():
    decision = decide(SGLANG, PATH, b"", _evidence(_backup(SHIPPED, _meta(SHIPPED))), from_backup=True)
    assert decision.change.new == SHIPPED and "restored from" in decision.note


@pytest.mark.parametrize("data,why", [(None, "it is missing"), (b"  \n", "it is empty"),
                                      (b"class (:\n", "not valid Python")])
def test_a_file_revert_cannot_read_as_python_is_refused(data, why):
    with pytest.raises(CannotRevert, match=why) as refused:
        decide(SGLANG, PATH, data, _evidence(_backup(SHIPPED, _meta(SHIPPED))))
    assert "--from-backup" in refused.value.fix  # the proven backup is offered as the way back


def test_our_methods_without_their_markers_are_refused_not_guessed():
    unmarked = PATCHED.replace(b"[EAGLE3-PATCH]", b"[something else]")
    with pytest.raises(CannotRevert, match="comments that mark them are gone"):
        decide(SGLANG, PATH, unmarked, _evidence(_backup(SHIPPED, _meta(SHIPPED))))


def test_edits_after_apply_are_kept_and_said():
    data = PATCHED + b"# edited after apply\n"
    decision = decide(SGLANG, PATH, data, _evidence(_backup(SHIPPED, _meta(SHIPPED))))
    assert decision.change.new == SHIPPED + b"# edited after apply\n"
    assert "changed after eagle3-patch wrote it" in decision.note


def test_a_clean_file_drops_a_backup_it_matches_and_keeps_one_it_does_not():
    same = decide(SGLANG, PATH, SHIPPED, _evidence(_backup(SHIPPED, _meta(SHIPPED))))
    assert same.change is None and same.drop_backup and "no longer needed" in same.note
    edited = decide(SGLANG, PATH, EDITED, _evidence(_backup(SHIPPED, _meta(SHIPPED))))
    assert edited.change is None and not edited.drop_backup and "was kept" in edited.note


def test_an_unreadable_backup_is_said_and_its_record_removed():
    decision = decide(SGLANG, PATH, SHIPPED, _evidence(_backup(None, _meta(SHIPPED))))
    assert decision.drop_backup and "described nothing" in decision.note


@pytest.mark.parametrize("recorded,meta_version,belongs", [
    (sha256(SHIPPED), "0.5.21", True),    # pip's RECORD decides
    ("0" * 64, "0.5.21", False),                  # pip's RECORD decides, against our record
    (None, "0.5.21", True),                       # our own record of this release
    (None, "0.5.20", False),
])
def test_provenance_is_worked_out_once_from_pips_record_else_ours(recorded, meta_version, belongs):
    evidence = _evidence(_backup(SHIPPED, _meta(SHIPPED, meta_version)), recorded=recorded)
    assert evidence.belongs is belongs
    assert evidence.reference == (SHIPPED if belongs else None)
    assert evidence.shipped == (recorded or sha256(SHIPPED))
    assert (evidence.not_restorable == "") is belongs


# --- every file at once, from a snapshot: what revert.revert commits --------------------

TEXT_PATH = PATH.replace("qwen3_5.py", "qwen3_5_text.py")


def _snapshot(data: bytes | None, backup: Backup, recorded: str | None = sha256(SHIPPED)):
    return builders.snapshot({} if data is None else {"qwen3_5.py": data}, {PATH: backup}, SGLANG,
                             recorded={PATH: recorded, TEXT_PATH: None})


def test_revert_plans_from_the_snapshot_only_the_files_it_has_something_to_do_for():
    (decision,) = plan_revert(_snapshot(PATCHED, _backup(SHIPPED, _meta(SHIPPED))))
    assert decision.path == PATH and decision.change.new == SHIPPED
    assert plan_revert(_snapshot(SHIPPED, _backup(None))) == []


def test_revert_judges_the_backup_by_the_snapshots_record_of_pip():
    disowned = _snapshot(PATCHED, _backup(SHIPPED, _meta(SHIPPED)), recorded="0" * 64)
    with pytest.raises(CannotRevert, match="not the one pip recorded"):
        plan_revert(disowned, from_backup=True)


def test_a_missing_file_with_a_backup_is_refused_from_the_snapshot_and_restored_from_backup():
    snapshot = _snapshot(None, _backup(SHIPPED, _meta(SHIPPED)))
    with pytest.raises(CannotRevert, match="it is missing"):
        plan_revert(snapshot)
    (decision,) = plan_revert(snapshot, from_backup=True)
    assert decision.change.old == b"" and decision.change.new == SHIPPED
