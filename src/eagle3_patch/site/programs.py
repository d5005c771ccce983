"""Programs we do not control: why one could not start, and running one once for its answer.

``--python`` names a program we do not control. It may start a child that keeps
our pipes open (``sleep 1000 &``), never finish, print without end, or leave its
process group. So it leads a session of its own; its answer is complete when
it exits (what it wrote is in the pipe by then, whoever else still holds the
pipe); and then, or when it is stopped, its whole group is killed, and on Linux
every descendant that outlived it is adopted (``PR_SET_CHILD_SUBREAPER``) and
killed too, wherever it moved (``setsid``, a job-control shell's groups). In a
session of its own it no longer gets the signals that stop us (a terminal's
SIGHUP, SIGTERM to our process group from ``timeout`` or a supervisor), so those
stop it first.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37
# How long the descendants left behind get to die of SIGKILL: longer only for a
# process stuck in the kernel (a dead NFS mount), which is then left behind.
_REAP_S = 5.0


class Finished(NamedTuple):
    """What the program did: ``code`` is its exit status (``-N``: killed by signal N), None when
    it was stopped; ``stopped`` says why ("hung": past the timeout, "flooded": past the cap)."""

    code: int | None
    out: bytes
    err: bytes
    stopped: str | None = None


def why_not_started(program: str, exc: OSError) -> str:
    """Why ``program`` could not be started (``exc``: what exec said), in words about what was given."""
    if not program:
        return "the name is empty"
    if "/" not in program:  # looked up on PATH, as exec does
        found = shutil.which(program)
        if found is None:
            return "no program of that name is on PATH"
        program = found
    if exc.errno == errno.ENOENT:
        if os.path.islink(program) and not os.path.exists(program):
            return f"it is a symlink to {os.readlink(program)}, which does not exist"
        if os.path.exists(program):
            # exec found the file but not the program it names to run it.
            return "the interpreter its first line (#!) names does not exist"
        return "no such file"
    if exc.errno == errno.EACCES:
        try:
            mode = os.stat(program).st_mode
        except OSError:  # a folder on its path we may not search
            mode = stat.S_IFREG
        if stat.S_ISDIR(mode):
            return "it is a folder, not a program"
        if not stat.S_ISREG(mode):
            return "it is not a file (a device, a pipe or a socket)"
        return "you may not execute it (no execute permission, or a noexec mount)"
    if exc.errno == errno.ELOOP:
        return "its symlinks form a loop"
    if exc.errno == errno.ENOEXEC:
        return "it is not a program this system can run (a script without a #! line, or a binary for another machine)"
    if exc.errno == errno.ENOTDIR:
        return "a part of its path is not a folder"
    return exc.strerror or str(exc)


def run_contained(argv: list[str], env: dict[str, str], timeout: float, cap: int) -> Finished:
    """Run ``argv`` with no input, reading its stdout and stderr up to just past ``cap`` bytes each
    and for at most ``timeout`` seconds; when it exits or is stopped, end every process it left.

    A program that cannot be started raises ``OSError`` (``exc.filename`` is ``argv[0]``).
    """
    deadline = time.monotonic() + timeout
    ours_before = _children()
    adopting = _adopt_orphans(True) if ours_before is not None else None
    try:
        with _children_kept_for_us(), _stopping_it_first() as arm:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=env, start_new_session=True)
            try:
                arm(True)
                out, err, stopped = _collect(process, deadline, cap)
            finally:
                arm(False)
                process.stdout.close()
                process.stderr.close()
                _end_all(process, ours_before if adopting is not None else None)
    finally:
        if adopting is not None:
            _adopt_orphans(adopting)
    return Finished(None if stopped else process.returncode, out, err, stopped)


@contextlib.contextmanager
def _children_kept_for_us() -> Iterator[None]:
    """SIGCHLD back to its default while the program runs, where the caller ignores it (inherited
    from whoever started it, across exec): then the kernel reaps every child at once, leaving no
    exit status to read and no zombie to hold the program's process group id."""
    try:
        ignored = signal.getsignal(signal.SIGCHLD) is signal.SIG_IGN
        if ignored:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    except ValueError:  # not the main thread: _has_exited copes
        ignored = False
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)


