"""A reader that stops reading (``| head -0``, a closed pipe) ends the command with 74, quietly;
a stdout that was never usable (``>&-``, ``1</dev/null``) is 74 too, said on stderr.

Through a real process, because the failing write can be the interpreter's own final
flush, and a closed descriptor is how the process starts: only a process shows that
exit code and what reaches stderr at shutdown.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading

import pytest

from eagle3_patch.errors import EXIT_CHECK_FAILED, EXIT_OUTPUT

from support.bench_standin import ScriptedClock, StandIn, baseline_script, eagle3_script
from support.marks import first_fast
from support.releases import install_release
from support.serve_fixtures import standin_env, write_drafter, write_target
from support.sites import Site


PATCHED, UNPATCHED = "0.5.12", "0.5.12-unpatched"


def _with_reader_gone(site, *args: str) -> subprocess.CompletedProcess:
    """The CLI with its stdout a pipe whose reading end is already closed: every write to it is EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "eagle3_patch", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=site.env(), timeout=60)
    finally:
        os.close(write_end)


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    patched, unpatched = Site(root / "patched", "0.5.12"), Site(root / "unpatched", "0.5.12")
    # Set up before the per-test private cache exists: give this one run a cache of its own.
    assert patched.run("apply", XDG_CACHE_HOME=str(root / "cache")).returncode == 0
    return {PATCHED: patched, UNPATCHED: unpatched}


@pytest.mark.parametrize("args, which", first_fast(
    (["status"], PATCHED), (["status", "--json"], PATCHED), (["status"], UNPATCHED),
    (["diff"], UNPATCHED), (["diff", "--json"], UNPATCHED), (["check"], PATCHED),
    (["check", "--json"], PATCHED), (["apply", "--dry-run"], UNPATCHED), (["--version"], PATCHED),
    (["--help"], PATCHED), (["status", "--help"], PATCHED),
), ids=lambda value: " ".join(value) if isinstance(value, list) else value)
def test_a_reader_that_closed_the_pipe_is_exit_74_with_nothing_on_stderr(sites, args, which):
    done = _with_reader_gone(sites[which], *args)
    assert (done.returncode, done.stderr) == (EXIT_OUTPUT, "")


@pytest.mark.parametrize("args", first_fast(["check"], ["check", "--json"]))
def test_check_that_finds_capture_broken_still_exits_1_when_the_reader_is_gone(sites, args):
    """The answer was known before the report was lost: 1 keeps meaning "capture does not work"."""
    done = _with_reader_gone(sites[UNPATCHED], *args)
    assert done.returncode == EXIT_CHECK_FAILED, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert "capture does not work" in done.stderr


# Issue 23, item 10: a command started with stdout closed (`>&-`) exited 0 having shown nothing,
# where `> /dev/full` is exit 74. Python starts such a process with sys.stdout None, and print and
# click then write nothing, silently; a tool whose output is its result must not call that success.

def _started_with_closed(site, *args: str, fds: tuple[int, ...] = (1,), **env: str) -> subprocess.CompletedProcess:
    """The CLI started with the descriptors ``fds`` closed (`>&-` is 1, `2>&-` is 2)."""
    def close() -> None:
        for fd in fds:
            os.close(fd)

    return subprocess.run([sys.executable, "-m", "eagle3_patch", *args], capture_output=True, text=True,
                          env=site.env(**env), timeout=120, preexec_fn=close)


CLOSED = "eagle3-patch could not write its output: its standard output is closed or not open for writing."


@pytest.mark.parametrize("args, which", first_fast(
    (["status"], PATCHED), (["status", "--json"], PATCHED), (["check"], PATCHED), (["check", "--json"], PATCHED),
    (["diff"], UNPATCHED), (["diff", "--json"], UNPATCHED), (["apply", "--dry-run"], UNPATCHED),
    (["--version"], PATCHED), (["--help"], PATCHED), (["status", "--help"], PATCHED),
), ids=lambda value: " ".join(value) if isinstance(value, list) else value)
def test_a_command_started_with_stdout_closed_is_exit_74_and_says_so_on_stderr(sites, args, which):
    done = _started_with_closed(sites[which], *args)
    assert done.returncode == EXIT_OUTPUT, done.stderr
    assert CLOSED in done.stderr and "Traceback" not in done.stderr and "internal error" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["apply", "revert"])
def test_a_change_made_with_stdout_closed_stays_made_and_is_exit_74(site, command):
    s = site("0.5.12")
    if command == "revert":
        assert s.run("apply").returncode == 0
    done = _started_with_closed(s, command)
    assert done.returncode == EXIT_OUTPUT and CLOSED in done.stderr, done.stderr
    assert (b"[EAGLE3-PATCH]" in s.read()) == (command == "apply")


