"""A program we do not control runs once and leaves nothing running, whatever it starts and
however it ends (issue 23, item 8: ``--python`` that hangs or forks).

Real processes, since processes are the point: each stand-in is a shell script that records
the pids it leaves behind, and each test looks for them after ``run_contained`` returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eagle3_patch.site.programs import run_contained

# "Returns instead of waiting for what it left behind": far below the 1000 s its children sleep.
PROMPTLY_S = 20


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (dead, its status not yet collected by its parent)."""
    return _state(pid) not in (None, "Z")


def in_session(sid: int) -> list[int]:
    """Living processes of session ``sid`` (the stand-in leads one of its own)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(name))
    return found


class Standin:
    def __init__(self, folder: Path) -> None:
        self.script, self.pids = folder / "program", folder / "pids"

    def write(self, body: str) -> list[str]:
        """A shell script with ``$PIDS`` to record pids in; its argv."""
        self.script.write_text(f"#!/bin/sh\nexport PIDS={self.pids}\necho $$ >> $PIDS\n{body}\n")
        self.script.chmod(0o755)
        return [str(self.script)]

    def recorded(self) -> list[int]:
        return [int(line) for line in self.pids.read_text().split()] if self.pids.exists() else []


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Standin]:
    made = Standin(tmp_path)
    yield made
    # A failed test leaves nothing of its own running either: what it recorded, and its session.
    recorded = made.recorded()
    for pid in recorded + (in_session(recorded[0]) if recorded else []):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def run(argv: list[str], timeout: float = 60, cap: int = 2**20):
    started = time.monotonic()
    finished = run_contained(argv, env=dict(os.environ), timeout=timeout, cap=cap)
    return finished, time.monotonic() - started


def test_a_child_left_holding_the_pipes_does_not_hold_the_answer(standin):
    finished, took = run(standin.write("sleep 1000 & echo $! >> $PIDS\necho answer"))

    assert took < PROMPTLY_S
    assert (finished.code, finished.out, finished.stopped) == (0, b"answer\n", None)
    leader, child = standin.recorded()
    assert not alive(child) and in_session(leader) == []


@pytest.mark.slow  # waits out its timeout
def test_a_program_that_hangs_is_stopped_at_the_timeout_with_everything_it_started(standin):
    finished, took = run(standin.write("sleep 1000 & echo $! >> $PIDS\nexec sleep 1000"), timeout=1)

    assert took < PROMPTLY_S
    assert (finished.code, finished.stopped) == (None, "hung")
    assert [pid for pid in standin.recorded() if alive(pid)] == []


@pytest.mark.slow  # waits out its timeout
def test_a_program_that_closes_its_output_and_keeps_running_is_stopped_at_the_timeout(standin):
    finished, took = run(standin.write("exec >&- 2>&-\nexec sleep 1000"), timeout=1)

    assert took < PROMPTLY_S and finished.stopped == "hung"
    assert [pid for pid in standin.recorded() if alive(pid)] == []


def test_a_program_that_prints_without_end_is_stopped_at_the_cap(standin):
    finished, _ = run(standin.write("exec yes"), cap=65536)

    assert finished.stopped == "flooded" and 65536 < len(finished.out) <= 65536 + 65536
    assert [pid for pid in standin.recorded() if alive(pid)] == []


@pytest.mark.slow
def test_children_left_printing_without_end_after_it_exited_are_stopped(standin):
    finished, took = run(standin.write("yes & echo $! >> $PIDS\nyes >&2 & echo $! >> $PIDS\nexit 0"))

    assert took < PROMPTLY_S and finished.code == 0
    assert [pid for pid in standin.recorded() if alive(pid)] == []


@pytest.mark.slow
def test_a_child_that_left_the_session_is_ended_too(standin):
    # setsid(1) from a process that leads no group execs in place: $$ of the inner sh is the sleep.
    body = ("setsid sh -c 'cut -d\" \" -f6 /proc/$$/stat > $PIDS.sid; echo $$ >> $PIDS; exec sleep 1000' &\n"
            "while [ $(wc -l < $PIDS) -lt 2 ]; do :; done")
    finished, took = run(standin.write(body))

    assert took < PROMPTLY_S and finished.code == 0
    leader, escaped = standin.recorded()
    assert int(Path(f"{standin.pids}.sid").read_text()) == escaped  # a session of its own
    assert not alive(escaped)


@pytest.mark.slow
def test_a_child_in_a_process_group_of_its_own_is_ended_too(standin):
    # What a job-control shell (`set -m`) does to each background job.
    moves = ("import os, time; os.setpgid(0, 0); pids = os.environ['PIDS']; "
             "open(pids + '.group', 'w').write(str(os.getpgid(0))); "
             "open(pids, 'a').write(str(os.getpid()) + chr(10)); time.sleep(1000)")
    body = f'{sys.executable} -c "{moves}" &\nwhile [ $(wc -l < $PIDS) -lt 2 ]; do :; done'
    finished, took = run(standin.write(body))

    assert took < PROMPTLY_S and finished.code == 0
    leader, moved = standin.recorded()
    assert int(Path(f"{standin.pids}.group").read_text()) == moved != leader
    assert not alive(moved)


@pytest.mark.slow  # waits out its timeout
def test_a_program_forking_without_end_is_stopped_with_every_child(standin):
    finished, took = run(standin.write("while :; do sleep 1000 & done"), timeout=1)

    assert took < PROMPTLY_S and finished.stopped == "hung"
    assert in_session(standin.recorded()[0]) == []


def test_a_program_killed_by_a_signal_reports_it(standin):
    finished, _ = run(standin.write("kill -SEGV $$"))

    assert (finished.code, finished.stopped) == (-signal.SIGSEGV, None)


def test_the_callers_own_children_are_left_alone(standin):
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
    try:
        finished, _ = run(standin.write("sleep 1000 & echo $! >> $PIDS\nexit 0"))
        assert finished.code == 0 and not alive(standin.recorded()[1])
        assert ours.poll() is None
    finally:
        ours.kill()
        ours.wait()


def test_a_program_that_cannot_start_raises_oserror_naming_it(tmp_path):
    with pytest.raises(OSError) as raised:
        run_contained([str(tmp_path)], env=dict(os.environ), timeout=60, cap=1024)
    assert raised.value.filename == str(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_that_ends_the_caller_ends_the_program_first(standin, signum):
    # In a session of its own the program no longer gets what `timeout` or a closing terminal
    # sends the caller's group: the caller must end it before it goes.
    argv = standin.write("sleep 1000 & echo $! >> $PIDS\nexec sleep 1000")
    caller = subprocess.Popen([sys.executable, "-c", "import os, sys; "
                               "from eagle3_patch.site.programs import run_contained; "
                               "run_contained(sys.argv[1:], dict(os.environ), 60, 1024)", *argv])
    try:
        while len(standin.recorded()) < 2:
            assert caller.poll() is None
            time.sleep(0.01)
        caller.send_signal(signum)
        assert caller.wait(PROMPTLY_S) == -signum  # and it still ends as the signal ends it
    finally:
        caller.kill()
        caller.wait()
    assert [pid for pid in standin.recorded() if alive(pid)] == []


@pytest.mark.slow
def test_a_caller_that_ignores_sigchld_still_reads_the_exit_status_and_ends_everything(standin):
    # SIG_IGN survives exec: a supervisor that ignores SIGCHLD starts eagle3-patch that way, and the
    # kernel then reaps its children at once (waitid: ECHILD, read as "cannot start" -> exit 3).
    argv = standin.write("sleep 1000 & echo $! >> $PIDS\nexit 7")
    code = ("import os, sys; from eagle3_patch.site.programs import run_contained; "
            "print(run_contained(sys.argv[1:], dict(os.environ), 60, 1024).code)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN))
    assert (done.returncode, done.stdout, done.stderr) == (0, "7\n", "")
    assert [pid for pid in standin.recorded() if alive(pid)] == []
