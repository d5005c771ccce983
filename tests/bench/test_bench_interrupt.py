"""A signal ends the measurement whatever the event loop is doing, its own thread busy included.

Issue 23: a 1.5 MB error message kept bench's event loop busy for an hour, and SIGTERM waited for
the loop to get control back. Here the measurement itself never yields (a pure-Python loop, a
blocking call, a regex in C) and SIGTERM, sent to this process, still ends it within seconds.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import signal
import subprocess
import time

import aiohttp
import pytest

from eagle3_patch.bench.interrupt import GRACE_S, run_interruptible, signals_stop
from eagle3_patch.errors import Interrupted

from support.marks import first_fast

BUSY_S = 60.0  # how long each measurement would run if the signal did not end it


def python_loop() -> None:
    deadline = time.monotonic() + BUSY_S
    while time.monotonic() < deadline:
        pass


def blocking_call() -> None:
    time.sleep(BUSY_S)  # restarted after each signal whose handler returns (PEP 475)


def regex_in_c() -> None:
    # Backtracks for far longer than BUSY_S, all of it inside the regex engine (which checks signals).
    re.match(r"(a|aa)+$", "a" * 64 + "b")


def never_yields(busy):
    """A measurement that, once started, has this process signalled and keeps the loop's thread
    in one of its tasks (as a closed loop's worker would be) while another waits, all inside an
    HTTP session, as bench's clients are."""
    async def worker() -> None:
        busy()

    async def measurement() -> None:
        # Sent by another process: a thread of this one would wait for the GIL the regex holds.
        killer = subprocess.Popen(["sh", "-c", f"sleep 0.2; kill -TERM {os.getpid()}"])
        try:
            async with aiohttp.ClientSession():
                await asyncio.gather(worker(), asyncio.sleep(BUSY_S))
        finally:
            killer.wait()  # the signal lands while the handlers are in place, whatever busy did
    return measurement()


@pytest.mark.parametrize("busy", first_fast(python_loop, blocking_call, regex_in_c),
                         ids=["python-loop", "blocking-call", "regex-in-c"])
def test_sigterm_ends_a_measurement_that_never_gives_the_event_loop_control(busy, caplog):
    started = time.monotonic()
    with pytest.raises(Interrupted) as interrupted:
        run_interruptible(never_yields(busy))
    assert time.monotonic() - started < GRACE_S + 10
    assert interrupted.value.signum == signal.SIGTERM and interrupted.value.exit_code == 143
    assert "Interrupted by SIGTERM." in interrupted.value.what
    # A task whose exception nobody read, or a session left open, complains through asyncio's
    # logger (onto stderr in a process) when it is collected; the exception's traceback holds both.
    del interrupted
    gc.collect()
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def handlers() -> dict:
    return {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}


def test_handlers_are_restored_after_an_interrupted_and_a_finished_measurement():
    before = handlers()

    async def finishes() -> None:
        pass

    async def signalled_while_waiting() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(BUSY_S)

    run_interruptible(finishes())
    with pytest.raises(Interrupted):
        run_interruptible(signalled_while_waiting())
    assert handlers() == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("busy", first_fast(python_loop, blocking_call), ids=["python-loop", "blocking-call"])
def test_sigterm_ends_work_run_without_an_event_loop_at_once(busy):
    def work() -> None:
        killer = subprocess.Popen(["sh", "-c", f"sleep 0.2; kill -TERM {os.getpid()}"])
        try:
            busy()
        finally:
            killer.wait()

    started = time.monotonic()
    with pytest.raises(Interrupted) as interrupted, signals_stop() as stop:
        stop.call(work, "The plot was not written.")
    assert time.monotonic() - started < 10
    assert interrupted.value.exit_code == 143 and interrupted.value.why == "The plot was not written."


def test_a_signal_between_the_measurement_and_the_work_after_it_is_raised_by_that_work():
    async def finishes() -> None:
        pass

    ran = []
    with pytest.raises(Interrupted) as interrupted, signals_stop() as stop:
        stop.run(finishes())
        os.kill(os.getpid(), signal.SIGTERM)  # handled, and kept: nothing is running
        stop.call(lambda: ran.append(True), "The plot was not written.")
    assert ran == [] and interrupted.value.why == "The plot was not written."


def test_work_run_without_an_event_loop_returns_its_result_and_restores_the_handlers():
    before = handlers()
    with signals_stop() as stop:
        assert stop.call(lambda: 42, "unused") == 42
    assert handlers() == before
