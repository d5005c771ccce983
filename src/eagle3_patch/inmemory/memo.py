"""Memoised hand-offs in the user's cache (``cache/usercache.py``), so a repeated `run` skips libcst.

Computing the patched sources means importing libcst and parsing; the timings are in
benchmarks/README.md. The key covers this eagle3-patch (version and code,
through ``usercache.key``) and the path and SHA-256 of every file the analysis
reads, as the snapshot read them, so any change to either computes afresh.
Where the cache cannot be used nothing is stored and every run computes; the
children verify each file's SHA-256 themselves either way.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from eagle3_patch.cache import usercache
from eagle3_patch.inmemory import payload
from eagle3_patch.site.sources import Sources


class HandoffKey(NamedTuple):
    """An entry's name, and the files (real path -> SHA-256) whose analysis it holds."""

    name: str
    files: dict[str, str]


def key(files: Sources, ours: dict | None) -> HandoffKey | None:
    """Names what the analysis of ``files`` (a snapshot's) concludes: our code (``ours``,
    ``usercache.identity``), and every file it read. None where no cache may be used."""
    if ours is None:
        return None
    hashed = {os.path.realpath(path): files.sha256(name) for name, path in files.paths.items()}
    document = usercache.key(usercache.INMEMORY, {"files": hashed}, ours)
    return HandoffKey(usercache.digest(document), hashed)


def bytecode_key(ours: dict | None) -> str | None:
    """What the bootstrap's compiled code depends on beyond what it adds itself (its
    interpreter's bytecode magic, the module's path and patched bytes); None: no memo."""
    document = usercache.key(usercache.BYTECODE, {}, ours)
    return usercache.digest(document) if document else None


def load(key: HandoffKey) -> dict | None:
    """The hand-off stored under ``key``: ``{"encoded": str, "files": [str, ...]}``, its payload
    decoded and checked against the files ``key`` hashed (else every SGLang process would stop
    at the import, exit 12); None where there is none, or it is damaged in any way."""
    def decode(raw: bytes) -> dict:
        entry = json.loads(raw)
        encoded, files = entry["encoded"], entry["files"]
        if not (isinstance(encoded, str) and isinstance(files, list)
                and all(isinstance(file, str) for file in files)):
            raise TypeError("encoded must be a string, files a list of strings")
        patches = payload.decode(encoded)
        if len(files) != len(patches) or any(key.files.get(p.path) != p.sha256 for p in patches):
            raise ValueError("the payload serves other files, or other bytes, than these")
        return {"encoded": encoded, "files": files}

    return usercache.load(usercache.INMEMORY, f"{key.name}.json", decode)


def store(key: HandoffKey, entry: dict) -> None:
    usercache.write(usercache.INMEMORY, f"{key.name}.json", json.dumps(entry).encode("utf-8"))
