"""A deadline for a test of something that used to hang: it fails the test instead of holding the run.

SIGALRM interrupts this process's main thread wherever it is, inside a regular expression
too, so a hang in an in-process CLI run ends at the deadline and the test fails there.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class DeadlinePassed(BaseException):
    """Not an ``Exception``: the CLI's handler, which reports every Exception as a bug, lets it through."""


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail with ``DeadlinePassed`` if the block runs longer than ``seconds`` (main thread only)."""
    def expire(signum: int, frame: object) -> None:
        raise DeadlinePassed(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
