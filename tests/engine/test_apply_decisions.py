"""apply's and status's decisions from hand-built snapshots: no disk, no lock, milliseconds.

Every path names a folder that does not exist, so a decision that looked at the disk
would see nothing of what the snapshot says.
"""

from __future__ import annotations

import pytest

from eagle3_patch.site.backups import Backup, BackupMeta
from eagle3_patch.engine.result import result_from
from eagle3_patch.errors import SGLangNotFound, UnsupportedRelease, ValidationFailed
from eagle3_patch.site.filebytes import sha256
from eagle3_patch.patch.hooks import MARKER, MARKER_COMMENT
from eagle3_patch.cache.analysismemo import analysis_of
from eagle3_patch.engine.applyplan import decide_apply
from eagle3_patch.site.snapshot import Snapshot, target_paths
from eagle3_patch.patch.states import Outcome, State
from eagle3_patch.patch import transform

from support import builders


SGLANG = builders.install()
PATH, TEXT_PATH = target_paths(SGLANG)
# A decoder whose forward reads the per-layer flag (0.5.11+), with no hook yet.
SHIPPED = b'''\
class Qwen3_5ForCausalLM:
    def forward(self, x):
        for layer in self.layers:
            if getattr(layer, "_is_layer_to_capture", False):
                pass


class Qwen3_5MoeForCausalLM(Qwen3_5ForCausalLM):
    pass


class Qwen3_5ForConditionalGeneration:
    pass


class Qwen3_5MoeForConditionalGeneration(Qwen3_5ForConditionalGeneration):
    pass
'''
NO_FLAG = SHIPPED.replace(b"_is_layer_to_capture", b"_something_else")


def _snapshot(data: bytes | None = SHIPPED, backup: Backup | None = None, **facts) -> Snapshot:
    return builders.snapshot({} if data is None else {"qwen3_5.py": data}, {PATH: backup} if backup else {},
                             SGLANG, **facts)


def _decide(snapshot: Snapshot, dry_run: bool = False):
    return decide_apply(snapshot, analysis_of(snapshot.files, None), dry_run)


def _patched() -> bytes:
    return _decide(_snapshot()).changes[0].new


def test_an_unpatched_file_is_patched_with_its_original_backed_up():
    decision = _decide(_snapshot())
    assert decision.outcome is Outcome.PATCHED and decision.after.state is State.PATCHED
    [change] = decision.changes
    assert change.path == PATH and change.old == SHIPPED and MARKER.encode() in change.new
    assert change.backup == SHIPPED
    assert change.meta.original_sha256 == sha256(SHIPPED) and change.meta.sglang_version == "0.5.21"


def test_a_dry_run_would_make_exactly_the_changes_apply_makes():
    would = _decide(_snapshot(), dry_run=True)
    assert would.outcome is Outcome.WOULD_PATCH and would.changes == _decide(_snapshot()).changes


def test_a_backup_already_holding_the_original_is_not_written_again():
    kept = _decide(_snapshot()).changes[0].meta
    intact = builders.backup(PATH, SHIPPED, kept)
    assert _decide(_snapshot(backup=intact)).changes[0].backup is None
    other = builders.backup(PATH, SHIPPED + b"# another release\n", kept)
    assert _decide(_snapshot(backup=other)).changes[0].backup == SHIPPED


def test_a_patched_file_is_left_alone():
    decision = _decide(_snapshot(_patched()))
    assert decision.outcome is Outcome.ALREADY_PATCHED and decision.changes == ()


def test_code_that_already_routes_capture_needs_no_patch():
    # Our methods without our marker lines: code upstream ships, as far as anyone can tell.
    native = b"".join(line for line in _patched().splitlines(keepends=True)
                      if MARKER_COMMENT.encode() not in line)
    assert MARKER.encode() not in native
    decision = _decide(_snapshot(native))
    assert decision.outcome is Outcome.NATIVE and decision.changes == ()


def test_a_damaged_patch_is_repaired_and_its_backup_is_the_file_without_our_marked_methods():
    patched = _patched().decode()
    start = patched.index("    def set_eagle3_layers_to_capture(self, layers_to_capture")
    end = patched.index("True)\n", start) + len("True)\n")
    damaged = (patched[:start] + "    pass\n" + patched[end:]).encode()
    assert analysis_of(_snapshot(damaged).files, None).state is State.DAMAGED
    decision = _decide(_snapshot(damaged))
    assert decision.outcome is Outcome.REPAIRED and decision.after.state is State.PATCHED
    # What was there before: every marked method gone, the rest (the stray line) kept.
    original = decision.changes[0].backup
    assert MARKER.encode() not in original and b"set_eagle3_layers_to_capture" not in original
    assert original.count(b"    pass\n") == SHIPPED.count(b"    pass\n") + 1


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_release_without_per_layer_capture_is_refused(dry_run):
    with pytest.raises(UnsupportedRelease, match="cannot serve Qwen3.5/3.6 with EAGLE-3"):
        _decide(_snapshot(NO_FLAG), dry_run)


def test_an_uninstalled_sglang_is_said_as_such_not_as_an_old_release():
    leftover = PATH + ".eagle3-bak"
    with pytest.raises(SGLangNotFound, match="only eagle3-patch's own files are left"):
        _decide(_snapshot(None, after_uninstall=(leftover,)))


def test_status_reports_the_backup_the_snapshot_holds():
    patched = _patched()
    meta = BackupMeta(sha256(SHIPPED), sha256(patched), "0.0.0", "0.5.20")
    snapshot = _snapshot(patched + b"# edited\n", builders.backup(PATH, SHIPPED, meta),
                         leftovers=(PATH + ".tmp",))
    result = result_from(snapshot, analysis_of(snapshot.files, None), "status", Outcome.OBSERVED)
    report = result.backups["qwen3_5.py"]
    assert report.intact is True and report.stale is True
    assert report.modified_since_patch is True
    assert result.leftovers == (PATH + ".tmp",) and result.notes == ()


def test_status_offers_the_backup_of_a_file_deleted_by_hand():
    backup = builders.backup(PATH, SHIPPED)
    snapshot = _snapshot(None, backup, missing=(PATH, TEXT_PATH))
    result = result_from(snapshot, analysis_of(snapshot.files, None), "status", Outcome.OBSERVED)
    assert result.state is State.UNSUPPORTED and result.backups == {}
    [note] = result.notes
    assert note.startswith(f"{PATH} is missing") and "revert --from-backup" in note


def test_after_uninstall_status_names_our_files_instead_of_a_lost_backup():
    backup = builders.backup(PATH, SHIPPED)
    snapshot = _snapshot(None, backup, missing=(PATH, TEXT_PATH), after_uninstall=(backup.path,))
    result = result_from(snapshot, analysis_of(snapshot.files, None), "status", Outcome.OBSERVED)
    assert result.notes == () and result.after_uninstall == (backup.path,)


def test_a_result_of_ours_that_does_not_parse_is_refused_as_ours_not_blamed_on_the_file(monkeypatch):
    # The user's file parsed; if what we would write does not, the fault is ours (exit 70,
    # nothing written), never "not valid Python, reinstall SGLang" (exit 5).
    monkeypatch.setattr(transform, "add_hooks", lambda source, hooks, tree=None: source + "\ndef broken(:\n")
    with pytest.raises(ValidationFailed, match="would not parse") as refused:
        _decide(_snapshot())
    assert "Nothing was written" in refused.value.why
