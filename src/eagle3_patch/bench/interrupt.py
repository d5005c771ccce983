"""Running the measurement on an event loop that a signal stops, whatever the loop is doing.

Ctrl-C (SIGINT) and SIGTERM both cancel the measurement where it is, so every request that
finished before is still in the session, and then raise ``Interrupted`` (exit 130 or 143).

Cancelling needs the event loop to get control back, which code that keeps its thread (parsing
a huge answer, a long computation) may not give it for a long time. So the handler is Python's
own (it runs in the main thread between bytecodes, in a blocking call, and inside C code that
checks for signals, as the regex engine's backtracking does), and a signal that has not ended the
run within ``GRACE_S`` is followed by SIGALRM, whose handler raises out of whatever runs. A second
signal does so at once. C code that holds the interpreter without checking for signals (json's
decoder, a regex scanning for a literal) is out of any handler's reach: what bounds it is its
input, and every answer and line bench reads from a server is bounded (``client``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

from eagle3_patch.errors import Interrupted

_SIGNALS = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
# Cancellation unwinds a measurement in milliseconds when the loop has control.
GRACE_S = 1.0


class _Abandoned(BaseException):
    """Raised by a signal handler into whatever the main thread runs. Not an Exception, so no
    ``except Exception`` on the way swallows it; not a KeyboardInterrupt either, which asyncio
    re-raises out of the loop from wherever it lands. Raised in a task, it fails that task and
    reaches ``watch`` as the measurement's error, unwinding every ``async with`` on the way; raised
    in one of the loop's own callbacks, the loop goes on, the cancellation already queued runs, and
    the alarm comes again in ``GRACE_S``."""


def run_interruptible(measurement: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(measurement)``; a signal cancels it and raises ``Interrupted``."""
    stop = _Stop()
    try:
        with stop.handling():
            asyncio.run(stop.watch(measurement))
    except (asyncio.CancelledError, _Abandoned):
        if stop.received is None:
            raise
    if stop.received is not None:
        raise Interrupted(
            stop.received,
            f"Interrupted by {_SIGNALS[stop.received]}.",
            "Only the requests that finished before it are reported, marked partial.",
        ) from None


class _Stop:
    """The signals received during one measurement, and how each one stops it."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._active = False  # handlers installed and the measurement not yet over
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    async def watch(self, measurement: Coroutine[Any, Any, None]) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._loop.set_exception_handler(_unless_abandoned)
        if self.received is not None:  # it came before the loop ran
            measurement.close()
            return
        try:
            await measurement
        except (asyncio.CancelledError, _Abandoned):
            if self.received is None:
                raise

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        # Handlers can only be installed from the main thread (a library caller's worker thread
        # keeps Python's defaults), and a signal the parent chose to ignore (a shell's background
        # job ignores SIGINT, `nohup` SIGHUP) stays ignored.
        handled = []
        if threading.current_thread() is threading.main_thread():
            handled = [signum for signum in _SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        alarm = signal.getsignal(signal.SIGALRM) if handled else None
        self._active = True
        try:
            yield
        finally:
            while True:  # a handler may raise into this block until _active is off
                try:
                    self._active = False
                    if handled:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    # None: a handler installed from C, which Python cannot put back; the default stands in.
                    for signum, handler in {**previous, signal.SIGALRM: alarm}.items():
                        if signum in previous or handled:
                            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
                    break
                except _Abandoned:
                    continue

    def _on_signal(self, signum: int, frame: object) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if not self._active:
            return  # before or after the measurement: run_interruptible raises Interrupted
        if not first:
            raise _Abandoned
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, GRACE_S, GRACE_S)
        if self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing left to cancel
                self._loop.call_soon_threadsafe(self._task.cancel)

    def _on_alarm(self, signum: int, frame: object) -> None:
        if self._active:
            raise _Abandoned


def _unless_abandoned(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # A callback or a task left behind that _Abandoned was raised through: asyncio would print
    # its traceback under the report.
    if not isinstance(context.get("exception"), _Abandoned):
        loop.default_exception_handler(context)
