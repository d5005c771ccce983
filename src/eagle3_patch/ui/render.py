"""Turn engine results into what a person reads, or into JSON for machines."""

from __future__ import annotations

import json
import os
import sys

import click

from eagle3_patch import __version__
from eagle3_patch.site.backups import BackupReport, described
from eagle3_patch.site.hints import quote
from eagle3_patch.text.masking import printable
from eagle3_patch.engine.result import Result
from eagle3_patch.patch.states import Outcome

_COLOURS = {"patched": "green", "native": "green", "unpatched": "yellow",
            "damaged": "red", "unsupported": "red", "missing": "yellow", "altered": "red"}

# What apply, diff and revert say they did; status and check show the state instead.
_SUMMARY = {
    Outcome.PATCHED: "Patched: EAGLE-3 capture now works for Qwen3.5/3.6 targets.",
    Outcome.REPAIRED: "Repaired a damaged patch: EAGLE-3 capture works again.",
    Outcome.ALREADY_PATCHED: "Already patched: nothing to do.",
    Outcome.NATIVE: "This SGLang captures EAGLE-3 layers natively and needs no patch. Nothing was written.",
    Outcome.WOULD_PATCH: "apply would make these changes (nothing was written):",
    Outcome.REVERTED: "Reverted: every method eagle3-patch added is gone.",
    Outcome.NOTHING_TO_REVERT: "Nothing to revert: no eagle3-patch changes are installed.",
    Outcome.REMOVED_AFTER_UNINSTALL: "Removed eagle3-patch's files left behind after SGLang was uninstalled:",
}


def colour_enabled() -> bool | None:
    # https://no-color.org: any non-empty NO_COLOR disables colour.
    return False if os.environ.get("NO_COLOR") else None


def echo(text: str = "", err: bool = False) -> None:
    click.echo(text, err=err, color=colour_enabled())


def write_verbatim(text: str) -> None:
    """``text`` on stdout exactly as given (a diff: click.echo could strip escape sequences)."""
    sys.stdout.write(text)


def _styled(word: str) -> str:
    return click.style(word, fg=_COLOURS.get(word), bold=True)


def to_json(result: Result) -> dict:
    sglang = result.install
    analysis = result.analysis
    return {
        "action": result.action,
        "outcome": result.outcome.value,
        "state": result.state.value,
        "capture_works": result.capture_works,
        "in_memory_ok": result.state.works_in_memory,
        "sglang_version": sglang.release,
        "sglang_version_from": sglang.version_from,
        "sglang_dir": sglang.package_dir,
        "python": sglang.python,
        "tool_version": __version__,
        "reason": analysis.reason,
        "files": [
            {
                "file": report.name,
                "path": report.path,
                "state": report.state.value,
                "backup": _backup_json(result.backups.get(report.name)),
                "orphan_marker_lines": list(report.orphan_markers),
                "hooks": [
                    {"class": h.hook.cls, "method": h.hook.method, "state": h.state.value,
                     "resolved_from": h.resolved_from, "detail": h.detail}
                    for h in report.hooks
                ],
            }
            for report in analysis.files
        ],
        "after_uninstall": list(result.after_uninstall),
        "changed": list(result.changed),
        "leftover_temp_files": list(result.leftovers),
        "notes": list(result.notes),
        "diff": result.diff,
    }


def _backup_json(backup: BackupReport | None) -> dict | None:
    return backup.to_json() if backup is not None else None


def _backup_line(backup: BackupReport) -> str:
    said = []
    if backup.state != "present":
        said.append(f"the backup file is {described(backup.state)}")
    if backup.meta_state != "ok":
        said.append(f"its record {backup.meta_path} is {described(backup.meta_state)}")
    if backup.intact is False:
        said.append("it does not match its record")
    if backup.stale:
        said.append(f"stale: made from SGLang {backup.sglang_version}")
    if backup.modified_since_patch:
        said.append("the file was modified since it was patched")
    return printable(f"    backup: {backup.path}" + (f" ({'; '.join(said)})" if said else ""))


def _after_uninstall(result: Result) -> list[str]:
    if not result.after_uninstall:
        return []
    folder = quote(result.install.package_dir)
    return [f"SGLang is no longer installed at {printable(result.install.package_dir)}; only "
            f"eagle3-patch's files are left there:",
            *(f"  {printable(path)}" for path in result.after_uninstall),
            f"Remove them with: eagle3-patch revert --sglang-dir {folder}"]


def human(result: Result) -> str:
    sglang = result.install
    lines = []
    if result.action in ("status", "check"):
        # Paths of the user's environment, printed as a terminal cannot act on them (escape
        # sequences or bytes that are not UTF-8 in a folder's name).
        lines.append(f"SGLang {sglang.version_text} at {printable(sglang.package_dir)}")
        lines.append(f"  interpreter: {printable(sglang.python)}")
        lines.append(f"  state: {_styled(result.state.value)}")
        lines.append("  in memory (eagle3-patch run, serve --in-memory): "
                     + ("works, nothing written" if result.state.works_in_memory else "refused"))
        if result.analysis.reason:
            lines.append(f"  why: {printable(result.analysis.reason)}")
        for report in result.analysis.files:
            lines.append(f"  {report.name}: {_styled(report.state.value)}")
            for h in report.hooks:
                where = f" (resolves {h.resolved_from})" if h.resolved_from else ""
                lines.append(f"    {h.hook.cls}.{h.hook.method}: {_styled(h.state.value)}{where}")
                if h.detail:
                    lines.append(f"      {printable(h.detail)}")
            if report.orphan_markers:
                lines.append(f"    stray marker comments at lines {list(report.orphan_markers)}")
            if result.backups.get(report.name):
                lines.append(_backup_line(result.backups[report.name]))
        lines.extend(_after_uninstall(result))
    else:
        lines.append(_SUMMARY[result.outcome])
        verb = "removed" if result.outcome is Outcome.REMOVED_AFTER_UNINSTALL else "wrote"
        lines.extend(f"  {verb} {printable(path)}" for path in result.changed)
    lines.extend(f"note: {printable(note)}" for note in result.notes)
    if result.leftovers:
        lines.append("note: temp files left by an interrupted eagle3-patch write (the next apply "
                     "or revert run by their owner removes them, or delete them now):")
        lines.append("  rm -f " + " ".join(quote(path) for path in result.leftovers))
    return "\n".join(lines)


def emit(result: Result, as_json: bool) -> None:
    if as_json:
        echo(json.dumps(to_json(result), indent=2))
    else:
        echo(human(result))
        if result.diff:
            write_verbatim(result.diff)

