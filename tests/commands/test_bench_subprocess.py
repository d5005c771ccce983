"""`bench` as a real process with the real clock, against loopback stand-ins.

Timing is the machine's own here, so only timing-free figures are asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.bench_standin import ScriptedClock, StandIn, baseline_script, eagle3_script
from support.paths import SRC
from support.ports import closed_port_url

# The CLI as a process: test_bench_command proves the same output in this process, with a
# scripted clock; CI runs these.
pytestmark = pytest.mark.slow

COMMAND = "from eagle3_patch.commands.bench import bench; bench()"


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", COMMAND, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_bench_runs_as_a_process_and_prints_json_on_stdout_progress_on_stderr():
    clock = ScriptedClock()  # the child process uses its own real clock; this one is unused
    with StandIn(clock, eagle3_script) as eagle3, StandIn(clock, baseline_script, speculative=False) as baseline:
        done = run_bench(
            "--url", eagle3.url, "--baseline-url", baseline.url,
            "--bucket", "coding", "--runs", "2", "--warmup", "1", "--max-new-tokens", "16", "--json",
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    overall = report["summary"]["overall"]
    # 16 tokens: 1 prefill token + 5 verify passes of 3 -> tau 16/5.
    assert overall["eagle3"]["tau"] == 16 / 5
    assert (overall["match_rate"], overall["compared"]) == (1.0, 6)
    assert overall["eagle3"]["decode_tok_s"]["n"] == overall["baseline"]["decode_tok_s"]["n"] == 6
    assert len(report["requests"]) == 12
    assert "warm-up" in done.stderr and "run 2" in done.stderr


def test_bench_process_exits_non_zero_when_the_server_is_unreachable():
    url = closed_port_url()
    done = run_bench("--url", url)
    assert done.returncode != 0
    assert "Cannot reach the server" in done.stderr
    assert done.stdout == ""
