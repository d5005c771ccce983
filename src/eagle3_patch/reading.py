"""Reading the files eagle3-patch inspects, and the error when this user may not."""

from __future__ import annotations

from eagle3_patch.errors import TargetUnreadable
from eagle3_patch.filebytes import read_bytes
from eagle3_patch.shellwords import quote


def unreadable(path: str, exc: OSError, mode: str) -> TargetUnreadable:
    """The error for a model file or folder this user may not read (``mode``: the chmod that fixes it)."""
    return TargetUnreadable(
        f"Cannot read {path}: {exc.strerror}.",
        "eagle3-patch reads the model files to tell their state, and this user may not.",
        "Run the command as a user who can read them (e.g. the owner of that site-packages, or "
        f"with sudo), or make them readable: chmod {mode} {quote(path)}",
    )


def not_a_file(path: str, kind: str) -> TargetUnreadable:
    """The error for something other than a file where SGLang keeps a model file."""
    return TargetUnreadable(
        f"{path} is not a file: it is {kind}.",
        "SGLang keeps a Python file there, and eagle3-patch reads it to tell the state of the "
        "installation; it left everything untouched.",
        "Move it out of the way, then reinstall the release it came from (pip install "
        "--force-reinstall --no-deps sglang==<version>) and run the command again.",
    )


def read_model_file(path: str) -> bytes:
    """A model file's bytes; one this user cannot read is a clear error, not a bug."""
    try:
        return read_bytes(path)
    except OSError as exc:
        raise unreadable(path, exc, "a+r") from None
