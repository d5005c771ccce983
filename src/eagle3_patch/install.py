"""Every write eagle3-patch makes beside SGLang: lock, backup, atomic replace, bytecode.

Nothing else in the package writes there (the user cache is ``usercache.py``'s). A change to several files is one
transaction: all targets are checked for writability first, backups are
written before any target, and if replacing a later target fails the earlier
ones are put back, so an installation is never left half-patched; a failed
attempt also removes every backup it wrote. A symlinked target is written
through to the file it names, so the link survives; backups and the lock stay
beside the link.

Paths are plain strings (``os.path``), not pathlib: this module is on the fast
path (``fastpath.py``; the reasons for each trick here are in benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import stat
import sys
import time
from typing import NamedTuple

from eagle3_patch.errors import LockTimeout, NotWritable
from eagle3_patch.hints import quote

try:
    # CPython's built-in SHA-256, the one hashlib falls back to, without loading OpenSSL.
    from _sha256 import sha256 as _sha256  # Python <= 3.11
except ImportError:
    try:
        from _sha2 import sha256 as _sha256  # Python 3.12+
    except ImportError:
        from hashlib import sha256 as _sha256

BACKUP_SUFFIX = ".eagle3-bak"
META_SUFFIX = ".eagle3-bak.json"
LOCK_NAME = ".eagle3-patch.lock"
LOCK_TIMEOUT_S = 120
WAIT_NOTICE_S = 2
_LOCK_POLL_S = 0.05
# tempfile.mkstemp(prefix=".<name>.", suffix=".tmp") names: 8 random characters.
# Compiled (by re's own cache) only when a candidate file exists, almost never.
_TEMP_NAME = r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp"


# Hashed for the memo's key and again for the backup report: the second time is a lookup.
@functools.lru_cache(maxsize=16)
def sha256(data: bytes) -> str:
    return _sha256(data).hexdigest()


class BackupMeta(NamedTuple):
    """What we need to tell an intact patch from an edited file or an upgrade."""

    original_sha256: str
    patched_sha256: str
    tool_version: str
    sglang_version: str


def sorted_paths(paths) -> list[str]:
    """``paths`` by their components, as pathlib sorts: a folder's files together, before
    those of a sibling whose name extends it ("models/" before "models.orig/", where a
    plain string sort puts "." before "/")."""
    return sorted(paths, key=lambda path: path.split(os.sep))


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def backup_path(target: str | os.PathLike) -> str:
    return os.fspath(target) + BACKUP_SUFFIX


def meta_path(target: str | os.PathLike) -> str:
    return os.fspath(target) + META_SUFFIX


def read_meta(target: str) -> BackupMeta | None:
    try:
        raw = json.loads(read_bytes(meta_path(target)))
        return BackupMeta(**{k: str(raw[k]) for k in BackupMeta._fields})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_backup(target: str) -> bytes | None:
    try:
        return read_bytes(backup_path(target))
    except OSError:
        return None


class FileChange(NamedTuple):
    """Replace ``path`` (now ``old``) by ``new``; write or drop its backup alongside."""

    path: str
    old: bytes
    new: bytes
    backup: bytes | None = None        # original bytes to save first, if not saved already
    meta: BackupMeta | None = None     # the record to write alongside, if any
    drop_backup: bool = False


def _bytecode(target: str | os.PathLike) -> list[str]:
    """The cached bytecode of ``target``: ``__pycache__/<stem>.<tag>.pyc``, any tag."""
    folder, name = os.path.split(os.fspath(target))
    cache = os.path.join(folder, "__pycache__")
    prefix = os.path.splitext(name)[0] + "."
    try:
        names = os.listdir(cache)
    except OSError:
        return []
    return sorted(os.path.join(cache, n) for n in names if n.startswith(prefix)
                  and n.endswith(".pyc") and len(n) >= len(prefix) + len(".pyc"))


def _refuse(path: str, why: str) -> NotWritable:
    mount = read_only_mount(path)
    if mount is not None:
        # Root cannot write there either: advice to become someone else would send the user astray.
        return NotWritable(
            f"Cannot write {path}.",
            f"It is on a read-only file system (mounted at {mount}).",
            "Mount it read-write first (no user, root included, can write to a read-only mount); "
            "nothing was changed.",
        )
    return NotWritable(
        f"Cannot write {path}.",
        why,
        "Run the command as the owner of that site-packages (e.g. with sudo, or as the user "
        "that created the venv), or make the file writable; nothing was changed.",
    )


def read_only_mount(path: str) -> str | None:
    """The mount point of the read-only file system holding ``path`` (or its nearest existing
    folder), or None when that file system may be written."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        read_only = os.statvfs(path).f_flag & os.ST_RDONLY
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return None
    return _mount_of(path)[1] if read_only else None


