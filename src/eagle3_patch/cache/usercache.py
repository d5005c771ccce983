"""eagle3-patch's user cache: where it lives, whom it trusts, what its keys cover.

Every entry lives under ``<root>/eagle3-patch/<cache>/``, where ``<root>`` is
``$XDG_CACHE_HOME`` (when absolute, as the XDG spec says) or ``$HOME/.cache`` (when
absolute; without HOME, the passwd entry's), else no cache at all; never beside SGLang:

- ``analysis/``: the remembered analysis of a models folder (``cache/analysismemo.py``);
- ``inmemory/``: what ``run`` hands to SGLang's processes (``inmemory/memo.py``);
- ``bytecode/``: the code the bootstrap compiled from that hand-off, written in
  SGLang's own processes by ``inmemory/bootstrap/sitecustomize.py``.
- ``logs/``: the traceback of an internal error (``ui/crashlog.py``), for its bug report.

The trust rule: the root, ``eagle3-patch/`` and the cache's folder must each be
a folder of this user that no one else may write (no group or other write
bit), or no cache is used at all; an entry must be a regular file of this user
that no one else may write. Each is checked on the descriptor that was opened
(``fstat``), and each folder and entry below the root is opened relative to
its parent's descriptor with ``O_NOFOLLOW``, so a path checked earlier never
stands in for what is read: swapping a name for a symlink or another folder in
between (a shared cache root) changes nothing we load. The root itself may be
a symlink the user made (``~/.cache -> /data/cache``): what counts is the
folder it opens. The rule and the disk access it governs live in ``sharedrules``,
which the bootstrap loads too: it runs where eagle3-patch may not be importable.

Every key includes eagle3-patch's own code (``code_identity``) and the Python
running it (``identity``, once per command); no key, no cache: ``--no-cache`` (``use=False``) and
``EAGLE3_PATCH_NO_CACHE`` give none, and so does a build whose code cannot be
told apart. Nothing here raises for a cache problem: the cache can only save time.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from eagle3_patch import __version__, sharedrules
from eagle3_patch.site.filebytes import sha256

T = TypeVar("T")
ANALYSIS, INMEMORY, BYTECODE = "analysis", "inmemory", sharedrules.BYTECODE
LOGS = "logs"
# An analysis or a hand-off is a few KB to ~100 KB. Anything far larger is not ours.
MAX_BYTES = {ANALYSIS: 1 << 20, INMEMORY: 1 << 20, BYTECODE: sharedrules.MAX_BYTECODE_BYTES}

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # eagle3_patch/, above cache/
_THIS_MODULE = os.path.relpath(os.path.abspath(__file__), _PACKAGE).replace(os.sep, "/")  # as _modules names it


def identity(use: bool = True) -> dict | None:
    """This eagle3-patch (version and code) and this Python, as every key names them; computed
    once per command (``code_identity`` lists and stats our modules) and handed to ``key``.
    None where no cache may be used: ``use`` false (``--no-cache``), ``EAGLE3_PATCH_NO_CACHE``
    set, or our own code cannot be told apart."""
    if not use or sharedrules.cache_disabled():
        return None
    code = code_identity()
    if code is None:
        return None
    return {
        "tool": __version__,
        "code": code,
        # The micro version too: a probe's detail quotes Python's own error messages.
        "python": f"{sys.implementation.name}-{'.'.join(map(str, sys.version_info[:3]))}",
    }


def key(cache: str, parts: dict, ours: dict | None) -> dict | None:
    """What an entry of ``cache`` depends on: ``parts`` and ``ours`` (``identity``); None where
    ``ours`` is: no cache may be used."""
    return None if ours is None else {"cache": cache, **ours, **parts}


def digest(document: dict) -> str:
    """A key as a file name: the SHA-256 of its JSON."""
    return sha256(json.dumps(document, sort_keys=True).encode("utf-8"))


def code_identity() -> str | None:
    """Every module of the package, in every folder below it, by size and modification time in ns.

    Python itself decides by the same two (in whole seconds) whether to run a
    module's source or its cached bytecode, so an edit it would notice, the
    cache notices too; a module added or moved anywhere in the package is
    covered without a list of folders to keep up to date, and nothing is hashed
    at start-up (benchmarks/README.md).
    None for an installation without sources: nothing would tell a change.
    """
    try:
        lines = _modules(_PACKAGE, "")
    except OSError:
        return None
    if not any(line.startswith(_THIS_MODULE + ":") for line in lines):
        return None
    return sha256("\n".join(lines).encode())


def _modules(folder: str, prefix: str) -> list[str]:
    """``<path>:<size>:<mtime ns>`` of each module in ``folder`` and every folder below it."""
    lines = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda entry: entry.name):
            if entry.name.endswith(".py"):
                info = entry.stat()
                lines.append(f"{prefix}{entry.name}:{info.st_size}:{info.st_mtime_ns}")
            elif entry.name != "__pycache__" and entry.is_dir():
                lines.extend(_modules(entry.path, f"{prefix}{entry.name}/"))
    return lines


def read(cache: str, name: str) -> bytes | None:
    """The entry ``name`` of ``cache``, if the trust rule holds for it and every folder above."""
    return sharedrules.read_entry(cache, name, MAX_BYTES[cache])


def load(cache: str, name: str, decode: Callable[[bytes], T]) -> T | None:
    """The entry ``name`` of ``cache`` as ``decode`` makes it, or None: absent, not trusted,
    or damaged. Whatever ``decode`` raises means damaged: an entry torn by a crash or edited
    by hand (valid JSON of another shape, huge numbers, deep nesting) is a miss, never an
    error, and the caller computes afresh and writes it again. So ``decode`` returns only
    values it checked all the way down: nothing from the file reaches its caller unchecked.
    """
    raw = read(cache, name)
    if raw is None:
        return None
    try:
        return decode(raw)
    except Exception:  # each one is a damaged entry, whatever its type
        return None


def write(cache: str, name: str, data: bytes) -> None:
    """Make ``data`` the entry ``name`` of ``cache`` (whole or not at all), where the rule holds."""
    sharedrules.write_entry(cache, name, data)


def write_new(cache: str, name: str, data: bytes) -> str | None:
    """Write ``data`` as the new entry ``name`` of ``cache`` (never over another), where the
    rule holds: its path, or None where no cache may be used."""
    root, folder = sharedrules.cache_root(), sharedrules.open_folder(cache, create=True)
    if folder is None:
        return None
    try:
        sharedrules.create_private(folder, name, data)
    except OSError:
        return None
    finally:
        os.close(folder)
    return os.path.join(root, sharedrules.TOOL_FOLDER, cache, name)
