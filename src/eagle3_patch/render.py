"""Turn engine results into what a person reads, or into JSON for machines."""

from __future__ import annotations

import os
import shlex
import sys

import click

from eagle3_patch import __version__
from eagle3_patch.analysis import NATIVE, PATCHED
from eagle3_patch.engine import Result

_COLOURS = {"patched": "green", "native": "green", "unpatched": "yellow",
            "damaged": "red", "unsupported": "red", "missing": "yellow", "altered": "red"}

_SUMMARY = {
    "patched": "Patched: EAGLE-3 capture now works for Qwen3.5/3.6 targets.",
    "repaired": "Repaired a damaged patch: EAGLE-3 capture works again.",
    "already-patched": "Already patched: nothing to do.",
    "native": "This SGLang captures EAGLE-3 layers natively and needs no patch. Nothing was written.",
    "would-patch": "apply would make these changes (nothing was written):",
    "reverted": "Reverted: the patched files are back to what SGLang shipped.",
    "nothing-to-revert": "Nothing to revert: no eagle3-patch changes are installed.",
}


def colour_enabled() -> bool | None:
    # https://no-color.org: any non-empty NO_COLOR disables colour.
    return False if os.environ.get("NO_COLOR") else None


def echo(text: str = "", err: bool = False) -> None:
    click.echo(text, err=err, color=colour_enabled())


def _styled(word: str) -> str:
    return click.style(word, fg=_COLOURS.get(word), bold=True)


def to_json(result: Result) -> dict:
    sglang = result.install
    analysis = result.analysis
    return {
        "action": result.action,
        "outcome": result.outcome,
        "state": result.state,
        "capture_works": result.state in (PATCHED, NATIVE),
        "sglang_version": str(sglang.version) if sglang.version else None,
        "sglang_version_from": sglang.version_from,
        "sglang_dir": str(sglang.package_dir),
        "python": sglang.python,
        "tool_version": __version__,
        "reason": analysis.reason if analysis else "",
        "files": [
            {
                "file": report.name,
                "path": str(report.path),
                "state": report.state,
                "backup": result.backups.get(report.name),
                "orphan_marker_lines": list(report.orphan_markers),
                "hooks": [
                    {"class": h.hook.cls, "method": h.hook.method, "state": h.state.value,
                     "resolved_from": h.resolved_from, "detail": h.detail}
                    for h in report.hooks
                ],
            }
            for report in (analysis.files if analysis else ())
        ],
        "changed": [str(path) for path in result.changed],
        "leftover_temp_files": [str(path) for path in result.leftovers],
        "notes": list(result.notes),
        "diff": result.diff,
    }


def human(result: Result, verbose: bool) -> str:
    sglang = result.install
    lines = []
    if result.action in ("status", "check") or verbose:
        lines.append(f"SGLang {sglang.version_text} at {sglang.package_dir}")
        lines.append(f"  interpreter: {sglang.python}")
        lines.append(f"  state: {_styled(result.state)}")
        if result.analysis and result.analysis.reason:
            lines.append(f"  why: {result.analysis.reason}")
        for report in result.analysis.files if result.analysis else ():
            lines.append(f"  {report.name}: {_styled(report.state)}")
            for h in report.hooks:
                where = f" (resolves {h.resolved_from})" if h.resolved_from else ""
                lines.append(f"    {h.hook.cls}.{h.hook.method}: {_styled(h.state.value)}{where}")
                if h.detail:
                    lines.append(f"      {h.detail}")
            if report.orphan_markers:
                lines.append(f"    stray marker comments at lines {list(report.orphan_markers)}")
            backup = result.backups.get(report.name) or {}
            if backup.get("path"):
                flags = [k.replace("_", " ") for k in ("stale", "modified_since_patch") if backup.get(k)]
                lines.append(f"    backup: {backup['path']}" + (f" ({', '.join(flags)})" if flags else ""))
    if result.action not in ("status", "check"):
        lines.append(_SUMMARY.get(result.outcome, result.outcome))
        lines.extend(f"  wrote {path}" for path in result.changed)
    lines.extend(f"note: {note}" for note in result.notes)
    if result.leftovers:
        lines.append("note: temp files left by an interrupted eagle3-patch write (the next apply "
                     "or revert run by their owner removes them, or delete them now):")
        lines.append("  rm -f " + " ".join(shlex.quote(str(path)) for path in result.leftovers))
    return "\n".join(lines)


def emit(result: Result, as_json: bool, verbose: bool = False) -> None:
    import json

    if as_json:
        echo(json.dumps(to_json(result), indent=2))
    else:
        echo(human(result, verbose))
        if result.diff:
            sys.stdout.write(result.diff)
