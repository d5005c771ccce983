"""Reading a file's bytes and hashing them: the lowest layer, importing nothing of ours."""

from __future__ import annotations

import errno
import os
import stat

try:
    # CPython's built-in SHA-256, the one hashlib falls back to: importing hashlib
    # loads OpenSSL, a large part of what status and check may add to importing click
    # (benchmarks/README.md).
    from _sha256 import sha256 as _sha256  # Python <= 3.11
except ImportError:
    try:
        from _sha2 import sha256 as _sha256  # Python 3.12+
    except ImportError:
        from hashlib import sha256 as _sha256


# Far above any file of SGLang's (server_args.py, the largest it has, is ~400 KB): a bound,
# not a size check, so that a sparse or endless file is refused instead of read.
MAX_FILE_BYTES = 32 << 20
_KINDS = {stat.S_IFIFO: "a named pipe", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}

def sha256(data: bytes) -> str:
    return _sha256(data).hexdigest()


def sorted_paths(paths) -> list[str]:
    """``paths`` by their components, as pathlib sorts: a folder's files together, before
    those of a sibling whose name extends it ("models/" before "models.orig/", where a
    plain string sort puts "." before "/")."""
    return sorted(paths, key=lambda path: path.split(os.sep))


class NotAFile(OSError):
    """What was opened is no regular file (a FIFO, a device such as /dev/zero, a folder), or is
    larger than ``MAX_FILE_BYTES``: reading it could fail, block or never end. ``strerror``
    completes "it is": "a named pipe", "larger than 32 MiB (...)"."""


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


def _open_regular(path: str, follow: bool = True) -> tuple[int, os.stat_result]:
    """A descriptor of the regular file at ``path`` and its ``fstat``; ``NotAFile`` else.
    Opened non-blocking, so a FIFO with no writer cannot hang the open. ``follow=False``:
    a symbolic link there is ``NotAFile`` ("a symbolic link"), never read through."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    except OSError as exc:
        if not follow and exc.errno == errno.ELOOP:
            raise NotAFile(exc.errno, "a symbolic link", path) from None
        if exc.errno not in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
            raise
        # A socket, or a device with no driver behind it: it cannot even be opened.
        raise NotAFile(exc.errno, _kind(os.stat(path).st_mode), path) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotAFile(errno.EINVAL, _kind(info.st_mode), path)
    return fd, info


def open_regular(path: str):
    """The regular file at ``path`` opened for reading in binary (any size: the caller
    bounds what it reads); ``NotAFile`` for a FIFO, a device, a socket or a folder."""
    fd, _ = _open_regular(path)
    return os.fdopen(fd, "rb")


def read_bytes(path: str, limit: int = MAX_FILE_BYTES, follow: bool = True) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them; ``NotAFile`` else
    (and for a symbolic link, with ``follow=False``).

    Decided on the descriptor that is read (``fstat``), so a name swapped in between
    changes nothing; opened non-blocking, so a FIFO with no writer cannot hang the open.
    """
    fd, info = _open_regular(path, follow)
    try:
        if info.st_size > limit:
            raise NotAFile(errno.EFBIG, f"larger than {limit >> 20} MiB ({info.st_size} bytes)", path)
        chunks, size = [], 0
        while chunk := os.read(fd, limit + 1 - size):  # a file that grows as it is read stops here too
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise NotAFile(errno.EFBIG, f"larger than {limit >> 20} MiB", path)
        return b"".join(chunks)
    finally:
        os.close(fd)