def _mount_of(path: str) -> tuple[str, str]:
    """(device, mount point) of the file system holding ``path``.

    The mount table's longest mount point above ``path`` (the last one on a point is the
    visible one); a bind mount of a folder onto itself shares its parent's device number,
    so walking up until ``os.path.ismount`` would name the parent's mount instead.
    """
    real = os.path.realpath(path)
    found = None
    with contextlib.suppress(OSError):
        with open("/proc/self/mounts", encoding="utf-8") as table:
            for line in table:
                fields = line.split()
                if len(fields) < 2:
                    continue
                point = _unescape(fields[1])
                if (real == point or real.startswith(point.rstrip("/") + "/")) and (
                        found is None or len(point) >= len(found[1])):
                    found = (_unescape(fields[0]), point)
    if found:
        return found
    mount = real
    while not os.path.ismount(mount):
        mount = os.path.dirname(mount)
    return mount, mount


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in mount paths as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _write_failed(path: str, exc: OSError, stuck: list[str] = ()) -> NotWritable:
    """The error for a write that failed midway, after undoing what could be undone."""
    undone = ("Everything this attempt wrote was removed; nothing was changed." if not stuck else
              f"Putting back {', '.join(map(str, stuck))} failed too: it is left patched, with "
              f"its backup, and the other files are unchanged.")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        device, mount = _mount_of(os.path.dirname(path))
        return NotWritable(
            f"Cannot write {path}: no space left on {device} (mounted at {mount}).",
            f"{exc.strerror}: the file system, or this user's disk quota on it, is full. {undone}",
            f"Free some space on {mount} (check with: df -h {quote(mount)}), then run the "
            "same command again.",
        )
    if stuck:
        return NotWritable(f"Cannot write {path}.", f"Writing failed: {exc.strerror}. {undone}",
                           "Fix the cause, then run the same command again.")
    return _refuse(path, f"Writing failed: {exc.strerror}.")


def real_file(target: str | os.PathLike) -> str:
    """Where ``target``'s bytes live: the file a symlink names, else ``target`` itself."""
    return os.path.realpath(target)


def ensure_writable(paths: list[str]) -> None:
    """Refuse before touching anything if any target, its folder or bytecode is read-only."""
    for link in map(os.fspath, paths):
        path = real_file(link)
        folder = os.path.dirname(path)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise _refuse(path, f"Its folder {folder} is not writable by this user.")
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue  # a deleted file being restored: only its folder must be writable
        # A file with every write bit cleared was made read-only on purpose (an
        # image that must not change); root could replace it anyway, we don't.
        if not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise _refuse(path, "The file is read-only.")
        link_folder = os.path.dirname(link)
        if not os.access(link_folder, os.W_OK | os.X_OK):
            raise _refuse(link, f"Its folder {link_folder} (for the backup) is not writable "
                                "by this user.")
        for pyc in _bytecode(link):
            cache = os.path.dirname(pyc)
            if not os.access(cache, os.W_OK | os.X_OK):
                raise _refuse(pyc, f"Its cached bytecode in {cache} cannot be refreshed.")


