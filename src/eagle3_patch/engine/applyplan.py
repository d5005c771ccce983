"""apply's decision, pure: what it does to an installation, and the validated changes.

A function of a snapshot (``site.snapshot``) and the analysis of the sources it holds:
it reads no file of the installation and writes nothing (``engine.apply`` commits).
Only the command a refusal prints may look for the Python that owns the folder
(``site.hints``). The libcst transform is imported only when there is something to
write (a repeated apply is the fast path: tests/fastpath.py).
"""

from __future__ import annotations

from collections import ChainMap
from typing import NamedTuple

from eagle3_patch import __version__
from eagle3_patch.site import backups, hints, install
from eagle3_patch.patch import sourcetext
from eagle3_patch.engine.result import unsupported
from eagle3_patch.errors import NotPython, TargetUnreadable, ValidationFailed
from eagle3_patch.site.filebytes import sha256
from eagle3_patch.patch.hooks import MARKER
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.snapshot import Snapshot
from eagle3_patch.patch.states import Analysis, HookState, Outcome, State


class ApplyDecision(NamedTuple):
    """What apply does: its outcome, the changes to commit, and the analysis of their result."""

    outcome: Outcome
    changes: tuple[install.FileChange, ...] = ()
    after: Analysis | None = None


def needs_change(analysis: Analysis) -> list:
    return [report for report in analysis.files if not report.state.capture_works]


def apply_outcome(snapshot: Snapshot, analysis: Analysis, dry_run: bool = False) -> Outcome:
    """What apply does to an installation in this state; raises for a release it cannot patch."""
    if analysis.state is State.UNSUPPORTED:
        raise unsupported(snapshot.install, analysis, snapshot.after_uninstall)
    if analysis.state.capture_works:
        return Outcome.ALREADY_PATCHED if analysis.state is State.PATCHED else Outcome.NATIVE
    if dry_run:
        return Outcome.WOULD_PATCH
    return Outcome.REPAIRED if analysis.state is State.DAMAGED else Outcome.PATCHED


def decide_apply(snapshot: Snapshot, analysis: Analysis, dry_run: bool = False) -> ApplyDecision:
    """apply's decision: its outcome and, where it writes, the validated changes. Pure."""
    outcome = apply_outcome(snapshot, analysis, dry_run)
    if analysis.state.capture_works:
        return ApplyDecision(outcome)
    return ApplyDecision(outcome, *plan(snapshot, analysis))


def plan(snapshot: Snapshot,
         analysis: Analysis) -> tuple[tuple[install.FileChange, ...], Analysis]:
    """The changes apply would make and the analysis of their result; raises if they would
    not work. Pure: reads no file of the installation."""
    # libcst, and the analysis of what would be written: only where there is something to write.
    from eagle3_patch.patch import ownership, transform
    from eagle3_patch.patch.analysis import analyze, parse_source

    sglang, files = snapshot.install, snapshot.files
    changes, rewritten = [], {}
    for report in needs_change(analysis):
        source = files[report.name]
        needed = [r.hook for r in report.hooks if r.state is not HookState.NATIVE]
        text = sourcetext.decode(source.data)
        try:
            new = sourcetext.encode(transform.add_hooks(text, needed, source.tree), source.data)
        except transform.BodyOnHeaderLine as exc:
            raise TargetUnreadable(
                f"eagle3-patch cannot add its methods to class {exc.cls} in {source.path}: its body "
                "is on its header line.",
                "Our methods are appended as lines of their own below the class's last statement, so "
                "that revert removes exactly them; a body written on the `class ...:` line has no "
                "indented block to append to. No SGLang release writes the class this way, and "
                "nothing was changed.",
                f"Put the class's body on its own indented line, or reinstall the release "
                f"({hints.reinstall(sglang)}), then run the command again.",
            ) from None
        original = (sourcetext.encode(ownership.remove_hooks(text), source.data)
                    if MARKER in text else source.data)
        meta = backups.BackupMeta(sha256(original), sha256(new), __version__, sglang.version_text)
        kept = snapshot.backups[source.path]
        backup_ok = (kept.meta is not None and kept.meta.original_sha256 == meta.original_sha256
                     and kept.data == original)
        changes.append(install.FileChange(source.path, source.data, new,
                                          backup=None if backup_ok else original, meta=meta))
        try:
            rewritten[report.name] = parse_source(report.name, source.path, new)
        except NotPython as exc:  # the file parsed: what would not is ours
            raise ValidationFailed(
                f"eagle3-patch refused to write its result to {source.path}, because it would not parse.",
                f"{exc.why} Nothing was written: the file is unchanged.",
                "This is a bug in eagle3-patch. Please report it with the output of "
                f"`{hints.command(sglang, 'status', '--json')}`.",
            ) from None
    after = analyze(ChainMap(rewritten, files))
    _validate(sglang, after, [c.path for c in changes])
    return tuple(changes), after


def _validate(sglang: SGLangInstall, analysis: Analysis, paths: list[str]) -> None:
    """The gate before any write: the result parses and every hook resolves as intended."""
    broken = [f"{r.name}: {h.hook.cls}: {h.state.value} {h.detail}".strip()
              for r in analysis.files for h in r.hooks if not h.state.works]
    if not analysis.state.capture_works or broken:
        raise ValidationFailed(
            "eagle3-patch refused to write its result, because it would not work: "
            + ("; ".join(broken) or analysis.state.value) + ".",
            "Nothing was written: " + ", ".join(paths) + " are unchanged.",
            "This SGLang differs from every release eagle3-patch knows. Please report it with "
            f"the output of `{hints.command(sglang, 'status', '--json')}`.",
        )

