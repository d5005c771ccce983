"""`bench --concurrency/--duration` as a user runs it, against loopback stand-ins.

Concurrent streams make chunk arrival order the machine's, so these tests assert what does not
depend on timing: request counts, who was in flight with whom, tau, acceptance, the JSON
contract, partial results. Exact timing figures are proven in test_bench_load.py.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from eagle3_patch.commands.bench import bench
from eagle3_patch.bench.load import Level, ServerLoad, crossover
from eagle3_patch.bench.loadreport import describe_crossover
from eagle3_patch.errors import BenchFailed

from support.bench_standin import Gauge, ScriptedClock, StandIn, baseline_script, eagle3_script
from support.marks import first_fast
from support.cli import bench_with_clock, invoke_main
from support.ports import closed_port_url

ARGS = ["--bucket", "chat", "--max-new-tokens", "10", "--runs", "2", "--warmup", "1"]  # 3 prompts
SERVER_KEYS = {"throughput_tok_s", "decode_tok_s", "ttft_s", "tau", "acceptance", "requests"}


def run(*args, clock=None):
    """The command as is, or reading time from ``clock``."""
    return CliRunner().invoke(bench if clock is None else bench_with_clock(clock), [*args])


def with_acceptance(release):
    return lambda body: dataclasses.replace(eagle3_script(body), acceptance_release=release)


def test_each_level_runs_n_workers_per_server_one_server_at_a_time():
    gauge, clock = Gauge(), ScriptedClock()
    with (
        StandIn(clock, eagle3_script, gauge=gauge) as eagle3,
        StandIn(clock, baseline_script, speculative=False, gauge=gauge) as baseline,
    ):
        result = run("--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--concurrency", "4,1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["schema_version"] == 4 and report["partial"] is False
    assert report["settings"]["concurrency"] == [1, 4]
    # max(4N, runs x prompts): 6 at N=1, 16 at N=4, on each server, after one warm-up each
    # and, before the level of 4, an uncounted wave of 4.
    assert len(eagle3.bodies) == len(baseline.bodies) == 1 + 6 + 4 + 16
    assert [lv["concurrency"] for lv in report["levels"]] == [1, 4]
    assert [lv["eagle3"]["requests"] for lv in report["levels"]] == [6, 16]
    assert [lv["baseline"]["requests"] for lv in report["levels"]] == [6, 16]
    assert gauge.peak[eagle3.url] <= 4 and gauge.peak[baseline.url] <= 4
    assert not gauge.overlapped
    for lv in report["levels"]:
        assert set(lv) == {"concurrency", "eagle3", "baseline", "speedup", "match_rate", "compared"}
        assert set(lv["eagle3"]) == set(lv["baseline"]) == SERVER_KEYS
        assert set(lv["eagle3"]["decode_tok_s"]) == {"median", "p10"}
        assert set(lv["eagle3"]["ttft_s"]) == {"median", "p99"}
        assert lv["speedup"] == lv["eagle3"]["throughput_tok_s"] / lv["baseline"]["throughput_tok_s"]
        assert lv["match_rate"] == 1.0
    assert set(report["crossover"]) == {"last_win", "first_loss"}
    # Today's keys stay, and every request says at which level it ran.
    assert {"summary", "requests", "comparisons", "servers", "notes"} <= set(report)
    assert sorted({r["concurrency"] for r in report["requests"]}) == [1, 4]
    assert sum(c["concurrency"] == 1 for c in report["comparisons"]) == 6


@pytest.mark.parametrize("release", ["0.5.11", "0.5.21"])
def test_tau_and_acceptance_are_pooled_per_level_under_each_release_names(release):
    with StandIn(ScriptedClock(), with_acceptance(release)) as eagle3:
        result = run("--url", eagle3.url, *ARGS, "--concurrency", "1,2", "--json")
    assert result.exit_code == 0, result.output
    level = json.loads(result.stdout)["levels"][0]["eagle3"]
    # 10 tokens: a prefill token, then 3 verify passes of 3 (2 drafts accepted of 3 proposed each).
    assert level["tau"] == 10 / 3
    acceptance = level["acceptance"]
    assert (acceptance["accepted_drafts"], acceptance["proposed_drafts"]) == (6 * 6, 6 * 9)
    assert acceptance["rate"] == 36 / 54
    assert acceptance["histogram"] == [0, 0, 18, 0]


def test_acceptance_the_server_does_not_send_is_null_and_the_baseline_is_null_without_one():
    with StandIn(ScriptedClock(), eagle3_script) as eagle3:
        result = run("--url", eagle3.url, *ARGS, "--concurrency", "1,2", "--json")
    report = json.loads(result.stdout)
    assert [lv["eagle3"]["acceptance"] for lv in report["levels"]] == [None, None]
    assert [(lv["baseline"], lv["speedup"]) for lv in report["levels"]] == [(None, None), (None, None)]
    assert report["crossover"] == {"last_win": None, "first_loss": None}


def test_default_concurrency_keeps_todays_run_and_report():
    with StandIn(ScriptedClock(), eagle3_script) as eagle3:
        as_json = run("--url", eagle3.url, *ARGS, "--json")
        text = run("--url", eagle3.url, *ARGS)
    report = json.loads(as_json.stdout)
    assert (report["levels"], report["crossover"]) == ([], {"last_win": None, "first_loss": None})
    assert len(report["requests"]) == 6
    assert "Under load" not in text.stdout and "Crossover" not in text.stdout
    assert "[7/7] run 2    EAGLE-3  chat-explain" in text.stderr


class Ticks:
    """A clock that moves one second every time it is read."""

    def __init__(self) -> None:
        self.now = -1

    def __call__(self) -> int:
        self.now += 1
        return self.now


@pytest.mark.parametrize("duration, requests", [(9, 2), (10, 3)])
def test_duration_replaces_the_request_count(duration, requests):
    # Each request reads the clock 4 times (the deadline check, its send, 2 chunks of 4 tokens),
    # after one read that sets the deadline: checks at 1, 5, 9, 13.
    with StandIn(ScriptedClock(), eagle3_script) as eagle3:
        result = run("--url", eagle3.url, "--bucket", "chat", "--max-new-tokens", "4", "--warmup", "0",
                     "--duration", str(duration), "--json", clock=Ticks())
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["duration_s"] == duration
    assert [lv["eagle3"]["requests"] for lv in report["levels"]] == [requests]
    assert len(eagle3.bodies) == requests


def test_a_server_dying_mid_level_keeps_finished_levels_and_requests_as_partial():
    served = []

    def dies_at_level_two(body):
        served.append(body)
        script = eagle3_script(body)
        return dataclasses.replace(script, stop_after_chunks=1) if len(served) == 1 + 6 + 3 else script

    with StandIn(ScriptedClock(), dies_at_level_two) as eagle3:
        result = invoke_main("bench", "--url", eagle3.url, *ARGS, "--concurrency", "1,4", "--json")
    assert result.exit_code == 10
    report = json.loads(result.stdout)
    assert report["exit_code"] == 10
    assert report["partial"] is True and "stopped before the generation finished" in report["error"]["what"]
    assert [lv["concurrency"] for lv in report["levels"]] == [1]
    assert sum(r["concurrency"] == 1 for r in report["requests"]) == 6
    assert sum(r["concurrency"] == 4 for r in report["requests"]) < 16


@pytest.mark.parametrize("value", ["0", "1,,4", "a,b", "", "-4", "1.5"])
def test_concurrency_that_is_not_a_list_of_positive_whole_numbers_is_a_usage_error(value):
    result = run("--url", "http://127.0.0.1:9", "--concurrency", value)
    assert result.exit_code == 2
    assert "is not a comma-separated list of positive whole numbers" in result.output


def test_progress_has_one_line_per_level_and_server_and_the_text_names_the_crossover():
    with (
        StandIn(ScriptedClock(), eagle3_script) as eagle3,
        StandIn(ScriptedClock(), baseline_script, speculative=False) as baseline,
    ):
        result = run("--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--concurrency", "1,2")
    assert result.exit_code == 0, result.output
    levels = [line for line in result.stderr.splitlines() if line.startswith("[level")]
    assert [line.split(" requests:")[0] for line in levels] == [
        "[level 1/4] concurrency 1    EAGLE-3  6",
        "[level 2/4] concurrency 1    baseline 6",
        "[level 3/4] concurrency 2    EAGLE-3  8",
        "[level 4/4] concurrency 2    baseline 8",
    ]
    assert "Under load: N workers per server" in result.stdout
    assert "Crossover: EAGLE-3" in result.stdout


def test_plot_under_load_is_written_as_png(tmp_path):
    target = tmp_path / "load.png"
    with (
        StandIn(ScriptedClock(), eagle3_script) as eagle3,
        StandIn(ScriptedClock(), baseline_script, speculative=False) as baseline,
    ):
        result = run("--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--concurrency", "1,2",
                     "--plot", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def load(tps: float) -> ServerLoad:
    return ServerLoad(tps, None, None, None, None, 4)


@pytest.mark.parametrize(
    "pairs, sentence",
    [
        ([(2, 1), (2, 1), (1, 2)], "EAGLE-3 is faster up to 4 concurrent requests and slower from 16."),
        ([(2, 1), (2, 1), (2, 1)], "EAGLE-3 is faster at every level measured, up to 16."),
        ([(1, 2), (2, 1), (2, 1)], "EAGLE-3 is not faster even at 1 concurrent request(s)."),
        ([(None, 1), (2, 1), (2, 1)], "unknown: the level at 1 has no throughput figure."),
        ([(2, 1), (None, 1), (1, 2)], "EAGLE-3 is faster up to 1; the next level has no throughput figure."),
    ],
    ids=["crossover", "all-win", "never", "first-unknown", "then-unknown"],
)
def test_the_crossover_sentence(pairs, sentence):
    levels = [Level(n, load(e), load(b), None, 0) for n, (e, b) in zip([1, 4, 16], pairs, strict=True)]
    assert describe_crossover(crossover(levels), levels, with_baseline=True) == f"Crossover: {sentence}"


def test_no_crossover_sentence_without_a_baseline():
    levels = [Level(1, load(2), None, None, 0)]
    assert describe_crossover(crossover(levels), levels, with_baseline=False) == "Crossover: needs --baseline-url."


@pytest.fixture
def open_file_limit():
    resource = pytest.importorskip("resource")
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, before[1]))
    yield 256
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_more_concurrent_requests_than_open_files_allow_is_a_usage_error(open_file_limit):
    refused = run("--url", "http://127.0.0.1:9", "--concurrency", "1,193")
    assert refused.exit_code == 2
    assert "193 concurrent requests need 257 open files, and this process may open 256" in refused.output
    assert "ulimit -n 257" in refused.output
    url = closed_port_url()  # 192 passes the check and fails on connecting
    accepted = run("--url", url, "--concurrency", "1,192")
    assert isinstance(accepted.exception, BenchFailed)
    assert "Cannot reach the server" in accepted.exception.what


def _stalled_first_wave(stall: float, warmups: int):
    """An EAGLE-3 stand-in whose first batch of four pays ``stall`` seconds before its first token,
    as a server's first use of a batch size may: the four requests after the one-at-a-time warm-ups."""
    seen = []

    def respond(body):
        seen.append(body)
        script = eagle3_script(body)
        return dataclasses.replace(script, ttft=stall) if warmups < len(seen) <= warmups + 4 else script

    return respond


@pytest.mark.parametrize(("warmup", "stalled"), first_fast(("1", False), ("0", True)))
def test_a_servers_first_batch_of_a_size_goes_to_the_uncounted_wave_not_into_the_level(warmup, stalled):
    # The GPU record's run 5: one level-4 wave waited 1.49 s for its first token in the first
    # pass and 0.67 s in the second, and the level's throughput moved by 28 % with it.
    clock = ScriptedClock()
    with StandIn(clock, _stalled_first_wave(100.0, int(warmup))) as eagle3:
        args = ["--bucket", "chat", "--max-new-tokens", "10", "--runs", "2", "--warmup", warmup]
        result = run("--url", eagle3.url, *args, "--concurrency", "4", "--json", clock=clock)
    assert result.exit_code == 0, result.output
    level = json.loads(result.stdout)["levels"][0]
    assert level["eagle3"]["requests"] == 16
    assert (level["eagle3"]["ttft_s"]["p99"] >= 100.0) is stalled
    assert len(eagle3.bodies) == int(warmup) + 4 * int(warmup) + 16