class _Stopped(BaseException):
    """SIGTERM or SIGHUP arrived while the program ran (a BaseException: nothing may catch it on its way)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stopping_it_first() -> Iterator[Callable[[bool], None]]:
    """While the body runs, SIGTERM or SIGHUP (where they would end this process) unwinds it, so its
    cleanup ends the program, and then ends this process as the signal would have.

    Yields ``arm``: ``arm(True)`` once the program's pid is known, ``arm(False)`` before the
    cleanup; a signal that comes while unarmed is held until then, or until the body ends
    (unwinding out of ``Popen`` would lose the pid of a program already started, and out of
    the cleanup would leave part of it running).
    """
    state: dict[str, int | None] = {"armed": 0, "held": None}

    def stop(signum: int, frame) -> None:
        if state["armed"]:
            raise _Stopped(signum)
        state["held"] = signum

    def arm(on: bool) -> None:
        state["armed"] = on
        if on and state["held"]:
            raise _Stopped(state["held"])

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(signum) is signal.SIG_DFL:
                previous[signum] = signal.signal(signum, stop)
        except ValueError:  # not the main thread: signals are not ours to handle here
            break
    stopped = None
    try:
        yield arm
    except _Stopped as exc:
        stopped = exc.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        stopped = stopped or state["held"]
        if stopped:
            signal.raise_signal(stopped)  # its default action, back in place, ends this process


def _collect(process, deadline: float, cap: int) -> tuple[bytes, bytes, str | None]:
    """Its output until it exits (then what is already in the pipes), the deadline or the cap."""
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        for stream, into in ((process.stdout, out), (process.stderr, err)):
            os.set_blocking(stream.fileno(), False)
            selector.register(stream, selectors.EVENT_READ, into)
        exit_fd = _exit_watch(process.pid)
        if exit_fd is not None:
            selector.register(exit_fd, selectors.EVENT_READ, None)
        try:
            while True:
                if _has_exited(process.pid):
                    for key in list(selector.get_map().values()):
                        if key.data is not None:
                            _read(selector, key, cap, until_empty=True)
                    return bytes(out), bytes(err), "flooded" if max(len(out), len(err)) > cap else None
                if max(len(out), len(err)) > cap:
                    return bytes(out), bytes(err), "flooded"
                left = deadline - time.monotonic()
                if left <= 0:
                    return bytes(out), bytes(err), "hung"
                # Without a pidfd (before Linux 5.3) its exit wakes nothing once its pipes are
                # closed: look again every 10 ms.
                for key, _ in selector.select(left if exit_fd is not None else min(left, 0.01)):
                    if key.data is not None:
                        _read(selector, key, cap)
        finally:
            if exit_fd is not None:
                os.close(exit_fd)


def _read(selector, key, cap: int, until_empty: bool = False) -> None:
    while len(key.data) <= cap:
        try:
            chunk = os.read(key.fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            selector.unregister(key.fileobj)
            return
        key.data.extend(chunk)
        if not until_empty:
            return


def _exit_watch(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits, None where the system has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _has_exited(pid: int) -> bool:
    # WNOWAIT leaves it a zombie: its pid, and so its process group's id, cannot be
    # reused before the group is killed.
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already: SIGCHLD ignored, from a thread that could not change it
        return True


def _end_all(process, ours_before: set[int] | None) -> None:
    """Kill the program's process group, reap it, then (when adopting) every stray descendant."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:  # nothing left in it, or a member we may not signal (setuid)
        pass
    until = time.monotonic() + _REAP_S
    try:
        process.wait(_REAP_S)
    except subprocess.TimeoutExpired:  # stuck in the kernel: left to subprocess's own cleanup
        pass
    if ours_before is None:
        return
    # Each stray reaped has handed its own children to us: repeat until none is left. A new
    # child in our own session is not the program's (no descendant of a session leader can
    # join another session): another thread started it, and it is left alone.
    session = os.getsid(0)
    while time.monotonic() < until:
        strays = [pid for pid in _children() - ours_before if _session(pid) not in (session, None)]
        if not strays:
            return
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)  # our child, not yet reaped: the pid is still its
            except OSError:
                pass
        _reap(strays, until)


def _reap(pids: list[int], until: float) -> None:
    pending = set(pids)
    while pending:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pending.discard(pid)
        if pending:
            if time.monotonic() >= until:
                return
            time.sleep(0.01)


def _adopt_orphans(on: int) -> int | None:
    """Make this process the one its descendants' orphans are handed to (``on``), or put back the
    setting it had; returns the setting it had, None where there is no such setting (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        previous = ctypes.c_int()
        if (libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0
                or libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0):
            return None
    except (OSError, AttributeError):  # no C library to load, or no prctl in it
        return None
    return previous.value


def _children() -> set[int] | None:
    """This process's children (of every thread: an orphan goes to any of them); None where the
    kernel does not list them (``CONFIG_PROC_CHILDREN``), so strays cannot be found."""
    if not os.path.exists(f"/proc/self/task/{os.getpid()}/children"):
        return None
    found: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children", "rb") as listing:
                found.update(map(int, listing.read().split()))
        except OSError:  # a thread that ended while we read
            pass
    return found


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None
