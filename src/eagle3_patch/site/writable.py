"""May this user write beside SGLang? The refusals, said so a user can act on them.

Every write (``install.py``, ``lock.py``) asks here first and reports its
failures through here: a read-only mount, a read-only file or folder, bytecode
that cannot be refreshed, a full disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat

from eagle3_patch.errors import NotWritable
from eagle3_patch.text.shellwords import quote


def bytecode_files(target: str | os.PathLike) -> list[str]:
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


def refuse(path: str, why: str) -> NotWritable:
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


def write_failed(path: str, exc: OSError, stuck: list[str] = ()) -> NotWritable:
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
    return refuse(path, f"Writing failed: {exc.strerror}.")


def real_file(target: str | os.PathLike) -> str:
    """Where ``target``'s bytes live: the file a symlink names, else ``target`` itself."""
    return os.path.realpath(target)


def ensure_writable(paths: list[str]) -> None:
    """Refuse before touching anything if any target, its folder or bytecode is read-only."""
    for link in map(os.fspath, paths):
        path = real_file(link)
        folder = os.path.dirname(path)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise refuse(path, f"Its folder {folder} is not writable by this user.")
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue  # a deleted file being restored: only its folder must be writable
        # A file with every write bit cleared was made read-only on purpose (an
        # image that must not change); root could replace it anyway, we don't.
        if not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise refuse(path, "The file is read-only.")
        link_folder = os.path.dirname(link)
        if not os.access(link_folder, os.W_OK | os.X_OK):
            raise refuse(link, f"Its folder {link_folder} (for the backup) is not writable "
                                "by this user.")
        for pyc in bytecode_files(link):
            cache = os.path.dirname(pyc)
            if not os.access(cache, os.W_OK | os.X_OK):
                raise refuse(pyc, f"Its cached bytecode in {cache} cannot be refreshed.")
