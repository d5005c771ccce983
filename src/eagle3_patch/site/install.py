"""Every write eagle3-patch makes beside SGLang: backup, atomic replace, bytecode, as one transaction.

Nothing else in the package writes there (the user cache is ``cache/usercache.py``'s;
the lock is ``lock.py``'s). A change to several files is one
transaction: all targets are checked for writability first, backups are
written before any target, and if replacing a later target fails the earlier
ones are put back, so an installation is never left half-patched; a failed
attempt also removes every backup it wrote. A symlinked target is written
through to the file it names, so the link survives; backups and the lock stay
beside the link.

Paths are plain strings (``os.path``), not pathlib: this module is on the fast
path (tests/fastpath.py; the reasons for each trick here are in benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from typing import NamedTuple

from eagle3_patch.site.backups import BackupMeta, backup_path, meta_path
from eagle3_patch.site.filebytes import NotAFile, read_bytes
from eagle3_patch.site.writable import bytecode_files, ensure_writable, real_file, refuse, write_failed


class FileChange(NamedTuple):
    """Replace ``path`` (now ``old``) by ``new``; write or drop its backup alongside."""

    path: str
    old: bytes
    new: bytes
    backup: bytes | None = None        # original bytes to save first, if not saved already
    meta: BackupMeta | None = None     # the record to write alongside, if any
    drop_backup: bool = False


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old file or the new, never a mix; a
    symlinked model file is written where it points (the link stays)."""
    _replace(path, data, follow=True)


def write_ours(path: str | os.PathLike, data: bytes) -> None:
    """``atomic_write`` for a file of ours (a backup, its record): it replaces whatever has its
    name, a symbolic link included, and is never written through one (to anywhere it points)."""
    _replace(path, data, follow=False)


def _replace(path: str | os.PathLike, data: bytes, follow: bool) -> None:
    import tempfile  # status and check never write

    path = real_file(path) if follow else os.fspath(path)
    folder, name = os.path.split(path)
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISLNK(info.st_mode):
        info = None
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if info is not None:
            os.chmod(tmp, stat.S_IMODE(info.st_mode))
            with contextlib.suppress(PermissionError):  # only root may give files away
                os.chown(tmp, info.st_uid, info.st_gid)
        else:
            # A new file (a backup, a deleted file restored) gets the mode any new
            # file gets here, not mkstemp's private 0600 that a server user cannot read.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = path  # a failed write() names no file; say which one
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_bytecode(target: str) -> None:
    """Remove every cached .pyc of ``target`` (any interpreter tag).

    Timestamp-checked .pyc files would notice the new source, but hash-based
    "unchecked" ones (common in container images) would keep running the old
    code; Python rebuilds whichever it needs on next import.
    """
    for pyc in bytecode_files(target):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pyc)


def _write_backup(change: FileChange, undo: dict[str, bytes | None]) -> None:
    """Write the backup and its record, noting in ``undo`` what each path held before."""
    writes = []
    if change.backup is not None:
        writes.append((backup_path(change.path), change.backup))
    if change.meta is not None:
        meta = json.dumps(change.meta._asdict(), indent=2) + "\n"
        writes.append((meta_path(change.path), meta.encode("utf-8")))
    for path, data in writes:
        if path not in undo:
            try:
                undo[path] = read_bytes(path, follow=False)
            except FileNotFoundError:
                undo[path] = None
            except NotAFile as exc:
                if exc.errno != errno.ELOOP:
                    raise
                undo[path] = None  # a link planted there is replaced, and not put back
        write_ours(path, data)


def _undo_backups(undo: dict[str, bytes | None]) -> None:
    for path, before in undo.items():
        with contextlib.suppress(OSError):  # best effort: the disk may still be full
            if before is None:
                os.unlink(path)
            else:
                write_ours(path, before)


def _roll_back(done: list[FileChange], undo: dict[str, bytes | None]) -> list[str]:
    """Put written targets and backups back; returns the targets that could not be
    (their backups are kept, so revert still works)."""
    stuck = []
    for change in reversed(done):
        try:
            atomic_write(change.path, change.old)
        except OSError:
            stuck.append(change.path)
    kept = {p for path in stuck for p in (backup_path(path), meta_path(path))}
    _undo_backups({path: before for path, before in undo.items() if path not in kept})
    return stuck


def drop_backup(target: str) -> None:
    """Remove our backup and its record (after revert, or when an upgrade made them stale)."""
    for path in (meta_path(target), backup_path(target)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def commit(changes: list[FileChange]) -> None:
    """Apply ``changes`` all or nothing (see module docstring)."""
    ensure_writable([change.path for change in changes])
    done: list[FileChange] = []
    undo: dict[str, bytes | None] = {}
    try:
        for change in changes:
            _write_backup(change, undo)
        for change in changes:
            if change.new != change.old:
                atomic_write(change.path, change.new)
            done.append(change)
    except OSError as exc:
        stuck = _roll_back(done, undo)
        raise write_failed(os.fspath(exc.filename or changes[0].path), exc, stuck) from None
    for change in changes:
        drop_bytecode(change.path)
        if change.drop_backup:
            drop_backup(change.path)


def remove_after_uninstall(paths: list[str], top: str) -> None:
    """Delete our files from an uninstalled package, then the folders left empty, up to ``top``."""
    above = os.path.dirname(top)
    try:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for folder in sorted({os.path.dirname(p) for p in paths}, key=lambda p: p.count(os.sep),
                             reverse=True):
            while folder != above and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
                folder = os.path.dirname(folder)
    except OSError as exc:
        raise refuse(os.fspath(exc.filename or top), f"Removing it failed: {exc.strerror}.") from None