def _tell_waiting(lock_path: str) -> None:
    print(f"eagle3-patch: waiting for another eagle3-patch process, which holds {lock_path} "
          f"(giving up after {LOCK_TIMEOUT_S} s)...", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked(folder: str | os.PathLike, tell_waiting=_tell_waiting, clock=time.monotonic):
    """Hold the cross-process lock for ``folder`` (one per sglang/srt/models).

    Several containers on a shared volume, or one process per GPU rank, may
    apply at once; the lock makes them decide and write one at a time, so the
    later ones find the file already patched. ``tell_waiting`` is called once
    if the lock is still held by another process after ``WAIT_NOTICE_S``.
    Only acquiring is guarded here: what the locked block raises is its own.

    The lock is flock(2) on ``LOCK_NAME``, the call filelock makes on Linux
    too; the kernel releases it when the holder's process ends, however it
    ends. filelock itself is not imported (fast path: benchmarks/README.md).
    """
    path = os.path.join(folder, LOCK_NAME)
    try:
        # As filelock opens it: a symlink planted as the lock is refused (O_NOFOLLOW),
        # not followed to create a file wherever it points; the mode is left to the
        # umask (0o666), so on a shared install the next user can take the lock too.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except PermissionError as exc:
        raise _refuse(path, f"The lock file cannot be created: {exc.strerror}.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotWritable(
                f"Cannot write {path}: it is a symbolic link.",
                "eagle3-patch takes its lock only on a file of its own, never through a link "
                "(which could make it create a file anywhere); nothing was changed.",
                f"Remove the link (rm {quote(path)}), then run the same command again.",
            ) from None
        raise _write_failed(path, exc) from None
    try:
        _refuse_foreign_lock(fd, os.fspath(folder), path)
        _acquire(fd, path, tell_waiting, clock)
        yield
    finally:
        os.close(fd)  # releases the lock


def _refuse_foreign_lock(fd: int, folder: str, path: str) -> None:
    """In a sticky folder only a file's owner (or the folder's) may remove it: a lock
    file of another user could be deleted while held and a second one locked beside
    it, so it is refused, as filelock refuses it."""
    parent = os.stat(folder)
    if not parent.st_mode & stat.S_ISVTX:
        return
    owner = os.fstat(fd).st_uid
    if owner not in (os.geteuid(), parent.st_uid):
        raise NotWritable(
            f"Cannot write {path}: it belongs to uid {owner}.",
            f"Its folder {folder} is sticky, so that user could remove the lock while this "
            "process holds it, and another process could then lock a new one beside it.",
            f"Remove it as its owner or as root (rm {quote(path)}), then run the same command "
            "again.",
        )


def _acquire(fd: int, path: str, tell_waiting, clock) -> None:
    import fcntl  # only paths that write take the lock

    start, told = clock(), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:  # ENOLCK: a file system that keeps no locks
            raise _write_failed(path, exc) from None
        waited = clock() - start
        if waited >= LOCK_TIMEOUT_S:
            raise LockTimeout(
                f"Another eagle3-patch process has held {path} for {LOCK_TIMEOUT_S} s.",
                "Only one process may patch an SGLang installation at a time.",
                "Wait for it to finish and run the command again; if none is running, "
                "the lock holder crashed and the lock is released as soon as its process exits.",
            )
        if waited >= WAIT_NOTICE_S and not told:
            tell_waiting(path)
            told = True
        time.sleep(_LOCK_POLL_S)


def leftovers(targets: list[str]) -> list[str]:
    """Temp files of ours that a killed write left beside ``targets`` (or their link targets)."""
    found = set()
    for target in map(os.fspath, targets):
        real = real_file(target)
        names = {os.path.basename(p) for p in (target, real, backup_path(target), meta_path(target))}
        for folder in {os.path.dirname(target), os.path.dirname(real)}:
            try:
                candidates = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".tmp")]
            except OSError:  # a missing or unreadable folder holds nothing we can remove
                continue
            for name in candidates:
                match = re.fullmatch(_TEMP_NAME, name)
                if match and match.group("name") in names:
                    found.add(os.path.join(folder, name))
    return sorted_paths(found)


def remove_leftovers(targets: list[str]) -> list[str]:
    """Delete ``leftovers(targets)``; call under ``locked``, so no live write's temp file goes."""
    removed = []
    for path in leftovers(targets):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
    return removed


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old file or the new, never a mix."""
    import tempfile  # status and check never write

    path = real_file(path)
    folder, name = os.path.split(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
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
    for pyc in _bytecode(target):
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
                undo[path] = read_bytes(path)
            except FileNotFoundError:
                undo[path] = None
        atomic_write(path, data)


def _undo_backups(undo: dict[str, bytes | None]) -> None:
    for path, before in undo.items():
        with contextlib.suppress(OSError):  # best effort: the disk may still be full
            if before is None:
                os.unlink(path)
            else:
                atomic_write(path, before)


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
        raise _write_failed(os.fspath(exc.filename or changes[0].path), exc, stuck) from None
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
        raise _refuse(os.fspath(exc.filename or top), f"Removing it failed: {exc.strerror}.") from None
