"""Remember the analysis of model files that have not changed since the last run.

``apply && check`` runs at every container start and every CI job, and almost
always finds the same bytes as last time; parsing and probing ~200 KB of SGLang
source again would be most of the command's run time. So the analysis is kept,
as JSON, in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, never
beside the files it describes), one memo per ``sglang/srt/models`` folder.

A memo is used only when every part of its key is what this run computes: the
tool's version and its own code (``_code_signature``), the Python version, the folder,
which model files exist and the SHA-256 of each (of the very bytes the analysis
would read). Anything else — a missing, corrupt, foreign or tampered memo, a
folder we cannot write — is a miss, and the full analysis runs. Nothing here
raises for a cache problem: the cache can only ever save time.
"""

from __future__ import annotations

import json
import os
import stat
import sys

from eagle3_patch import __version__, install
from eagle3_patch.sources import Sources
from eagle3_patch.states import Analysis, FileReport, HookReport, HookState, State
from eagle3_patch.hooks import HOOKS

DISABLE_ENV = "EAGLE3_PATCH_NO_CACHE"
# The memo of one installation is a few KB; anything far larger is not ours.
_MAX_BYTES = 1 << 20
_SPECS = {(hook.file, hook.cls, hook.method): hook for hook in HOOKS}


def disabled_by_environment() -> bool:
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def analysis_of(files: Sources, use: bool = True) -> Analysis:
    """``analyze(files)``, from the memo when its key matches, else computed and remembered."""
    memo = key = None
    if use and not disabled_by_environment():
        key = memo_key(files.folder, files.data)
        memo = _memo_path(files.folder)
        found = _load(memo, key, files) if memo and key else None
        if found is not None:
            return found
    from eagle3_patch.analysis import analyze  # parsing and probing: only a miss needs them

    analysis = analyze(files)
    if memo and key:
        _store(memo, key, analysis)
    return analysis


def remember(files: Sources, written: dict[str, bytes], analysis: Analysis,
             use: bool = True) -> None:
    """Keep ``analysis`` as that of ``files`` with ``written`` (name -> bytes) just written."""
    if not use or disabled_by_environment():
        return
    memo = _memo_path(files.folder)
    key = memo_key(files.folder, {**files.data, **written})
    if memo and key:
        _store(memo, key, analysis)


def memo_key(folder: str, data: dict[str, bytes]) -> dict | None:
    """Everything the analysis of ``data`` (file name -> bytes) in ``folder`` depends on;
    None if our own code cannot be told apart (no memo then)."""
    code = _code_signature()
    if code is None:
        return None
    return {
        "tool": __version__,
        "code": code,
        # The micro version too: a probe's detail quotes Python's own error messages.
        "python": f"{sys.implementation.name}-{'.'.join(map(str, sys.version_info[:3]))}",
        "folder": folder,
        "files": {name: install.sha256(data[name]) for name in sorted(data)},
    }


def _code_signature() -> str | None:
    # Every module of the package proper (serve/ and bench/ do not analyse): a
    # new module the analysis comes to depend on is covered without a list to
    # keep up to date, and an edit anywhere merely costs one full analysis.
    # Each by size and modification time in ns: Python itself decides by the
    # same two (in whole seconds) whether to run a module's source or its
    # cached bytecode, so an edit it would notice, the memo notices too.
    # Hashing the ~120 KB instead cost 0.5 ms of every start.
    package = os.path.dirname(__file__)
    try:
        names = sorted(n for n in os.listdir(package) if n.endswith(".py"))
        stats = [os.stat(os.path.join(package, name)) for name in names]
    except OSError:
        return None
    if os.path.basename(__file__) not in names:
        return None  # installed without sources: nothing here would tell a change
    return install.sha256("\0".join(f"{name}:{info.st_size}:{info.st_mtime_ns}"
                                     for name, info in zip(names, stats)).encode())


def _memo_path(models_dir: str) -> str | None:
    root = _cache_root()
    return os.path.join(root, "eagle3-patch", "analysis", _file_name(models_dir)) if root else None


def _cache_root() -> str | None:
    root = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(root):  # the XDG spec says to ignore a relative value
        return root
    # expanduser falls back to the passwd entry without HOME, and returns "~"
    # unchanged when there is neither.
    home = os.path.expanduser("~")
    # A relative HOME (a container user without a passwd entry) would put the
    # cache in whatever folder the command runs in.
    return os.path.join(home, ".cache") if os.path.isabs(home) else None


def _file_name(models_dir: str) -> str:
    return install.sha256(os.fsencode(models_dir))[:32] + ".json"


def _ours(info: os.stat_result) -> bool:
    # Only what this user wrote and nobody else can change may decide a check.
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _load(memo: str, key: dict, files: Sources) -> Analysis | None:
    try:
        folder = os.lstat(os.path.dirname(memo))
        if not stat.S_ISDIR(folder.st_mode) or not _ours(folder):
            return None
        # O_NOFOLLOW: a symlink planted as the memo is refused; O_NONBLOCK: a FIFO does not hang us.
        fd = os.open(memo, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or not _ours(info) or info.st_size > _MAX_BYTES:
                return None
            raw = os.read(fd, _MAX_BYTES + 1)
        finally:
            os.close(fd)
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return from_json(data["analysis"], files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _store(memo: str, key: dict, analysis: Analysis) -> None:
    text = json.dumps({"key": key, "analysis": to_json(analysis)}, sort_keys=True)
    folder, name = os.path.split(memo)
    # Not ".tmp": that names install.py's temp files beside SGLang's, which it reports as debris.
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.partial")
    try:
        root = os.path.dirname(os.path.dirname(folder))
        if os.path.exists(root) and os.stat(root).st_uid != os.geteuid():
            return  # someone else's cache (sudo keeping the user's HOME): leave it alone
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not _ours(os.lstat(folder)):
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            data = memoryview(text.encode("utf-8"))
            while data:  # a short write (disk full) is retried, so it raises
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        # No fsync: a memo torn by a crash fails to parse, which is a miss.
        os.replace(tmp, memo)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


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


def _hook(item: dict) -> HookReport:
    spec = _SPECS[item["file"], item["cls"], item["method"]]
    return HookReport(spec, HookState(item["state"]), _text(item["resolved_from"]),
                      _text(item["detail"]))


def _file(item: dict, files: Sources) -> FileReport:
    name = _text(item["name"])
    if name not in files.data or item["path"] != files.paths[name]:
        raise ValueError(f"the memo describes {item['path']}, not a file of this folder")
    orphans = item["orphan_markers"]
    if not all(type(line) is int for line in orphans):
        raise TypeError("marker lines must be integers")
    return FileReport(name, files.paths[name], State(_text(item["state"])),
                      tuple(_hook(h) for h in item["hooks"]), tuple(orphans))


def from_json(data: dict, files: Sources) -> Analysis:
    """The ``Analysis`` written by ``to_json``; raises ValueError/TypeError/KeyError on anything else."""
    state = State(_text(data["state"]))
    reports = tuple(_file(item, files) for item in data["files"])
    return Analysis(state, reports, _text(data["reason"]))
