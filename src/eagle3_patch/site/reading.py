"""Reading the files eagle3-patch inspects, and the errors when it cannot."""

from __future__ import annotations

import errno
import os

from eagle3_patch.errors import TargetUnreadable
from eagle3_patch.site.filebytes import NotAFile, read_bytes
from eagle3_patch.text.shellwords import quote


def unreadable(path: str, exc: OSError, mode: str) -> TargetUnreadable:
    """The error for a model file or folder this user may not read (``mode``: the chmod that fixes it)."""
    return TargetUnreadable(
        f"Cannot read {path}: {exc.strerror}.",
        "eagle3-patch reads the model files to tell their state, and this user may not.",
        "Run the command as a user who can read them (e.g. the owner of that site-packages, or "
        f"with sudo), or make them readable: chmod {mode} {quote(path)}",
    )


def not_a_file(path: str, what: str) -> TargetUnreadable:
    """The error for something other than a model file where SGLang keeps one (``what``
    completes "it is": "a folder", "a named pipe", "larger than 32 MiB")."""
    return TargetUnreadable(
        f"{path} is not a model file: it is {what}.",
        "SGLang keeps a Python file there, and eagle3-patch reads it whole to tell the state of "
        "the installation; no SGLang release ships one like this, so it was replaced after "
        "installing. eagle3-patch left everything untouched.",
        "Move it out of the way, then reinstall the release it came from (pip install "
        "--force-reinstall --no-deps sglang==<version>) and run the command again.",
    )


def read_model_file(path: str) -> bytes:
    """A model file's bytes; one this user cannot read, or that is no file to read, is a
    clear error, not a bug nor a hang."""
    try:
        return read_bytes(path)
    except NotAFile as exc:
        raise not_a_file(path, exc.strerror) from None
    except OSError as exc:
        raise unreadable(path, exc, "a+r") from None


def broken_link(path: str) -> TargetUnreadable:
    """The error for a symbolic link that leads to no file where SGLang keeps a model file:
    dangling, or looping (``os.stat`` fails through it)."""
    try:
        target = os.readlink(path)
    except OSError as exc:
        target = f"? ({exc.strerror})"
    try:
        os.stat(path)
        what = "no file"
    except OSError as exc:
        what = ("a symbolic link that loops" if exc.errno == errno.ELOOP else "a broken symbolic link")
    return TargetUnreadable(
        f"{path} is {what}: it points to {target}, and no file is there.",
        "SGLang imports that file through the link and cannot either. eagle3-patch left everything "
        "untouched.",
        f"Point the link at the file it should name (ln -sfn /path/to/{os.path.basename(path)} "
        f"{quote(path)}), or remove it and reinstall the release it came from (pip install "
        "--force-reinstall --no-deps sglang==<version>), then run the command again.",
    )
