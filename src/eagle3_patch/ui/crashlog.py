"""An internal error's traceback, kept in a log file for its bug report (as pre-commit does).

A race or a rare file-system state may not come back when the command is run
again, so the traceback is written when it happens: to the user's cache
(``usercache``'s trust rule), else to a private temp file.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback

from eagle3_patch import __version__
from eagle3_patch.cache import usercache
from eagle3_patch.text.masking import masked_argv, masked_text


def write_crash_log(exc: BaseException, args: list[str]) -> str | None:
    """Write ``exc``'s traceback, secrets masked, and where it happened; returns the log's path,
    None if none could be written."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    text = "\n".join([
        f"eagle3-patch {__version__}, Python {sys.version.split()[0]} ({sys.executable}), {platform.platform()}",
        "command: " + " ".join(["eagle3-patch", *masked_argv(args)]),
        "",
        masked_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))),
    ]).encode("utf-8", "backslashreplace")
    # Unique even for two errors of one process in one second: a log never replaces another.
    name = f"internal-error-{stamp}-{os.getpid()}-{os.urandom(4).hex()}.log"
    path = usercache.write_new(usercache.LOGS, name, text)
    if path is not None:
        return path
    try:
        fd, path = tempfile.mkstemp(prefix=f"eagle3-patch-internal-error-{stamp}-", suffix=".log")
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
    except OSError:
        return None
    return path
