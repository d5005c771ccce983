"""Memoised hand-offs in the user's cache folder, so a repeated `run` skips libcst.

Computing the patched sources costs ~0.4 s (libcst's import and parse); `run`'s
hand-off budget is 0.3 s. The key covers this eagle3-patch (version and hook
sources) and the path and SHA-256 of every file the analysis reads, so any
change to either computes afresh. Where the cache folder is not writable
(a read-only root filesystem) nothing is stored and every run computes; the
children verify each file's SHA-256 themselves either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from eagle3_patch import __version__, install
from eagle3_patch.hooks import HOOKS, TARGET_FILES
from eagle3_patch.locate import SGLangInstall

FORMAT = 3


def cache_dir() -> Path | None:
    """The memo folder, made if needed; None where it is unusable or others may write it.

    Its entries become code in every SGLang process, so a folder another user
    may write (a shared XDG_CACHE_HOME) is not trusted; nor is a relative one
    (a container user with no passwd entry and no HOME), which would be the cwd.
    """
    root = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"))
    folder = root / "eagle3-patch" / "inmemory"
    if not root.is_absolute():
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError:
        return None
    return folder if info.st_uid == os.getuid() and not info.st_mode & 0o022 else None


def key(sglang: SGLangInstall) -> str | None:
    """Names what the analysis would conclude: our code, and every file it may read.

    None if a file cannot be read: the analysis then says why, with its own exit code.
    """
    names = sorted({t.name for t in TARGET_FILES} | {b for t in TARGET_FILES for b in t.bases_from})
    files = {}
    for name in names:
        path = Path(sglang.models_dir, name)
        try:
            files[str(path.resolve())] = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            continue
        except OSError:
            return None
    document = {"format": FORMAT, "tool_version": __version__,
                "hooks": [hook.source for hook in HOOKS], "files": files}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def load(name: str) -> dict | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        entry = json.loads((folder / f"{name}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None  # absent, unreadable or damaged: compute afresh
    valid = (isinstance(entry, dict) and isinstance(entry.get("encoded"), str)
             and isinstance(entry.get("files"), list))
    return entry if valid else None


def store(name: str, entry: dict) -> None:
    folder = cache_dir()
    if folder is None:
        return
    with contextlib.suppress(OSError):
        install.atomic_write(folder / f"{name}.json", json.dumps(entry).encode("utf-8"))
