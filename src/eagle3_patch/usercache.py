"""eagle3-patch's user cache: where it lives, whom it trusts, what its keys cover.

Every entry lives under ``<root>/eagle3-patch/<cache>/``, where ``<root>`` is
``$XDG_CACHE_HOME`` (when absolute, as the XDG spec says) or ``$HOME/.cache`` (when
absolute; without HOME, the passwd entry's), else no cache at all; never beside SGLang:

- ``analysis/``: the remembered analysis of a models folder (``memo.py``);
- ``inmemory/``: what ``run`` hands to SGLang's processes (``inmemory/memo.py``);
- ``bytecode/``: the code the bootstrap compiled from that hand-off, written in
  SGLang's own processes by ``inmemory/bootstrap/sitecustomize.py``. That file
  runs where eagle3-patch may not be importable, so it keeps a standard-library
  copy of this rule (tests/test_usercache.py proves that both agree).
- ``logs/``: the traceback of an internal error (``crashlog.py``), for its bug report.

The trust rule: the root, ``eagle3-patch/`` and the cache's folder must each be
a folder of this user that no one else may write (no group or other write
bit), or no cache is used at all; an entry must be a regular file of this user
that no one else may write. Each is checked on the descriptor that was opened
(``fstat``), and each folder and entry below the root is opened relative to
its parent's descriptor with ``O_NOFOLLOW``, so a path checked earlier never
stands in for what is read: swapping a name for a symlink or another folder in
between (a shared cache root) changes nothing we load. The root itself may be
a symlink the user made (``~/.cache -> /data/cache``): what counts is the
folder it opens.

Every key includes eagle3-patch's own code (``code_identity``) and the Python
running it (``identity``, once per command); no key, no cache: ``--no-cache`` (``use=False``) and
``EAGLE3_PATCH_NO_CACHE`` give none, and so does a build whose code cannot be
told apart. Nothing here raises for a cache problem: the cache can only save time.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from collections.abc import Callable
from typing import TypeVar

from eagle3_patch import __version__
from eagle3_patch.filebytes import sha256

T = TypeVar("T")
DISABLE_ENV = "EAGLE3_PATCH_NO_CACHE"
TOOL_FOLDER = "eagle3-patch"
ANALYSIS, INMEMORY, BYTECODE = "analysis", "inmemory", "bytecode"
LOGS = "logs"
# An analysis or a hand-off is a few KB to ~100 KB; a compiled 115 KB qwen3_5.py
# is ~200 KB. Anything far larger is not ours.
MAX_BYTES = {ANALYSIS: 1 << 20, INMEMORY: 1 << 20, BYTECODE: 16 << 20}

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
# The folders whose modules decide what an entry holds: the package proper, and
# the in-memory hand-off with its bootstrap (serve/ and bench/ write no entry).
_CODE_FOLDERS = ((), ("inmemory",), ("inmemory", "bootstrap"))
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted as an entry does not hang us (it is no regular file either).
_ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class _NotOurs(OSError):
    """A folder or entry someone else owns or may write."""


def disabled() -> bool:
    """Whether ``EAGLE3_PATCH_NO_CACHE`` turns every cache off."""
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def identity(use: bool = True) -> dict | None:
    """This eagle3-patch (version and code) and this Python, as every key names them; computed
    once per command (``code_identity`` lists and stats our modules) and handed to ``key``.
    None where no cache may be used: ``use`` false (``--no-cache``), ``EAGLE3_PATCH_NO_CACHE``
    set, or our own code cannot be told apart."""
    if not use or disabled():
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
    """Every module that decides what an entry holds, by size and modification time in ns.

    Python itself decides by the same two (in whole seconds) whether to run a
    module's source or its cached bytecode, so an edit it would notice, the
    cache notices too; a new module is covered without a list to keep up to
    date, and nothing is hashed at start-up (benchmarks/README.md).
    None for an installation without sources: nothing would tell a change.
    """
    lines = []
    try:
        for parts in _CODE_FOLDERS:
            folder = os.path.join(_PACKAGE, *parts)
            for name in sorted(n for n in os.listdir(folder) if n.endswith(".py")):
                info = os.stat(os.path.join(folder, name))
                lines.append(f"{'/'.join((*parts, name))}:{info.st_size}:{info.st_mtime_ns}")
    except OSError:
        return None
    if not any(line.startswith(os.path.basename(__file__) + ":") for line in lines):
        return None
    return sha256("\n".join(lines).encode())


def cache_root() -> str | None:
    """``$XDG_CACHE_HOME`` or ``~/.cache``; None where neither is an absolute path."""
    root = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(root):  # the XDG spec says to ignore a relative value
        return root
    # Without HOME, the passwd entry (expanduser; "~" unchanged when there is none). A relative
    # HOME (a container user without a passwd entry) would put the cache in whatever folder the
    # command runs in, and an empty one is no home either (expanduser would make it "/").
    home = os.environ["HOME"] if "HOME" in os.environ else os.path.expanduser("~")
    return os.path.join(home, ".cache") if os.path.isabs(home) else None


def read(cache: str, name: str) -> bytes | None:
    """The entry ``name`` of ``cache``, if the trust rule holds for it and every folder above."""
    folder = _open_folder(cache, create=False)
    if folder is None:
        return None
    try:
        fd = os.open(name, _ENTRY_FLAGS, dir_fd=folder)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or not _ours(info) or info.st_size > MAX_BYTES[cache]:
                return None
            return _read_at_most(fd, MAX_BYTES[cache])
        finally:
            os.close(fd)
    except OSError:
        return None
    finally:
        os.close(folder)


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
    folder = _open_folder(cache, create=True)
    if folder is None:
        return
    # Not ".tmp": that names install.py's temp files beside SGLang's, which it reports as debris.
    partial = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.partial"
    try:
        _create_private(folder, partial, data)
        # No fsync: an entry torn by a crash fails to parse, which is a miss.
        # Tensor-parallel workers may race here: each replaces the entry whole.
        os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial, dir_fd=folder)
    finally:
        os.close(folder)


def write_new(cache: str, name: str, data: bytes) -> str | None:
    """Write ``data`` as the new entry ``name`` of ``cache`` (never over another), where the
    rule holds: its path, or None where no cache may be used."""
    root, folder = cache_root(), _open_folder(cache, create=True)
    if folder is None:
        return None
    try:
        _create_private(folder, name, data)
    except OSError:
        return None
    finally:
        os.close(folder)
    return os.path.join(root, TOOL_FOLDER, cache, name)


def _create_private(folder: int, name: str, data: bytes) -> None:
    """A new file ``name`` in ``folder`` (never an existing one, never through a link), mode
    0600, holding ``data``; OSError when it cannot be made or written whole."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
    try:
        view = memoryview(data)
        while view:  # a short write (disk full) is retried, so it raises
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _ours(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _trusted(fd: int) -> int:
    """``fd``, if the folder it opened passes the rule; else it is closed and _NotOurs raised."""
    if _ours(os.fstat(fd)):
        return fd
    os.close(fd)
    raise _NotOurs(f"{fd} is not ours")


def _open_folder(cache: str, create: bool) -> int | None:
    """A descriptor of ``<root>/eagle3-patch/<cache>``, each step checked; made if ``create``."""
    root = cache_root()
    if root is None:
        return None
    fd = -1
    try:
        if create:
            os.makedirs(root, mode=0o700, exist_ok=True)
        fd = _trusted(os.open(root, _FOLDER_FLAGS))
        for name in (TOOL_FOLDER, cache):
            if create:
                # Only below a root that passed: nothing of ours in someone else's cache.
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)
            parent, fd = fd, -1
            try:
                fd = _trusted(os.open(name, _FOLDER_FLAGS | os.O_NOFOLLOW, dir_fd=parent))
            finally:
                os.close(parent)
        return fd
    except OSError:
        if fd >= 0:
            os.close(fd)
        return None


def _read_at_most(fd: int, limit: int) -> bytes | None:
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None  # grew past the limit since fstat
