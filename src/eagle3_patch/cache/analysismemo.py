"""Remember the analysis of model files that have not changed since the last run.

``apply && check`` runs at every container start and every CI job, and almost
always finds the same bytes as last time; parsing and probing ~200 KB of SGLang
source again would be most of the command's run time. So the analysis is kept,
as JSON, in the user's cache (``usercache.py``: where, whom it trusts, what a key
covers), one memo per ``sglang/srt/models`` folder.

A memo is used only when every part of its key is what this run computes:
eagle3-patch's version and code, the Python version (``usercache.key``), the
folder, which model files exist and the SHA-256 of each (of the very bytes the
analysis would read). Anything else — a missing, corrupt, foreign or tampered
memo, a folder we cannot write — is a miss, and the full analysis runs.
"""

from __future__ import annotations

import json
import os

from eagle3_patch.cache import usercache
from eagle3_patch.site.filebytes import sha256
from eagle3_patch.site.sources import Sources
from eagle3_patch.patch.states import (Analysis, FileReport, HookReport, HookState, State, file_state,
                                 overall_state)
from eagle3_patch.patch.hooks import HOOKS, TARGET_FILES

_SPECS = {(hook.file, hook.cls, hook.method): hook for hook in HOOKS}


def analysis_of(files: Sources, ours: dict | None) -> Analysis:
    """``analyze(files)``, from the memo when its key matches, else computed and remembered;
    ``ours``: ``usercache.identity``, None for no memo."""
    key = memo_key(files, ours)
    if key is not None:
        found = _load(key, files)
        if found is not None:
            return found
    from eagle3_patch.patch.analysis import analyze  # parsing and probing: only a miss needs them

    analysis = analyze(files)
    if key is not None:
        _store(files.folder, key, analysis)
    return analysis


def remember(files: Sources, analysis: Analysis, ours: dict | None) -> None:
    """Keep ``analysis`` as that of ``files`` (what apply just wrote, and has analysed)."""
    key = memo_key(files, ours)
    if key is not None:
        _store(files.folder, key, analysis)


def memo_key(files: Sources, ours: dict | None) -> dict | None:
    """Everything the analysis of ``files`` depends on; None where no memo may be used."""
    if ours is None:
        return None
    return usercache.key(usercache.ANALYSIS, {
        "folder": files.folder,
        "files": {name: files.sha256(name) for name in sorted(files.data)},
    }, ours)


def _file_name(models_dir: str) -> str:
    return sha256(os.fsencode(models_dir))[:32] + ".json"


def _load(key: dict, files: Sources) -> Analysis | None:
    def decode(raw: bytes) -> Analysis:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("key") != key:
            raise ValueError("another folder's, files' or eagle3-patch's analysis")
        return from_json(data["analysis"], files)

    return usercache.load(usercache.ANALYSIS, _file_name(files.folder), decode)


def _store(folder: str, key: dict, analysis: Analysis) -> None:
    text = json.dumps({"key": key, "analysis": to_json(analysis)}, sort_keys=True)
    usercache.write(usercache.ANALYSIS, _file_name(folder), text.encode("utf-8"))


def to_json(analysis: Analysis) -> dict:
    """The analysis as JSON values; ``from_json`` gives back an equal ``Analysis``."""
    return {
        "state": analysis.state.value,
        "reason": analysis.reason,
        "files": [
            {
                "name": report.name,
                "path": report.path,
                "state": report.state.value,
                "orphan_markers": list(report.orphan_markers),
                "hooks": [{"file": h.hook.file, "cls": h.hook.cls, "method": h.hook.method,
                           "state": h.state.value, "resolved_from": h.resolved_from,
                           "detail": h.detail} for h in report.hooks],
            }
            for report in analysis.files
        ],
    }


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _list(value: object) -> list:
    if not isinstance(value, list):  # a string or an object iterates too, into nonsense
        raise TypeError("expected a list")
    return value


def _hook(item: dict) -> HookReport:
    spec = _SPECS[item["file"], item["cls"], item["method"]]
    return HookReport(spec, HookState(item["state"]), _text(item["resolved_from"]),
                      _text(item["detail"]))


def _file(item: dict, files: Sources) -> FileReport:
    name = _text(item["name"])
    if name not in files.data or item["path"] != files.paths[name]:
        raise ValueError(f"the memo describes {item['path']}, not a file of this folder")
    orphans = _list(item["orphan_markers"])
    if not all(type(line) is int for line in orphans):
        raise TypeError("marker lines must be integers")
    hooks = tuple(_hook(h) for h in _list(item["hooks"]))
    state = State(_text(item["state"]))
    # Well formed is not enough: a memo says only what ``analyze`` could have said of these
    # files, each of the file's hooks once and each state the one its parts give.
    if tuple(h.hook for h in hooks) != tuple(h for h in HOOKS if h.file == name):
        raise ValueError(f"the memo does not report each hook of {name} once")
    if state != file_state({h.state for h in hooks}, bool(orphans)):
        raise ValueError(f"the memo's state of {name} is not what its hooks give")
    return FileReport(name, files.paths[name], state, hooks, tuple(orphans))


def from_json(data: dict, files: Sources) -> Analysis:
    """The ``Analysis`` written by ``to_json``; raises ValueError/TypeError/KeyError on anything
    else, and on an analysis that ``analyze`` could not have made of ``files``."""
    state = State(_text(data["state"]))
    reports = tuple(_file(item, files) for item in _list(data["files"]))
    reason = _text(data["reason"])
    if state is State.UNSUPPORTED:
        if reports or not reason:
            raise ValueError("an unsupported installation's memo holds files or no reason")
    elif reason or [r.name for r in reports] != [t.name for t in TARGET_FILES if t.name in files.data] \
            or state != overall_state({r.state for r in reports}):
        raise ValueError("the memo's state is not what its files give")
    return Analysis(state, reports, reason)
