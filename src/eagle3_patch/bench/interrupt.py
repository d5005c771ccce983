"""Running the measurement on an event loop that a signal can stop cleanly.

Ctrl-C (SIGINT) and SIGTERM both cancel the measurement where it is, so every request that
finished before is still in the session, and then raise ``Interrupted`` (exit 130 or 143).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from typing import Any

from eagle3_patch.errors import Interrupted

_SIGNALS = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


def run_interruptible(measurement: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(measurement)``; a signal cancels it and raises ``Interrupted``."""
    asyncio.run(_until_signal(measurement))


async def _until_signal(measurement: Coroutine[Any, Any, None]) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        if task is not None:
            task.cancel()

    # Signal handlers can only be installed from the main thread (a library caller's
    # worker thread keeps Python's defaults), and a signal the parent chose to ignore (a
    # shell's background job ignores SIGINT, `nohup` SIGHUP) stays ignored.
    handled = []
    if threading.current_thread() is threading.main_thread():
        handled = [signum for signum in _SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]
    for signum in handled:
        loop.add_signal_handler(signum, stop, signum)
    try:
        await measurement
    except asyncio.CancelledError:
        if not received:
            raise
        signum = received[0]
        raise Interrupted(
            signum,
            f"Interrupted by {_SIGNALS[signum]}.",
            "Only the requests that finished before it are reported, marked partial.",
            "Run bench again for a complete measurement.",
        ) from None
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
