"""Stopping bench on a signal, whatever it is doing, with what it measured still in hand.

Ctrl-C (SIGINT) and SIGTERM both cancel the measurement where it is, so every request that
finished before is still in the session, and then raise ``Interrupted`` (exit 130 or 143). Drawing
the plot afterwards is stopped too, so the report is still printed; one set of handlers covers
both, leaving no moment between them where SIGTERM's default would end the process silently.

Cancelling needs the event loop to get control back, which code that keeps its thread (parsing
a huge answer, a long computation) may not give it for a long time. So the handler is Python's
own (it runs in the main thread between bytecodes, in a blocking call, and inside C code that
checks for signals, as the regex engine's backtracking does), and a signal that has not ended the
measurement within ``GRACE_S`` is followed by SIGALRM, whose handler raises out of whatever runs.
A second signal does so at once. C code that holds the interpreter without checking for signals
(json's decoder, a regex scanning for a literal) is out of any handler's reach: what bounds it is
its input, and every answer and line bench reads from a server is bounded (``client``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from eagle3_patch.errors import Interrupted

_SIGNALS = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
# Cancellation unwinds a measurement in milliseconds when the loop has control.
GRACE_S = 1.0
PARTIAL = "Only the requests that finished before it are reported, marked partial."
T = TypeVar("T")


class _Abandoned(BaseException):
    """Raised by a signal handler into whatever the main thread runs. Not an Exception, so no
    ``except Exception`` on the way swallows it; not a KeyboardInterrupt either, which asyncio
    re-raises out of the loop from wherever it lands. Raised in a task, it fails that task and
    reaches ``watch`` as the measurement's error, unwinding every ``async with`` on the way; raised
    in one of the loop's own callbacks, the loop goes on, the cancellation already queued runs, and
    the alarm comes again in ``GRACE_S``."""


@contextlib.contextmanager
def signals_stop() -> Iterator[Stop]:
    """Ctrl-C and SIGTERM handled for the block: its ``Stop`` runs the measurement and the work
    after it. A signal between those is kept, and the next ``run`` or ``call`` raises it."""
    stop = Stop()
    with stop.handling():
        yield stop


def run_interruptible(measurement: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(measurement)``; a signal cancels it and raises ``Interrupted``."""
    with signals_stop() as stop:
        stop.run(measurement)


class Stop:
    """The signal received during one bench run, and how it stops what runs."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._handled = False  # the handlers are installed (not from a library caller's worker thread)
        self._running = False  # inside run or call: a signal stops what runs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    def interrupted(self, why: str) -> Interrupted:
        if self.received is None:
            raise RuntimeError("no signal was received")
        return Interrupted(self.received, f"Interrupted by {_SIGNALS[self.received]}.", why,
                           "Run bench again for a complete measurement.")

    def run(self, measurement: Coroutine[Any, Any, None]) -> None:
        """``asyncio.run(measurement)``; a signal cancels it and raises ``Interrupted``."""
        try:
            with self._stopping():
                asyncio.run(self._watch(measurement))
        except (asyncio.CancelledError, _Abandoned):
            if self.received is None:
                raise
        finally:
            self._loop = self._task = None
        if self.received is not None:
            raise self.interrupted(PARTIAL)

    def call(self, work: Callable[[], T], why: str) -> T:
        """``work()``, run without an event loop (drawing the plot); a signal raises ``Interrupted``
        (``why`` says what is left) out of it at once."""
        if self.received is None:
            try:
                with self._stopping():
                    result = work()
            except _Abandoned:
                pass
        if self.received is None:
            return result
        raise self.interrupted(why)

    async def _watch(self, measurement: Coroutine[Any, Any, None]) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._loop.set_exception_handler(_unless_abandoned)
        self._loop.set_default_executor(_Abandonable())
        if self.received is not None:  # it came before the loop ran
            measurement.close()
            return
        try:
            await measurement
        except (asyncio.CancelledError, _Abandoned):
            if self.received is None:
                raise

    @contextlib.contextmanager
    def _stopping(self) -> Iterator[None]:
        self._running = True
        try:
            yield
        finally:
            while True:  # a handler may raise into this block until _running is off
                try:
                    self._running = False
                    if self._handled:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    break
                except _Abandoned:
                    continue

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        # Handlers can only be installed from the main thread (a library caller's worker thread
        # keeps Python's defaults), and a signal the parent chose to ignore (a shell's background
        # job ignores SIGINT, `nohup` SIGHUP) stays ignored.
        handled = []
        if threading.current_thread() is threading.main_thread():
            handled = [signum for signum in _SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]
        if handled:
            handled.append(signal.SIGALRM)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        self._handled = bool(handled)
        try:
            yield
        finally:
            if self._handled:
                signal.setitimer(signal.ITIMER_REAL, 0)
            # None: a handler installed from C, which Python cannot put back; the default stands in.
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGALRM:
            if self._running:
                raise _Abandoned
            return
        first = self.received is None
        if first:
            self.received = signum
        if not self._running:
            return  # between run and call: the next of them raises Interrupted
        if not first or self._loop is None:
            raise _Abandoned  # insisted, or no event loop whose task could be cancelled
        signal.setitimer(signal.ITIMER_REAL, GRACE_S, GRACE_S)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing left to cancel
            self._loop.call_soon_threadsafe(self._task.cancel)


class _Abandonable(concurrent.futures.ThreadPoolExecutor):
    """The measurement's executor, where aiohttp looks host names up: each call in a daemon thread
    of its own (the pool's threads are never started), so shutting down waits for none. A lookup
    the resolver never answers is given up with its request (--timeout, a signal); asyncio's own
    executor would wait for it when the loop closes, and the interpreter again at exit, so bench
    ended only when the resolver did. (asyncio takes no executor but a ThreadPoolExecutor.)"""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller, as any executor does
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=work, name="eagle3-patch bench worker", daemon=True).start()
        return future


def _unless_abandoned(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # A callback or a task left behind that _Abandoned was raised through: asyncio would print
    # its traceback under the report.
    if not isinstance(context.get("exception"), _Abandoned):
        loop.default_exception_handler(context)