@pytest.mark.parametrize("args, which, code", first_fast(
    (["check"], UNPATCHED, EXIT_CHECK_FAILED), (["check", "--json"], UNPATCHED, EXIT_CHECK_FAILED),
    (["diff"], PATCHED, 0),
), ids=lambda value: " ".join(value) if isinstance(value, list) else str(value))
def test_a_command_with_nothing_for_stdout_or_an_answer_of_its_own_keeps_its_exit_code(sites, args, which, code):
    """check's 1 ("capture does not work") was known before the report was lost, as with a closed pipe;
    diff with nothing to change only writes to stderr."""
    done = _started_with_closed(sites[which], *args)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


@pytest.mark.slow
def test_serve_and_run_dry_runs_with_stdout_closed_are_exit_74(sites, tmp_path):
    model, drafter = write_target(tmp_path / "target"), write_drafter(tmp_path / "compressed")
    for args in (["serve", "--model", str(model), "--drafter", str(drafter), "--dry-run"],
                 ["run", "--dry-run", "--sglang-dir", str(sites[PATCHED].package), "--", "sh", "-c", "exit 3"]):
        done = _started_with_closed(sites[PATCHED], *args)
        assert done.returncode == EXIT_OUTPUT and CLOSED in done.stderr, (args, done.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("stdout", [">&-", "1</dev/null"])
def test_bench_with_a_stdout_it_cannot_write_is_exit_74_before_any_request(sites, stdout):
    """It measured the whole run (minutes, against real servers) and lost the report at the end."""
    clock = ScriptedClock()  # the child reads its own real clock; the stand-ins need one
    args = ["bench", "--url", "", "--baseline-url", "", "--bucket", "coding", "--runs", "2", "--warmup", "0",
            "--max-new-tokens", "16"]
    with StandIn(clock, eagle3_script) as eagle3, StandIn(clock, baseline_script, speculative=False) as baseline:
        args[2], args[4] = eagle3.url, baseline.url
        if stdout == ">&-":
            done = _started_with_closed(sites[PATCHED], *args)
        else:
            with open(os.devnull, "rb") as read_only:
                done = subprocess.run([sys.executable, "-m", "eagle3_patch", *args], stdout=read_only,
                                      stderr=subprocess.PIPE, text=True, env=sites[PATCHED].env(), timeout=60)
    assert done.returncode == EXIT_OUTPUT and CLOSED in done.stderr, done.stderr
    assert eagle3.bodies == baseline.bodies == []


@pytest.mark.slow
@pytest.mark.parametrize("fds", [(1,), (2,)], ids=[">&-", "2>&-"])
def test_run_with_stdout_or_stderr_closed_hands_over_and_exits_as_its_command(sites, fds):
    """Nothing of run's own goes to stdout; flushing the missing stream before exec was exit 70."""
    done = _started_with_closed(sites[PATCHED], "run", "--sglang-dir", str(sites[PATCHED].package),
                                "--", "sh", "-c", "exit 3", fds=fds)
    assert done.returncode == 3, done.stderr


@pytest.mark.slow
def test_serve_with_stdout_closed_hands_over_to_sglang(tmp_path):
    package = install_release("0.5.12", tmp_path / "site")
    standin, record, env = standin_env(tmp_path, tmp_path / "site", package)
    model, drafter = write_target(tmp_path / "target"), write_drafter(tmp_path / "compressed")
    done = subprocess.run([sys.executable, "-m", "eagle3_patch", "serve", "--python", str(standin),
                           "--model", str(model), "--drafter", str(drafter)], capture_output=True, text=True,
                          env=env, timeout=120, preexec_fn=lambda: os.close(1))
    assert done.returncode == 0, done.stderr
    assert record.exists()  # the stand-in SGLang was started


@pytest.mark.slow
def test_stdout_open_for_reading_only_is_exit_74_not_an_internal_error(sites):
    with open(os.devnull, "rb") as read_only:
        done = subprocess.run([sys.executable, "-m", "eagle3_patch", "status"], stdout=read_only,
                              stderr=subprocess.PIPE, text=True, env=sites[PATCHED].env(), timeout=60)
    assert done.returncode == EXIT_OUTPUT and CLOSED in done.stderr, done.stderr


@pytest.mark.slow
def test_stdout_and_stderr_closed_is_still_exit_74(sites):
    done = _started_with_closed(sites[PATCHED], "status", fds=(1, 2))
    assert done.returncode == EXIT_OUTPUT


@pytest.mark.slow
def test_with_stderr_closed_what_goes_to_stderr_never_lands_on_stdout(site):
    """The lock's waiting notice is printed to sys.stderr, which Python leaves None: print(file=None)
    wrote it to stdout, in front of apply's JSON."""
    s = site("0.5.12")
    lock = s.package / "srt" / "models" / ".eagle3-patch.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        threading.Timer(3, fcntl.flock, (held, fcntl.LOCK_UN)).start()  # after the 2 s notice
        done = _started_with_closed(s, "apply", "--json", fds=(2,))
    assert done.returncode == 0
    assert json.loads(done.stdout)["outcome"] == "patched"
