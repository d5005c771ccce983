"""What every operation returns, and the steps apply, status and revert share to build it.

``Result`` says what an operation found or did and the state the installation is in
afterwards, built from what it read and wrote (``result_from``, pure), never from another
read. ``judge`` is the analysis of a snapshot's model files, through the memo; ``tidy`` and
``without_leftovers`` clear the temp files a killed write left.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from eagle3_patch.cache import analysismemo
from eagle3_patch.errors import (Eagle3PatchError, NotPython, NotWritable, SGLangNotFound, UnjudgeableClass,
                                 UnsupportedRelease)
from eagle3_patch.patch.hooks import MARKER, MINIMUM_SUPPORTED, TARGET_FILES
from eagle3_patch.patch.states import Analysis, Outcome, State
from eagle3_patch.site import backups, hints, leftovers, writable
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.lock import locked
from eagle3_patch.site.snapshot import Snapshot
from eagle3_patch.site.sources import Sources


class Result(NamedTuple):
    """What an operation found or did, and the installation's state afterwards."""

    action: str
    outcome: Outcome
    install: SGLangInstall
    analysis: Analysis
    backups: dict[str, backups.BackupReport | None]  # per target file, None where it has no backup
    changed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    diff: str = ""
    leftovers: tuple[str, ...] = ()         # temp files a killed write left; still on disk
    after_uninstall: tuple[str, ...] = ()   # our files in a package pip has uninstalled

    @property
    def state(self) -> State:
        return self.analysis.state

    @property
    def capture_works(self) -> bool:
        return self.state.capture_works


def removed_note(removed: list[str]) -> list[str]:
    return [f"removed {', '.join(removed)}, left by an interrupted eagle3-patch "
            f"write"] if removed else []


def without_leftovers(snapshot: Snapshot) -> tuple[Snapshot, tuple[str, ...]]:
    """Under the lock: delete the temp files ``snapshot`` found; the snapshot without them,
    and the note saying what went."""
    removed = leftovers.remove_leftovers(snapshot.leftovers)
    return snapshot._replace(leftovers=()), tuple(removed_note(removed))


def tidy(snapshot: Snapshot) -> tuple[Snapshot, tuple[str, ...]]:
    """For a command that writes nothing: remove the debris ``snapshot`` found if we may
    (else it is reported); the snapshot as the disk is then, and the note."""
    if not snapshot.leftovers or not may_write(snapshot):
        return snapshot, ()
    with locked(snapshot.install.models_dir):
        return without_leftovers(snapshot)


def may_write(snapshot: Snapshot) -> bool:
    """Whether this user may write the model files ``snapshot`` found: a command that writes
    nothing of its own tidies only then, and otherwise says nothing of it."""
    try:
        writable.ensure_writable([p for p in snapshot.targets if os.path.isfile(p)])
    except NotWritable:
        return False
    return True


def judge(sglang: SGLangInstall, files: Sources, ours: dict | None) -> Analysis:
    """The analysis of ``files``; writes nothing to SGLang.

    The judgement comes from the memo (``cache.analysismemo``) when nothing it depends on
    changed; ``ours`` is ``usercache.identity``, computed once per command: None
    analyses afresh and leaves the memo alone.
    """
    try:
        return analysismemo.analysis_of(files, ours)
    except NotPython as exc:
        raise NotPython(
            exc.what, exc.why,
            f"Reinstall the release it came from, then run the command again: "
            f"{hints.reinstall(sglang)}") from None
    except UnjudgeableClass as exc:
        raise UnjudgeableClass(exc.what, exc.why, f"{exc.fix}: {hints.reinstall(sglang)}") from None


def result_from(snapshot: Snapshot, analysis: Analysis, action: str, outcome: Outcome,
                **done) -> Result:
    """The result for ``snapshot``: its state, every target file's backup, what is left over.
    Pure: reads no file of the installation."""
    sglang, files = snapshot.install, snapshot.files
    reports = {}
    for name in (t.name for t in TARGET_FILES if t.name in files.paths):
        reports[name] = backups.report(snapshot.backups[files.paths[name]], files.sha256(name),
                                       MARKER.encode() in files.data[name], sglang.version_text)
    # A backup whose file was deleted by hand (SGLang itself still installed) is
    # said, with the way back.
    lost = [f"{path} is missing; its backup {backups.backup_path(path)} is still there: "
            f"{hints.command(sglang, 'revert', '--from-backup')} puts it back if it is the "
            f"file SGLang shipped." for path in snapshot.missing
            if not snapshot.after_uninstall and snapshot.backups[path].state != "missing"]
    notes = (*done.pop("notes", ()), *lost)
    return Result(action, outcome, sglang, analysis, backups=reports, notes=notes,
                  leftovers=snapshot.leftovers, after_uninstall=snapshot.after_uninstall, **done)


def unsupported(sglang: SGLangInstall, analysis: Analysis,
                after_uninstall: tuple[str, ...]) -> Eagle3PatchError:
    """The refusal for a release apply cannot patch, or for a package pip has uninstalled."""
    upgrade = hints.pip(sglang, "install", "-U", f"'sglang>={MINIMUM_SUPPORTED}'")
    if after_uninstall:
        return SGLangNotFound(
            f"SGLang is no longer installed at {sglang.package_dir}: only eagle3-patch's own "
            f"files are left there.",
            "pip uninstall removed SGLang's files; our backups and lock kept the folder alive.",
            f"Remove them: eagle3-patch revert --sglang-dir {hints.quote(sglang.package_dir)}"
            f"\nor install SGLang again: {upgrade}")
    return UnsupportedRelease(
        f"SGLang {sglang.version_text} at {sglang.package_dir} cannot serve Qwen3.5/3.6 with "
        f"EAGLE-3: {analysis.reason}.",
        f"The patch routes capture to the decoder's per-layer flags, which exist from SGLang "
        f"{MINIMUM_SUPPORTED} on (0.5.22 and later need no patch).",
        f"Upgrade, then apply: {upgrade} && {hints.command(sglang, 'apply')}",
    )

