"""apply, revert, status, check and diff: decide from the source, then commit.

Each operation returns a ``Result`` saying what happened; expected failures are
raised as ``errors`` types. The libcst transform is imported only on paths that
may write, so status, check and a repeated apply stay fast.
"""

from __future__ import annotations

import ast
import difflib
import shlex
import sys
from collections import ChainMap
from dataclasses import dataclass, field
from pathlib import Path

from eagle3_patch import __version__, install, sourcetext
from eagle3_patch.analysis import (DAMAGED, NATIVE, PATCHED, UNSUPPORTED, Analysis,
                                   HookState, SourceFile, Sources, analyze, parse_source)
from eagle3_patch.errors import CheckFailed, NotWritable, UnsupportedRelease, ValidationFailed
from eagle3_patch.hooks import MARKER, MINIMUM_SUPPORTED, TARGET_FILES, hooks_for
from eagle3_patch.locate import SGLangInstall


@dataclass(frozen=True)
class Result:
    """What an operation found or did."""

    action: str
    outcome: str
    install: SGLangInstall
    analysis: Analysis | None = None
    changed: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    diff: str = ""
    backups: dict[str, dict] = field(default_factory=dict)
    leftovers: tuple[Path, ...] = ()   # temp files a killed write left; still on disk

    @property
    def state(self) -> str:
        return self.analysis.state if self.analysis else UNSUPPORTED


def read_sources(sglang: SGLangInstall) -> Sources:
    """Every target file and every file their classes inherit from (parsed on use)."""
    names = {t.name for t in TARGET_FILES} | {b for t in TARGET_FILES for b in t.bases_from}
    return Sources(sglang.models_dir, names)


def _targets(sglang: SGLangInstall) -> list[Path]:
    return [sglang.models_dir / t.name for t in TARGET_FILES]


def _removed_note(removed: list[Path]) -> list[str]:
    return [f"removed {', '.join(map(str, removed))}, left by an interrupted eagle3-patch "
            f"write"] if removed else []


def _tidy(sglang: SGLangInstall) -> tuple[list[str], tuple[Path, ...]]:
    """For a command that writes nothing: remove crash debris if we may, else report it."""
    found = install.leftovers(_targets(sglang))
    if not found:
        return [], ()
    try:
        install.ensure_writable([p for p in _targets(sglang) if p.is_file()])
    except NotWritable:
        return [], tuple(found)
    with install.locked(sglang.models_dir):
        return _removed_note(install.remove_leftovers(_targets(sglang))), ()


def _unsupported(sglang: SGLangInstall, analysis: Analysis) -> UnsupportedRelease:
    return UnsupportedRelease(
        f"SGLang {sglang.version_text} at {sglang.package_dir} cannot serve Qwen3.5/3.6 with "
        f"EAGLE-3: {analysis.reason}.",
        f"The patch routes capture to the decoder's per-layer flags, which exist from SGLang "
        f"{MINIMUM_SUPPORTED} on (0.5.22 and later need no patch).",
        f"Upgrade, then apply: pip install -U 'sglang>={MINIMUM_SUPPORTED}' && eagle3-patch apply",
    )


def _inspect(sglang: SGLangInstall) -> tuple[Sources, Analysis]:
    files = read_sources(sglang)
    return files, analyze(files)


def _backup_report(source: SourceFile) -> dict:
    meta = install.read_meta(source.path)
    if meta is None:
        return {"path": None}
    marked = MARKER.encode() in source.data
    current = install.sha256(source.data)
    return {
        "path": str(install.backup_path(source.path)),
        # Unpatched and not the file we backed up: pip replaced it (an upgrade
        # or reinstall) and the backup belongs to the past.
        "stale": not marked and current != meta.original_sha256,
        "modified_since_patch": marked and current != meta.patched_sha256,
        "tool_version": meta.tool_version,
        "sglang_version": meta.sglang_version,
    }


def status(sglang: SGLangInstall, action: str = "status") -> Result:
    files, analysis = _inspect(sglang)
    backups = {name: _backup_report(files[name]) for name in (t.name for t in TARGET_FILES)
               if name in files}
    return Result(action, analysis.state, sglang, analysis, backups=backups,
                  leftovers=tuple(install.leftovers(_targets(sglang))))


def check(sglang: SGLangInstall) -> Result:
    """Like status; the CLI exits 0 only if the state is patched or native."""
    result = status(sglang, "check")
    if result.state == UNSUPPORTED:
        raise _unsupported(sglang, result.analysis)
    return result


