"""The one JSON line a probe reports on its stdout, while SGLang, torch and gloo print freely,
some of it from C: fd 1 points at stderr for the whole run, a private copy of it keeps the
report. Standard library only: the probes run in the real-SGLang venv."""

from __future__ import annotations

import json
import os
import sys


def stdout_for_report() -> int:
    """Point fd 1 at stderr from now on; return a private descriptor of the real stdout."""
    sys.stdout.flush()
    report_fd = os.dup(1)
    os.dup2(2, 1)
    return report_fd


def write_report(report_fd: int, report: dict) -> None:
    """Write ``report`` as one JSON line to the stdout ``stdout_for_report`` kept, and close it."""
    sys.stdout.flush()
    with os.fdopen(report_fd, "w") as out:
        out.write(json.dumps(report) + "\n")
