"""revert's decision, pure: what it does to each file, or the refusal that says how else to get back.

revert removes the methods marked ``[EAGLE3-PATCH]`` and keeps every other byte
(the user's own edits included). Where it cannot tell ours from the rest — the
markers were deleted or reworded while our methods remain, or the file is
empty or no longer parses — it refuses and touches nothing. A backup is put
back byte for byte (by ``--from-backup``, or by plain revert as a shortcut for
a file exactly as apply wrote it) only when pip's RECORD (or, where pip
recorded nothing, our own record of this release) proves it is the file
SGLang shipped; otherwise plain revert removes our methods instead.

Every function here is a function of a snapshot read with pip's RECORD hashes
(``site.snapshot``): it reads no file and writes nothing (``engine.revert`` commits).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass

from eagle3_patch.site import backups, hints, install
from eagle3_patch.patch import ownership, sourcetext
from eagle3_patch.site.backups import Provenance
from eagle3_patch.errors import CannotRevert
from eagle3_patch.site.filebytes import sha256
from eagle3_patch.patch.hooks import HOOKS, MARKER
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.snapshot import Snapshot


@dataclass(frozen=True)
class Decision:
    """What revert does to one file: the change to commit, and what to say about it."""

    path: str
    change: install.FileChange | None = None   # new file content (the backup goes with it)
    drop_backup: bool = False                  # the file stays; only our backup goes
    note: str = ""


def candidates(snapshot: Snapshot) -> list[str]:
    """The target files revert has something to do for: a backup of ours, or our marker."""
    return [path for path in snapshot.targets if snapshot.backups[path].exists
            or MARKER.encode() in (snapshot.data(path) or b"")]


def plan_revert(snapshot: Snapshot, from_backup: bool = False) -> list[Decision]:
    """revert's decision for every file it has something to do for (``records=True``
    snapshot); raises ``CannotRevert`` for the first it refuses. Pure."""
    return [decide(snapshot.install, path, snapshot.data(path), snapshot.provenance(path), from_backup)
            for path in candidates(snapshot)]


def decide(sglang: SGLangInstall, path: str, data: bytes | None, evidence: Provenance,
           from_backup: bool = False) -> Decision:
    """What revert does to ``path`` (now ``data``, None if missing); raises ``CannotRevert``.

    Pure: reads nothing, writes nothing.
    """
    backup = evidence.backup
    if from_backup and backup.exists:
        return _restore(sglang, path, data or b"", evidence)
    if data is None:
        raise _refusal(sglang, path, evidence, "it is missing")
    problem = ownership.unparseable(data)
    if problem:
        raise _refusal(sglang, path, evidence, problem)
    if MARKER.encode() in data:
        return _remove_marked(sglang, path, data, evidence)
    pristine = evidence.recorded == sha256(data)
    # A backup of another release means pip has since replaced the file, and
    # with it everything we had added.
    replaced = evidence.belongs is False
    if not (pristine or replaced) and _ours_remaining(os.path.basename(path), data,
                                                      evidence.reference):
        raise _refusal(sglang, path, evidence, f"methods eagle3-patch added are still there, "
                       f"but the {MARKER} comments that mark them are gone")
    if backup.data is None:
        return Decision(path, drop_backup=True, note=(
            f"{backup.path} is {backup.state}, so its record {backups.meta_path(path)} "
            f"described nothing; it was removed."))
    if replaced:
        made = backup.meta.sglang_version if backup.meta else "an unknown release"
        return Decision(path, drop_backup=True, note=(
            f"{backup.path} was left by SGLang {made} and is not the file pip installed for "
            f"SGLang {sglang.version_text}, so restoring it would put another release's file "
            f"back; it was removed."))
    if evidence.shipped == sha256(data):
        return Decision(path, drop_backup=True,
                         note=f"{backup.path} matched the unpatched file and is no longer needed; "
                              f"it was removed.")
    return Decision(path, note=(
        f"{path} has no eagle3-patch methods but differs from what SGLang shipped (your own "
        f"edits); {backup.path} was kept. To put the shipped file back, discarding those edits: "
        f"{hints.command(sglang, 'revert', '--from-backup')}"))


def _remove_marked(sglang: SGLangInstall, path: str, data: bytes,
                   evidence: Provenance) -> Decision:
    backup, meta = evidence.backup, evidence.backup.meta
    if (meta and sha256(data) == meta.patched_sha256 and backup.matches_meta()
            and not evidence.not_restorable):
        # The file is exactly what we wrote and the backup is provably this
        # release's file (pip's RECORD, else our record of this release): it is
        # exactly what was there before, so restore it byte for byte (no libcst).
        new = backup.data
    else:
        new = sourcetext.encode(ownership.remove_hooks(sourcetext.decode(data)), data)
        problem = ownership.unparseable(new)
        if problem:
            raise _refusal(sglang, path, evidence, f"removing the marked methods would leave a "
                                                 f"file that {problem.removeprefix('it ')}")
        if _ours_remaining(os.path.basename(path), new, evidence.reference):
            raise _refusal(sglang, path, evidence, f"methods eagle3-patch added would remain "
                           f"after removing the marked ones (a {MARKER} comment was removed "
                           f"or reworded)")
    note = ""
    # A backup that is not provably this release's file was not what came back;
    # the note says so rather than "back to what it was".
    unproven = evidence.not_restorable if backup.data not in (None, new) else ""
    if unproven:
        edited = "" if meta and sha256(data) == meta.patched_sha256 else (
            " (the file was changed after eagle3-patch wrote it: everything else was kept as found)")
        note = (f"{backup.path} was not put back: {unproven}. Only the methods marked {MARKER} "
                f"were removed from {path}{edited}; the backup was removed.")
    elif sha256(new) != evidence.shipped:
        dropped = f" (its backup {backup.path} was removed)." if backup.exists else "."
        if backup.data is not None and new == backup.data:
            # Edited before apply, not after: the file is what the user had.
            note = (f"{path} is back to what it was before eagle3-patch patched it, which is not "
                    f"the file SGLang shipped: those earlier edits were kept" + dropped)
        else:
            note = (f"{path} was changed after eagle3-patch wrote it; only the methods marked "
                    f"{MARKER} were removed, everything else was kept as found" + dropped)
    return Decision(path, install.FileChange(path, data, new, drop_backup=True), note=note)


def _restore(sglang: SGLangInstall, path: str, data: bytes, evidence: Provenance) -> Decision:
    backup = evidence.backup
    why_not = evidence.not_restorable
    if why_not:
        raise CannotRevert(
            f"Cannot restore {path} from {backup.path}: {why_not}.",
            "--from-backup only puts back a file proven to be the one SGLang shipped; "
            f"{path} and the backup were left untouched.",
            f"Reinstall SGLang's files instead: {hints.reinstall(sglang)}")
    if data == backup.data:
        note = f"{backup.path} matched the file and is no longer needed; it was removed."
    else:
        note = (f"{path} was restored from {backup.path}, the file SGLang "
                f"{sglang.version_text} shipped.")
    return Decision(path, install.FileChange(path, data, backup.data, drop_backup=True), note=note)


def _classes(data: bytes | None) -> dict[str, ast.ClassDef] | None:
    if data is None or not data.strip():
        return None
    try:
        return ownership.classes(ownership.parse(data)[1])
    except ownership.PARSE_ERRORS:
        return None


def _ours_remaining(name: str, data: bytes, before_patch: bytes | None) -> bool:
    """Does ``data`` still hold a method apply added, marked or not?

    Compared with the file before the patch: a hook method its class lacks is
    ours. Without it, a method identical to what we inject is ours.
    """
    now, before = _classes(data), _classes(before_patch)
    for hook in (h for h in HOOKS if h.file == name):
        methods = ownership.own_methods(now.get(hook.cls), hook.method)
        if before is not None:
            if methods and not ownership.own_methods(before.get(hook.cls), hook.method):
                return True
        elif any(ownership.is_hook_source(m, hook) for m in methods):
            return True
    return False


def _refusal(sglang: SGLangInstall, path: str, evidence: Provenance, why: str) -> CannotRevert:
    backup = evidence.backup
    ways = [f"reinstall SGLang's files: {hints.reinstall(sglang)}"]
    if not evidence.not_restorable:
        ways.insert(0, f"restore the backup (discards any later edits): "
                       f"{hints.command(sglang, 'revert', '--from-backup')}")
    kept = f" and its backup {backup.path}" if backup.data is not None else ""
    return CannotRevert(
        f"Cannot revert {path}: {why}.",
        f"revert removes only the methods marked {MARKER} and keeps everything else; here it "
        f"cannot, so {path}{kept} were left untouched.",
        "To get the file SGLang shipped back, either\n  " + "\n  or ".join(ways))
