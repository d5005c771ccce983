"""A reader that stops reading (``| head -0``, a closed pipe) ends the command with 74, quietly.

Through a real process, because the failing write can be the interpreter's own final
flush: only a process shows that exit code and what reaches stderr at shutdown.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import first_fast
from eagle3_patch.errors import EXIT_CHECK_FAILED, EXIT_OUTPUT

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
    from conftest import Site

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


@pytest.mark.parametrize("args, which, code", first_fast(
    (["status"], PATCHED, 0), (["diff"], UNPATCHED, 0), (["apply", "--dry-run"], UNPATCHED, 0),
    (["check"], UNPATCHED, EXIT_CHECK_FAILED), (["check", "--json"], PATCHED, 0),
), ids=lambda value: " ".join(value) if isinstance(value, list) else str(value))
def test_a_command_started_with_stdout_closed_ends_as_print_would_not_as_a_bug(sites, args, which, code):
    """`>&-`: Python starts with no sys.stdout, and what is printed goes nowhere (print, click)."""
    done = subprocess.run([sys.executable, "-m", "eagle3_patch", *args], stderr=subprocess.PIPE, text=True,
                          env=sites[which].env(), timeout=60, preexec_fn=lambda: os.close(1))
    assert done.returncode == code, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
