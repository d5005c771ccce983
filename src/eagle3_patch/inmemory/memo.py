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
    """None where there is no absolute home (a container user without a passwd entry)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"))
    return root / "eagle3-patch" / "inmemory" if root.is_absolute() else None


def key(sglang: SGLangInstall) -> str:
    """Names what the analysis would conclude: our code, and every file it may read."""
    names = sorted({t.name for t in TARGET_FILES} | {b for t in TARGET_FILES for b in t.bases_from})
    files = {}
    for name in names:
        path = sglang.models_dir / name
        with contextlib.suppress(FileNotFoundError):
            files[str(path.resolve())] = hashlib.sha256(path.read_bytes()).hexdigest()
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
        folder.mkdir(parents=True, exist_ok=True)
        install.atomic_write(folder / f"{name}.json", json.dumps(entry).encode("utf-8"))
