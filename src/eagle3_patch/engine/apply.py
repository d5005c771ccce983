"""apply and diff: read a snapshot, decide, then commit or show.

``site.snapshot.read_snapshot`` reads the installation once; apply's decision
(``applyplan``) and the result (``result.result_from``) are pure functions of that
snapshot and the analysis of the sources it holds; ``apply`` then reads again
under the lock, decides again and commits (``site.install.commit``). Expected
failures are raised as ``errors`` types. A repeated apply is the fast path
(tests/fastpath.py); status and check are ``status.py``'s.
"""

from __future__ import annotations

import os

from eagle3_patch.cache import analysismemo, usercache
from eagle3_patch.engine.applyplan import apply_outcome, decide_apply, needs_change, plan
from eagle3_patch.engine.result import Result, judge, result_from, tidy, without_leftovers
from eagle3_patch.engine.status import capture_summary, check
from eagle3_patch.errors import NotWritable
from eagle3_patch.patch import sourcetext
from eagle3_patch.patch.states import Analysis, Outcome, State
from eagle3_patch.site import hints, install, writable
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.lock import locked
from eagle3_patch.site.snapshot import Snapshot, read_snapshot


def _unwritable(sglang: SGLangInstall, paths: list[str], in_memory: bool = True) -> NotWritable | None:
    """apply's refusal to write ``paths``; ``in_memory`` puts the way that writes nothing first."""
    try:
        writable.ensure_writable(paths)
    except NotWritable as exc:
        return NotWritable(exc.what, exc.why, f"{hints.in_memory(sglang)}\nOr: {exc.fix}") if in_memory else exc
    return None


def _judged_again(snapshot: Snapshot, earlier: Snapshot, analysis: Analysis, ours: dict | None) -> Analysis:
    """The analysis of ``snapshot``, read again under the lock: ``analysis`` (that of
    ``earlier``) where it holds the same model files, byte for byte, as the memo would answer."""
    same = snapshot.files.paths == earlier.files.paths and snapshot.files.data == earlier.files.data
    return analysis if same else judge(snapshot.install, snapshot.files, ours)


def apply(sglang: SGLangInstall, dry_run: bool = False, cache: bool = True) -> Result:
    ours = usercache.identity(cache)
    snapshot = read_snapshot(sglang)
    analysis = judge(sglang, snapshot.files, ours)
    if dry_run:
        decision = decide_apply(snapshot, analysis, dry_run=True)
        return result_from(snapshot, analysis, "apply", decision.outcome,
                           diff=_diff(decision.changes, sglang) if decision.changes else "")
    outcome = apply_outcome(snapshot, analysis)
    if analysis.state.capture_works:
        snapshot, notes = tidy(snapshot)
        return result_from(snapshot, analysis, "apply", outcome, notes=notes)
    # In-memory mode refuses a damaged file too (it would guess which code to serve).
    refusal = _unwritable(sglang, [report.path for report in needs_change(analysis)],
                          in_memory=analysis.state is State.UNPATCHED)
    if refusal:
        raise refusal
    with locked(sglang.models_dir):
        # Decide again under the lock: another process may have just patched.
        earlier, snapshot = snapshot, read_snapshot(sglang, earlier=snapshot)
        snapshot, notes = without_leftovers(snapshot)
        analysis = _judged_again(snapshot, earlier, analysis, ours)
        decision = decide_apply(snapshot, analysis)
        if not decision.changes:
            return result_from(snapshot, analysis, "apply", Outcome.ALREADY_PATCHED, notes=notes)
        install.commit(list(decision.changes))
    # What was written is what the next status reads, and plan has analysed it.
    written = snapshot.committed(list(decision.changes))
    analysismemo.remember(written.files, decision.after, ours)
    return result_from(written, decision.after, "apply", decision.outcome,
                       changed=tuple(c.path for c in decision.changes), notes=notes)


def _diff(changes: tuple[install.FileChange, ...], sglang: SGLangInstall) -> str:
    # difflib and ownership: only diff and --dry-run show a diff, a repeated apply never does.
    import difflib

    from eagle3_patch.patch.ownership import source_lines

    chunks = []
    for change in changes:
        rel = os.path.relpath(change.path, os.path.dirname(sglang.package_dir))
        chunks.extend(difflib.unified_diff(
            source_lines(sourcetext.decode(change.old), keepends=True),
            source_lines(sourcetext.decode(change.new), keepends=True),
            fromfile=f"a/{rel}", tofile=f"b/{rel}"))
    return "".join(chunks)


def diff(sglang: SGLangInstall, cache: bool = True) -> Result:
    result = apply(sglang, dry_run=True, cache=cache)
    return result._replace(action="diff")


def planned_changes(snapshot: Snapshot,
                    ours: dict | None) -> tuple[Analysis, list[install.FileChange]]:
    """The analysis of ``snapshot`` and, if unpatched, exactly what apply would write
    (validated); writes nothing.

    ``run`` and ``serve --in-memory`` hand these bytes to SGLang's processes
    instead of writing them.
    """
    analysis = judge(snapshot.install, snapshot.files, ours)
    apply_outcome(snapshot, analysis)  # raises for a release that cannot be patched
    if analysis.state is not State.UNPATCHED:
        return analysis, []
    return analysis, list(plan(snapshot, analysis)[0])


def ensure_capture(sglang: SGLangInstall, apply_patch: bool = True, cache: bool = True) -> str:
    """Make sure EAGLE-3 capture works before a launch; a one-line summary of what was done."""
    return capture_summary(apply(sglang, cache=cache) if apply_patch else check(sglang, cache))


