"""Reading a file's bytes and hashing them: the lowest layer, importing nothing of ours."""

from __future__ import annotations

import functools
import os

try:
    # CPython's built-in SHA-256, the one hashlib falls back to: importing
    # hashlib loads OpenSSL, 2 ms of the ~12 ms that status and check may take
    # beyond importing click, to hash ~200 KB that the built-in does in 0.5 ms.
    from _sha256 import sha256 as _sha256  # Python <= 3.11
except ImportError:
    try:
        from _sha2 import sha256 as _sha256  # Python 3.12+
    except ImportError:
        from hashlib import sha256 as _sha256


# A command hashes each model file for the memo's key and again for its backup
# report: the second time is a lookup (~0.5 ms of 115 KB saved at every start).
@functools.lru_cache(maxsize=16)
def sha256(data: bytes) -> str:
    return _sha256(data).hexdigest()


def sorted_paths(paths) -> list[str]:
    """``paths`` by their components, as pathlib sorts: a folder's files together, before
    those of a sibling whose name extends it ("models/" before "models.orig/", where a
    plain string sort puts "." before "/")."""
    return sorted(paths, key=lambda path: path.split(os.sep))


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()
