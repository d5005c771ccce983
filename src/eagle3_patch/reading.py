"""Reading the files eagle3-patch inspects, and the error when this user may not."""

from __future__ import annotations

from eagle3_patch.errors import TargetUnreadable
from eagle3_patch.filebytes import NotAFile, read_bytes
from eagle3_patch.shellwords import quote


def unreadable(path: str, exc: OSError, mode: str) -> TargetUnreadable:
    """The error for a model file or folder this user may not read (``mode``: the chmod that fixes it)."""
    return TargetUnreadable(
        f"Cannot read {path}: {exc.strerror}.",
        "eagle3-patch reads the model files to tell their state, and this user may not.",
        "Run the command as a user who can read them (e.g. the owner of that site-packages, or "
        f"with sudo), or make them readable: chmod {mode} {quote(path)}",
    )


def read_model_file(path: str) -> bytes:
    """A model file's bytes; one this user cannot read, or that is no file to read, is a
    clear error, not a bug nor a hang."""
    try:
        return read_bytes(path)
    except NotAFile as exc:
        raise TargetUnreadable(
            f"Cannot read {path}: it is {exc.strerror}.",
            "eagle3-patch reads SGLang's model files whole to tell their state; no SGLang release "
            "ships one like this, so it was replaced after installing.",
            "Put back the file SGLang shipped: pip install --force-reinstall --no-deps "
            "sglang==<the installed version>") from None
    except OSError as exc:
        raise unreadable(path, exc, "a+r") from None
