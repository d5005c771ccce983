"""What `bench` accepts on its command line is bounded and checked before the first request.

Issue 17, D: a prompts file that is not a regular file or is too large, durations that are not
a sensible finite number of seconds, concurrency levels that are not plain ASCII numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.commands.bench import bench as bench_command
from eagle3_patch.bench.prompts import PROMPTS_FILE_CAP
from eagle3_patch.errors import BenchFailed

from support.bench_standin import ScriptedClock, StandIn, eagle3_script
from support.cli import invoke_bench, invoke_main
from support.marks import first_fast
from support.paths import SRC


# A port nothing listens on: every refusal here must come before any connection.
NO_SERVER = "http://127.0.0.1:9"


def _cap_memory() -> None:
    # An unbounded read must fail in this child, not take the test machine down with it.
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


def bench(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "eagle3_patch", "bench", "--url", NO_SERVER, *args],
                          env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=_cap_memory)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("source", first_fast("/dev/zero", "/dev/urandom", "fifo"))
def test_prompts_that_are_not_a_regular_file_are_refused_at_once(source: str, fifo: Path) -> None:
    path = str(fifo) if source == "fifo" else source

    done = bench("--prompts", path, timeout=20)

    assert done.returncode == 8, done.stderr
    assert f"The prompts file {path} is not a regular file" in done.stderr
    assert "Cannot reach" not in done.stderr


def test_a_prompts_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as handle:  # sparse: no disk, and reading it would take all memory
        handle.truncate(64 * PROMPTS_FILE_CAP)

    done = bench("--prompts", str(huge))

    assert done.returncode == 8, done.stderr
    assert f"larger than the {PROMPTS_FILE_CAP // 2**20} MiB" in done.stderr


def usage(*args: str):
    return CliRunner().invoke(bench_command, ["--url", NO_SERVER, *args])


@pytest.mark.parametrize("value", ["0.0001", "1e-9", "0.5", "nan", "NaN", "inf", "-inf", "1e300", "86401"])
def test_duration_outside_one_second_to_one_day_is_a_usage_error(value: str) -> None:
    result = usage("--duration", value)

    assert result.exit_code == 2, result.output
    assert "a finite number of seconds from 1 to 86400" in result.output


@pytest.mark.parametrize("value", ["1", "60", "86400", "2.5"])
def test_duration_in_range_is_accepted(value: str) -> None:
    result = usage("--duration", value)  # accepted, so it gets as far as connecting

    assert isinstance(result.exception, BenchFailed) and "Cannot reach" in result.exception.what


@pytest.mark.parametrize("value", first_fast("inf", "nan", "1e400", "86401", "0", "-1"))
def test_timeout_that_is_not_a_finite_number_of_seconds_up_to_a_day_is_a_usage_error(value: str) -> None:
    # inf and 1e400 reached aiohttp's timer as infinity: an OverflowError, exit 70; nan never expired.
    result = invoke_main("bench", "--url", NO_SERVER, "--timeout", value)

    assert result.exit_code == 2, result.stderr
    assert "is not a finite number of seconds above 0 up to 86400 (one day), e.g. --timeout 120." in result.stderr


class Jumps:
    """A clock that moves ten seconds every time it is read: any --duration is over at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10.0
        return self.now


def test_a_level_that_measured_no_request_is_a_failure_not_a_success() -> None:
    with StandIn(ScriptedClock(), eagle3_script) as eagle3:
        result = invoke_bench(
            Jumps(), "--url", eagle3.url, "--bucket", "chat", "--max-new-tokens", "4", "--warmup", "0",
            "--concurrency", "1,2", "--duration", "1", "--json")

    assert result.exit_code == 10, result.stderr
    report = json.loads(result.stdout)
    assert "measured no request at concurrency 1" in report["error"]["what"]
    assert report["partial"] is True and report["levels"] == [] and report["exit_code"] == 10
    assert "None" not in result.stdout


@pytest.mark.parametrize("load", first_fast([], ["--concurrency", "1,2"]), ids=["single-stream", "under-load"])
def test_a_huge_warmup_count_costs_no_memory_before_its_first_request(load: list[str]) -> None:
    # Every warm-up request was listed first: --warmup 2**40 filled memory (MemoryError, exit 70
    # under this cap) before one was sent. The server refusing the first one ends the run here.
    def refusing(body):
        return dataclasses.replace(eagle3_script(body), http_status=503)

    with StandIn(ScriptedClock(), refusing) as eagle3:
        env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
        done = subprocess.run([sys.executable, "-m", "eagle3_patch", "bench", "--url", eagle3.url, "--bucket", "chat",
                               "--warmup", str(2**40), *load], env=env, capture_output=True, text=True, timeout=60,
                              preexec_fn=_cap_memory)
    assert done.returncode == 10, done.stderr
    assert "refused a /generate request with HTTP 503" in done.stderr and len(eagle3.bodies) == 1


@pytest.mark.parametrize("value", ["\u0661", "\uff14", "+4", " 4", "4 ", "4_0", "1, 4", "0x4", "1,\u0664"])
def test_concurrency_takes_ascii_digits_only(value: str) -> None:
    result = usage("--concurrency", value)

    assert result.exit_code == 2, result.output
    assert "is not a comma-separated list of positive whole numbers" in result.output


def test_concurrency_above_the_hard_open_file_limit_says_that_ulimit_cannot_help() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    result = usage("--concurrency", f"1,{hard}")

    assert result.exit_code == 2, result.output
    assert f"its hard limit is {hard}" in result.output and "ulimit -n" not in result.output
    assert f"at most {hard - 64}" in result.output


@pytest.mark.parametrize("digits", [20, 5000])
def test_an_absurd_concurrency_gets_an_honest_short_message(digits: int) -> None:
    result = usage("--concurrency", "9" * digits)

    assert result.exit_code == 2, result.output
    assert "more requests in flight than any system can hold connections for" in result.output
    assert len(result.output) < 600