def _needs_change(analysis: Analysis) -> list:
    return [report for report in analysis.files if report.state not in (PATCHED, NATIVE)]


def _plan(sglang: SGLangInstall, files: Sources,
          analysis: Analysis) -> tuple[list[install.FileChange], Analysis]:
    """The changes apply would make and the analysis of their result; raises if they would not work."""
    from eagle3_patch import transform  # libcst: only on paths that may write

    changes, rewritten = [], {}
    for report in _needs_change(analysis):
        source = files[report.name]
        needed = [r.hook for r in report.hooks if r.state is not HookState.NATIVE]
        text = sourcetext.decode(source.data)
        new = sourcetext.encode(transform.add_hooks(text, needed), source.data)
        original = (sourcetext.encode(transform.remove_hooks(text), source.data)
                    if MARKER in text else source.data)
        meta = install.BackupMeta(install.sha256(original), install.sha256(new),
                                  __version__, sglang.version_text)
        kept = install.read_meta(source.path)
        backup_ok = (kept is not None and kept.original_sha256 == meta.original_sha256
                     and install.read_backup(source.path) == original)
        changes.append(install.FileChange(source.path, source.data, new,
                                          backup=None if backup_ok else original, meta=meta))
        rewritten[report.name] = parse_source(report.name, source.path, new)
    after = analyze(ChainMap(rewritten, files))
    _validate(after, [c.path for c in changes])
    return changes, after


def _validate(analysis: Analysis, paths: list[Path]) -> None:
    """The gate before any write: the result parses and every hook resolves as intended."""
    broken = [f"{r.name}: {h.hook.cls}: {h.state.value} {h.detail}".strip()
              for r in analysis.files for h in r.hooks
              if h.state not in (HookState.PATCHED, HookState.NATIVE)]
    if analysis.state not in (PATCHED, NATIVE) or broken:
        raise ValidationFailed(
            "eagle3-patch refused to write its result, because it would not work: "
            + ("; ".join(broken) or analysis.state) + ".",
            "Nothing was written: " + ", ".join(map(str, paths)) + " are unchanged.",
            "This SGLang differs from every release eagle3-patch knows. Please report it with "
            "the output of `eagle3-patch status --json`.",
        )


def apply(sglang: SGLangInstall, dry_run: bool = False) -> Result:
    files, analysis = _inspect(sglang)
    if analysis.state == UNSUPPORTED:
        raise _unsupported(sglang, analysis)
    if analysis.state in (PATCHED, NATIVE):
        outcome = "already-patched" if analysis.state == PATCHED else "native"
        notes, leftovers = ([], ()) if dry_run else _tidy(sglang)
        return Result("apply", outcome, sglang, analysis, notes=tuple(notes), leftovers=leftovers)
    if dry_run:
        changes, _ = _plan(sglang, files, analysis)
        return Result("apply", "would-patch", sglang, analysis, diff=_diff(changes, sglang))
    install.ensure_writable([report.path for report in _needs_change(analysis)])
    with install.locked(sglang.models_dir):
        notes = _removed_note(install.remove_leftovers(_targets(sglang)))
        # Decide again under the lock: another process may have just patched.
        files, analysis = _inspect(sglang)
        if analysis.state in (PATCHED, NATIVE):
            return Result("apply", "already-patched", sglang, analysis, notes=tuple(notes))
        changes, after = _plan(sglang, files, analysis)
        install.commit(changes)
    return Result("apply", "repaired" if analysis.state == DAMAGED else "patched", sglang, after,
                  changed=tuple(c.path for c in changes), notes=tuple(notes))


def _diff(changes: list[install.FileChange], sglang: SGLangInstall) -> str:
    chunks = []
    for change in changes:
        rel = change.path.relative_to(sglang.package_dir.parent)
        chunks.extend(difflib.unified_diff(
            sourcetext.decode(change.old).splitlines(keepends=True),
            sourcetext.decode(change.new).splitlines(keepends=True),
            fromfile=f"a/{rel}", tofile=f"b/{rel}"))
    return "".join(chunks)


def diff(sglang: SGLangInstall) -> Result:
    result = apply(sglang, dry_run=True)
    return Result("diff", result.outcome, sglang, result.analysis, diff=result.diff)


