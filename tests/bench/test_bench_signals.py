"""Ctrl-C and SIGTERM, sent as real signals to `bench` running as a real process.

The stand-in answers three requests, then holds the fourth open forever; the test waits
for the third progress line, signals, and checks what the user is left with. Then issue 23:
SIGTERM ends bench with its partial report whatever a hostile server does (test_bench_interrupt.py
proves the same of a measurement that keeps the event loop's thread busy).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from eagle3_patch.bench.interrupt import GRACE_S

from support import hostile_routes
from support.bench_standin import ScriptedClock, StandIn, eagle3_script
from support.paths import SRC

pytestmark = pytest.mark.slow  # real signals sent to bench running as a process

ARGS = ["--bucket", "chat", "--max-new-tokens", "10", "--runs", "2", "--warmup", "0"]


def holds_the_fourth_request():
    return holds_request(4)


def holds_request(number: int):
    served = []

    def respond(body):
        served.append(body)
        script = eagle3_script(body)
        return dataclasses.replace(script, hold_after_chunks=1) if len(served) == number else script

    return respond


def interrupt_after_three_requests(url: str, signum: int, *extra: str, after: str = "[3/6]") -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "eagle3_patch", "bench", "--url", url, *ARGS, *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell's background job inherits SIGINT ignored; a terminal user's Ctrl-C is not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith(after):
            break
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, "".join(seen) + err


@pytest.mark.parametrize(
    "signum, code, name",
    [(signal.SIGINT, 130, "Ctrl-C (SIGINT)"), (signal.SIGTERM, 143, "SIGTERM")],
    ids=["sigint", "sigterm"],
)
def test_a_signal_in_human_mode_prints_finished_figures_marked_partial(signum, code, name):
    with StandIn(ScriptedClock(), holds_the_fourth_request()) as server:
        returncode, out, err = interrupt_after_three_requests(server.url, signum)
    assert returncode == code, err
    assert out.startswith("PARTIAL: Interrupted by")
    assert f"Interrupted by {name}." in out and "Figures of the 3 measured request(s)" in out
    chat_row = next(line for line in out.splitlines() if line.startswith("chat "))
    assert chat_row.split()[1] == "3"  # the three finished requests, not the held one
    assert f"error: Interrupted by {name}." in err
    assert "Traceback" not in err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"])
def test_a_signal_in_json_mode_prints_the_finished_requests_as_partial_json(signum, code):
    with StandIn(ScriptedClock(), holds_the_fourth_request()) as server:
        returncode, out, err = interrupt_after_three_requests(server.url, signum, "--json")
    assert returncode == code, err
    report = json.loads(out)
    assert report["partial"] is True and "Interrupted by" in report["error"]["what"]
    assert report["exit_code"] == code
    assert [r["prompt_id"] for r in report["requests"]] == ["chat-espresso", "chat-trip", "chat-explain"]


def test_sigint_ignored_by_the_parent_stays_ignored():
    """`bench ... &` from a script: the shell set SIGINT to ignored, and bench keeps running."""
    with StandIn(ScriptedClock(), holds_the_fourth_request()) as server:
        env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "eagle3_patch", "bench", "--url", server.url, *ARGS],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        for line in process.stderr:
            if line.startswith("[3/6]"):
                break
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)  # the one this test can wait for
        out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "Interrupted by SIGTERM" in out


def test_sigterm_under_load_keeps_the_finished_level_and_requests():
    # Level 1 sends 6 requests; the 8th (the second of level 2) is held open.
    with StandIn(ScriptedClock(), holds_request(8)) as server:
        returncode, out, err = interrupt_after_three_requests(
            server.url, signal.SIGTERM, "--concurrency", "1,2", "--json", after="[level 1/2]")
    assert returncode == 143, err
    report = json.loads(out)
    assert report["partial"] is True
    assert [level["concurrency"] for level in report["levels"]] == [1]
    assert sum(r["concurrency"] == 1 for r in report["requests"]) == 6


def bench_process(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    return subprocess.Popen([sys.executable, "-m", "eagle3_patch", "bench", *args, "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sigterm_once_reached(process: subprocess.Popen, reached) -> tuple[int, dict, str]:
    """SIGTERM once the stand-in is in its hostile answer; what bench left within a few seconds."""
    assert reached.wait(30), "bench never reached the hostile answer"
    time.sleep(0.3)  # bench is now reading it
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=GRACE_S + 10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("bench still ran 11 s after SIGTERM") from None
    return process.returncode, json.loads(out), err


@pytest.mark.parametrize("route, answer", [
    ("GET /server_info", hostile_routes.hold),
    ("GET /server_info", hostile_routes.trickle_headers),
    ("GET /v1/models", hostile_routes.hold),
    ("POST /v1/tokenize", hostile_routes.hold),
    ("POST /generate", hostile_routes.hold),
    ("POST /generate", hostile_routes.trickle_body),
    ("POST /generate", hostile_routes.keep_alive_forever),
], ids=["info-held", "info-trickled-headers", "models-held", "tokenize-held", "stream-held", "stream-trickled",
        "stream-keep-alive-only"])
def test_sigterm_ends_bench_with_its_partial_report_whatever_the_server_does(route, answer):
    with StandIn(ScriptedClock(), eagle3_script, raw_routes={route: answer}) as server:
        process = bench_process("--url", server.url, *ARGS, "--timeout", "600")
        returncode, report, err = sigterm_once_reached(process, server.raw_reached)
    assert returncode == 143, err
    assert report["partial"] is True and report["error"]["what"] == "Interrupted by SIGTERM."
    assert "Traceback" not in err


def test_sigterm_ends_bench_waiting_on_the_divergence_follow_up_and_keeps_every_request():
    def diverging(body):
        script = eagle3_script(body)
        script.output_ids[5] += 1
        return script

    with (
        StandIn(ScriptedClock(), eagle3_script, raw_routes={"POST /generate logprob": hostile_routes.hold}) as eagle3,
        StandIn(ScriptedClock(), diverging, speculative=False) as baseline,
    ):
        process = bench_process("--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--timeout", "600")
        returncode, report, err = sigterm_once_reached(process, eagle3.raw_reached)
    assert returncode == 143, err
    assert report["partial"] is True and len(report["requests"]) == 12


# bench as a process whose plot takes a minute to draw (a hung network filesystem, say): the
# stand-in for that slowness is a sleep put before the real drawing.
SLOW_PLOT = """
import sys, time
import eagle3_patch.commands.bench as command
draw = command.write_plot
def slow(*args):
    print("drawing", file=sys.stderr, flush=True)
    time.sleep(60)
    draw(*args)
command.write_plot = slow
from eagle3_patch.cli import main
main(sys.argv[1:])
"""


def test_sigterm_while_the_plot_is_drawn_still_prints_the_whole_report(tmp_path):
    # The plot is drawn after the last request, with no event loop and no handler: SIGTERM there
    # ended the process by Python's default action, and --json printed nothing at all.
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    with StandIn(ScriptedClock(), eagle3_script) as server:
        process = subprocess.Popen(
            [sys.executable, "-c", SLOW_PLOT, "bench", "--url", server.url, *ARGS, "--json",
             "--plot", str(tmp_path / "bench.png")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in process.stderr:
            if line.startswith("drawing"):
                break
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=GRACE_S + 10)
    assert process.returncode == 143, err
    report = json.loads(out)
    assert report["error"]["what"] == "Interrupted by SIGTERM." and report["exit_code"] == 143
    assert "the plot was not written" in report["error"]["why"]
    assert report["partial"] is False and len(report["requests"]) == 6
    assert not (tmp_path / "bench.png").exists()
