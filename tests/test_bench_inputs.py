"""What `bench` accepts on its command line is bounded and checked before the first request.

Issue 17, D: a prompts file that is not a regular file or is too large, durations that are not
a sensible finite number of seconds, concurrency levels that are not plain ASCII numbers.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from eagle3_patch.bench.prompts import PROMPTS_FILE_CAP

SRC = Path(__file__).resolve().parents[1] / "src"
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


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom", "fifo"])
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