def _revert_change(source: SourceFile) -> tuple[install.FileChange, str | None]:
    meta, backup = install.read_meta(source.path), install.read_backup(source.path)
    note = None
    if (meta and backup is not None and install.sha256(source.data) == meta.patched_sha256
            and install.sha256(backup) == meta.original_sha256):
        # The file is exactly what we wrote, so the backup is exactly what was
        # there before: restore it byte for byte (and skip libcst altogether).
        new = backup
    else:
        from eagle3_patch import transform

        new = sourcetext.encode(transform.remove_hooks(sourcetext.decode(source.data)),
                                source.data)
        if meta is None or install.sha256(new) != meta.original_sha256:
            note = (f"{source.path} was changed after eagle3-patch wrote it; only the methods "
                    f"marked {MARKER} were removed, everything else was kept as found.")
    try:
        ast.parse(new)
    except SyntaxError as exc:
        raise ValidationFailed(
            f"Removing eagle3-patch's methods from {source.path} would not leave valid Python "
            f"({exc.msg}, line {exc.lineno}).", "Nothing was written.",
            "Reinstall SGLang: pip install --force-reinstall --no-deps sglang==<version>") from None
    return install.FileChange(source.path, source.data, new, drop_backup=True), note


def _drop_leftover_backup(source: SourceFile) -> str:
    """A backup beside an unpatched file: the file was reinstalled, or upgraded."""
    meta = install.read_meta(source.path)
    backup = install.backup_path(source.path)
    if meta.original_sha256 != install.sha256(source.data):
        what = (f"{backup} was left by SGLang {meta.sglang_version}; the installed file is "
                f"different, so restoring it would downgrade SGLang")
    else:
        what = f"{backup} matched the unpatched file and is no longer needed"
    try:
        install.ensure_writable([source.path])
    except NotWritable:
        return f"{what}; it was kept because the folder is not writable."
    install.drop_backup(source.path)
    return f"{what}; it was removed."


def revert(sglang: SGLangInstall) -> Result:
    """Remove exactly what apply added; never put an older release's file back."""
    files = read_sources(sglang)
    targets = [files[t.name] for t in TARGET_FILES if t.name in files]
    marked = [s for s in targets if MARKER.encode() in s.data]
    notes = [_drop_leftover_backup(s) for s in targets
             if MARKER.encode() not in s.data and install.read_meta(s.path)]
    if not marked:
        tidied, leftovers = _tidy(sglang)
        return Result("revert", "nothing-to-revert", sglang, notes=tuple(notes + tidied),
                      leftovers=leftovers)
    install.ensure_writable([s.path for s in marked])
    with install.locked(sglang.models_dir):
        notes.extend(_removed_note(install.remove_leftovers(_targets(sglang))))
        files = read_sources(sglang)
        changes = []
        for source in (files[s.name] for s in marked):
            if MARKER.encode() in source.data:
                change, note = _revert_change(source)
                changes.append(change)
                notes.extend([note] if note else [])
        install.commit(changes)
    return Result("revert", "reverted" if changes else "nothing-to-revert", sglang,
                  changed=tuple(c.path for c in changes), notes=tuple(notes))


def capture_state(sglang: SGLangInstall) -> str:
    """One of unpatched, patched, native, damaged, unsupported; writes nothing."""
    return _inspect(sglang)[1].state


def ensure_capture(sglang: SGLangInstall, apply_patch: bool = True) -> str:
    """Make sure EAGLE-3 capture works before a launch; a one-line summary of what was done."""
    result = apply(sglang) if apply_patch else check(sglang)
    if result.outcome in (PATCHED, "repaired"):
        return f"{result.outcome} {', '.join(map(str, result.changed))}"
    if result.state == NATIVE:
        return "native: this SGLang needs no patch"
    if result.state == PATCHED:
        return "already patched"
    raise not_working(result)


def not_working(result: Result) -> CheckFailed:
    sglang = result.install
    target = "" if sglang.python == sys.executable else f" --python {shlex.quote(sglang.python)}"
    problems = [f"{r.name}: {h.hook.cls}.{h.hook.method} is {h.state.value}"
                + (f" ({h.detail})" if h.detail else "")
                for r in result.analysis.files for h in r.hooks
                if h.state not in (HookState.PATCHED, HookState.NATIVE)]
    return CheckFailed(
        f"EAGLE-3 capture does not work in SGLang {sglang.version_text} at {sglang.package_dir} "
        f"(state: {result.state}).",
        "; ".join(problems) + "." if problems else "",
        f"Patch it: eagle3-patch apply{target}",
    )
