"""apply, status, check and diff: read a snapshot, decide, then commit or show.

``site.snapshot.read_snapshot`` reads the installation once; apply's decision
(``applyplan``) and the result (``result.result_from``) are pure functions of that
snapshot and the analysis of the sources it holds; ``apply`` then reads again
under the lock, decides again and commits (``site.install.commit``). Expected
failures are raised as ``errors`` types. Status, check and a repeated apply are
the fast path (tests/fastpath.py).
"""

from __future__ import annotations

import os

from eagle3_patch.cache import analysismemo, usercache
from eagle3_patch.engine.applyplan import apply_outcome, decide_apply, needs_change, plan, unsupported
from eagle3_patch.engine.result import Result, judge, result_from, tidy, without_leftovers
from eagle3_patch.errors import CheckFailed, NotWritable
from eagle3_patch.patch import sourcetext
from eagle3_patch.patch.hooks import MARKER
from eagle3_patch.patch.states import Analysis, Outcome, State
from eagle3_patch.site import hints, install, writable
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.lock import locked
from eagle3_patch.site.snapshot import Snapshot, read_snapshot, target_paths


def unwritable_reason(sglang: SGLangInstall) -> str | None:
    """Why this installation's model files cannot be patched on disk by this user, or None.

    Only permissions and read-only filesystems count: a full disk passes this
    check and still fails the write (exit 6), since falling back would hide it.
    """
    refusal = _unwritable(sglang, [path for path in target_paths(sglang) if os.path.isfile(path)], in_memory=False)
    return refusal.why if refusal else None


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


def status(sglang: SGLangInstall, action: str = "status", cache: bool = True) -> Result:
    """The installation's state now: one snapshot, judged."""
    snapshot = read_snapshot(sglang)
    return result_from(snapshot, judge(sglang, snapshot.files, usercache.identity(cache)),
                       action, Outcome.OBSERVED)


def check(sglang: SGLangInstall, cache: bool = True) -> Result:
    """Like status, for an installation where capture works (see ``checked``)."""
    return checked(status(sglang, "check", cache))


def checked(result: Result) -> Result:
    """``result``, where capture works; else raises ``CheckFailed`` (carrying it) or, for a
    release that cannot be patched, ``UnsupportedRelease``."""
    if result.state is State.UNSUPPORTED:
        raise unsupported(result.install, result.analysis, result.after_uninstall)
    if not result.capture_works:
        raise not_working(result)
    return result


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


def capture_summary(result: Result) -> str:
    """What a launch says of capture after ``result`` (apply's or check's); raises where it
    does not work."""
    if not result.capture_works:
        raise not_working(result)
    if result.changed:
        return f"{result.outcome.value} {', '.join(result.changed)}"
    if result.state is State.NATIVE:
        return "native: this SGLang needs no patch"
    return "already patched"


def not_working(result: Result) -> CheckFailed:
    sglang = result.install
    problems = [f"{r.name}: {h.hook.cls}.{h.hook.method} is {h.state.value}"
                + (f" ({h.detail})" if h.detail else "")
                for r in result.analysis.files for h in r.hooks if not h.state.works]
    # Every hook may work while a marker of ours is left on no method of ours: damaged all the same.
    problems += [f"{r.name}: stray {MARKER} comments at lines {list(r.orphan_markers)}"
                 for r in result.analysis.files if r.orphan_markers]
    fix = f"Patch it: {hints.command(sglang, 'apply')}"
    reason = unwritable_reason(sglang) if result.state is State.UNPATCHED else None
    if reason:
        owner = ("" if writable.read_only_mount(sglang.models_dir) else
                 f"\nOr, as the owner of that site-packages: {hints.command(sglang, 'apply')}")
        fix = f"apply cannot patch it here: {reason}\n{hints.in_memory(sglang)}{owner}"
    return CheckFailed(
        f"EAGLE-3 capture does not work in SGLang {sglang.version_text} at {sglang.package_dir} "
        f"(state: {result.state.value}).",
        "; ".join(problems) + ".",
        fix,
        result=result,
    )
