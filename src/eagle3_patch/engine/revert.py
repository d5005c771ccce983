"""revert: read the installation, decide every file (``revertplan``), commit.

It reads the installation once, and once more under the lock with pip's RECORD
hashes (``site.snapshot.read_snapshot``), decides every file from that value alone
(``revertplan.plan_revert``, pure), then commits; its result is that snapshot as the
commit left it (``Snapshot.committed``), not another read.
"""

from __future__ import annotations

import os
import stat

from eagle3_patch.cache import usercache
from eagle3_patch.engine.result import Result, judge, may_write, result_from, tidy, without_leftovers
from eagle3_patch.engine.revertplan import candidates, plan_revert
from eagle3_patch.errors import NotPython
from eagle3_patch.patch.states import Outcome
from eagle3_patch.site import backups, install
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.lock import LOCK_NAME, locked
from eagle3_patch.site.snapshot import Snapshot, read_snapshot
from eagle3_patch.site.writable import ensure_writable


def revert(sglang: SGLangInstall, from_backup: bool = False) -> Result:
    """Remove what apply added (or restore the proven backup); the state afterwards."""
    ours = usercache.identity()  # every analysis this revert asks for is keyed by it
    snapshot = read_snapshot(sglang)
    if snapshot.after_uninstall:
        left = list(snapshot.after_uninstall)
        install.remove_after_uninstall(left, sglang.package_dir)
        # Every file of ours went with them: backups, records, temp files, the lock.
        gone = snapshot._replace(backups={path: backups.no_backup(path) for path in snapshot.targets},
                                 leftovers=(), after_uninstall=())
        return _result(gone, ours, Outcome.REMOVED_AFTER_UNINSTALL, changed=tuple(left))
    todo = candidates(snapshot)
    if not todo:
        snapshot, notes = tidy(snapshot)
        _remove_lock_left(snapshot)
        return _result(snapshot, ours, Outcome.NOTHING_TO_REVERT, notes=notes)
    if not from_backup:
        # What is ours is found class by class: in a file whose classes cannot be judged
        # (UnjudgeableClass), removing it could leave our method behind, unmarked.
        _judgeable(snapshot, ours)
    ensure_writable(todo)
    with locked(sglang.models_dir) as held:
        # Decided again under the lock (another process may have just written), with
        # pip's RECORD; every file before anything is written: one refusal leaves all untouched.
        snapshot, tidied = without_leftovers(read_snapshot(sglang, earlier=snapshot, records=True))
        decisions = plan_revert(snapshot, from_backup)
        changes = [d.change for d in decisions if d.change]
        install.commit(changes)
        dropped = tuple(d.path for d in decisions if d.drop_backup)
        for path in dropped:
            install.drop_backup(path)
        after = snapshot.committed(changes, dropped)
        if nothing_of_ours(after):
            held.remove_when_done()
    changed = tuple(c.path for c in changes if c.new != c.old)
    outcome = Outcome.REVERTED if changed else Outcome.NOTHING_TO_REVERT
    return _result(after, ours, outcome, changed=changed,
                   notes=(*tidied, *(d.note for d in decisions if d.note)))


def nothing_of_ours(snapshot: Snapshot) -> bool:
    """Whether ``snapshot`` holds no file of ours but the lock: no backup or record, no temp file
    of a killed write, no marked method. Then revert takes the lock file too, and the folder
    holds only what pip's RECORD lists."""
    return not snapshot.leftovers and not any(b.exists for b in snapshot.backups.values()) \
        and not candidates(snapshot)


def _remove_lock_left(snapshot: Snapshot) -> None:
    """The lock file an earlier revert left behind (before revert took its own), where nothing
    else of ours is there and we may write. Judged from the snapshot read before the lock: should
    an apply write meanwhile, its next write makes a new lock file, and writers stay apart."""
    try:
        if not stat.S_ISREG(os.lstat(os.path.join(snapshot.install.models_dir, LOCK_NAME)).st_mode):
            return  # a link or a folder there is not our file: not ours to remove
    except OSError:
        return
    if not nothing_of_ours(snapshot) or not may_write(snapshot):
        return
    with locked(snapshot.install.models_dir) as held:
        held.remove_when_done()


def _result(snapshot: Snapshot, ours: dict | None, outcome: Outcome, **done) -> Result:
    """revert's result: ``snapshot`` (as read, or as revert left it) and its state."""
    return result_from(snapshot, judge(snapshot.install, snapshot.files, ours), "revert", outcome, **done)


def _judgeable(snapshot: Snapshot, ours: dict | None) -> None:
    try:
        judge(snapshot.install, snapshot.files, ours)
    except NotPython:
        pass  # decide() refuses it, with revert's own ways out

