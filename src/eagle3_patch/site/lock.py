"""The cross-process lock that makes writers to one SGLang decide and write one at a time."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import time

from eagle3_patch.errors import LockTimeout, NotWritable
from eagle3_patch.site.writable import refuse, write_failed
from eagle3_patch.text.masking import printable
from eagle3_patch.text.shellwords import quote

LOCK_NAME = ".eagle3-patch.lock"
LOCK_TIMEOUT_S = 120
WAIT_NOTICE_S = 2
_LOCK_POLL_S = 0.05


def _tell_waiting(lock_path: str) -> None:
    print(f"eagle3-patch: waiting for another eagle3-patch process, which holds {printable(lock_path)} "
          f"(giving up after {LOCK_TIMEOUT_S} s)...", file=sys.stderr, flush=True)


class Held:
    """The lock while this process holds it."""

    def __init__(self) -> None:
        self.removing = False

    def remove_when_done(self) -> None:
        """Delete the lock file as the block's last act, still holding it: for a revert that
        leaves nothing else of ours, so the folder holds only what pip's RECORD lists."""
        self.removing = True


@contextlib.contextmanager
def locked(folder: str | os.PathLike, tell_waiting=_tell_waiting, clock=time.monotonic):
    """Hold the cross-process lock for ``folder`` (one per sglang/srt/models); yields a ``Held``.

    Several containers on a shared volume, or one process per GPU rank, may
    apply at once; the lock makes them decide and write one at a time, so the
    later ones find the file already patched. ``tell_waiting`` is called once
    if the lock is still held by another process after ``WAIT_NOTICE_S``.
    Only acquiring is guarded here: what the locked block raises is its own.

    The lock is flock(2) on ``LOCK_NAME``, the call filelock makes on Linux
    too; the kernel releases it when the holder's process ends, however it
    ends. filelock itself is not imported: it brings logging, secrets and pathlib
    to a first apply (benchmarks/README.md).

    A holder may delete the file (``Held.remove_when_done``). A process that was
    waiting on it then holds a file no longer at the path, which is no one's lock:
    so a lock counts only once the file it holds is the one at the path, and
    otherwise is taken again on the file there now.
    """
    path = os.path.join(folder, LOCK_NAME)
    waiting = _Waiting(path, tell_waiting, clock)
    while True:
        fd = _open(path)
        try:
            _refuse_foreign_lock(fd, os.fspath(folder), path)
            _acquire(fd, path, waiting)
        except BaseException:
            os.close(fd)
            raise
        if _is_at(fd, path):
            break
        os.close(fd)  # its holder removed it while we waited: take the one there now
    held = Held()
    try:
        yield held
        if held.removing:
            # Deleted before the close that releases it: a waiter on it finds it gone
            # from the path and takes a new one. Best effort: one left is an empty file.
            with contextlib.suppress(OSError):
                if _is_at(fd, path):
                    os.unlink(path)
    finally:
        os.close(fd)  # releases the lock


def _open(path: str) -> int:
    try:
        # As filelock opens it: a symlink planted as the lock is refused (O_NOFOLLOW),
        # not followed to create a file wherever it points; the mode is left to the
        # umask (0o666), so on a shared install the next user can take the lock too.
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except PermissionError as exc:
        raise refuse(path, f"The lock file cannot be created: {exc.strerror}.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotWritable(
                f"Cannot write {path}: it is a symbolic link.",
                "eagle3-patch takes its lock only on a file of its own, never through a link "
                "(which could make it create a file anywhere); nothing was changed.",
                f"Remove the link (rm {quote(path)}), then run the same command again.",
            ) from None
        raise write_failed(path, exc) from None


def _is_at(fd: int, path: str) -> bool:
    """Whether the file open as ``fd`` is the one at ``path`` now."""
    try:
        there = os.lstat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


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


class _Waiting:
    """How long acquiring has waited, over every file it tried; the notice is given once."""

    def __init__(self, path: str, tell_waiting, clock) -> None:
        self.path, self.tell, self.clock = path, tell_waiting, clock
        self.start, self.told = clock(), False

    def check(self) -> None:
        waited = self.clock() - self.start
        if waited >= LOCK_TIMEOUT_S:
            raise LockTimeout(
                f"Another eagle3-patch process has held {self.path} for {LOCK_TIMEOUT_S} s.",
                "Only one process may patch an SGLang installation at a time.",
                "Wait for it to finish and run the command again; if none is running, "
                "the lock holder crashed and the lock is released as soon as its process exits.",
            )
        if waited >= WAIT_NOTICE_S and not self.told:
            self.tell(self.path)
            self.told = True


def _acquire(fd: int, path: str, waiting: _Waiting) -> None:
    import fcntl  # only paths that write take the lock

    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:  # ENOLCK: a file system that keeps no locks
            raise write_failed(path, exc) from None
        waiting.check()
        time.sleep(_LOCK_POLL_S)
