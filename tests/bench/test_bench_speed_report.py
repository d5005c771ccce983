"""`bench`'s speed model as a user sees it, against stand-ins whose step times are set: the plain
server's decode step t_p, the EAGLE-3 server's round t_r and the tokens each round brings. So the
truth is known: c = t_r / t_p, the break-even tau = c, the speedup tau / c.

Time never comes from this machine. Single-stream runs read the stand-ins' scripted clock. Under
load, concurrent streams make chunk arrival order the machine's, so ``TaskClock`` keeps one time
per asyncio task (each worker its own) and moves the reading task on by the answering server's
step at every read: a request's decode window is its chunks x that step, however the event loop
interleaves the workers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading

import pytest
from click.testing import CliRunner

from eagle3_patch.bench.speedmodel import ASSUMPTION

from support.bench_standin import Script, ScriptedClock, StandIn, token_ids
from support.cli import bench_with_clock, invoke_bench
from support.ports import closed_port_url

PROMPTS = ["--bucket", "chat", "--runs", "2", "--warmup", "1"]  # 3 prompts, 6 measured requests per level
T_P, T_R = 1 / 64, 3 / 128  # c = 1.5


class TaskClock:
    """Each asyncio task's own time: a task's first read is the latest time any task has reached,
    every later read adds ``step``. A stand-in sets ``step`` as it takes a request (the servers and
    levels are measured one after the other, so one step holds for every request in flight); the
    times a stand-in pushes are not needed."""

    def __init__(self) -> None:
        self.step = 0.0
        self.now = 0.0
        self._times: dict[object, float] = {}
        self._lock = threading.Lock()

    def __call__(self) -> float:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        with self._lock:
            at = self._times[task] + self.step if task in self._times else self.now
            self._times[task] = at
            self.now = max(self.now, at)
            return at

    def push(self, at: float) -> None:
        pass


def server(clock, tokens_per_round: int | None, steps):
    """A stand-in's answer: the prefill token, then ``tokens_per_round`` per round (a plain server,
    None: one token per step), one chunk per ``next(steps)`` seconds."""

    def respond(body):
        step = next(steps)
        clock.step = step
        n = body["sampling_params"]["max_new_tokens"]
        per = tokens_per_round or 1
        sizes = [1] + [per] * ((n - 1) // per) + ([(n - 1) % per] if (n - 1) % per else [])
        verify_ct = len(sizes) - 1 if tokens_per_round else None
        return Script(token_ids(body["text"], n), sizes, ttft=step, step=step, verify_ct=verify_ct)

    return respond


def constant(step: float):
    return itertools.repeat(step)


def per_level(levels: tuple[int, ...], steps: dict[int, float]):
    """Each request's step in the order a server takes them: one warm-up, then per level N a
    warm-up wave of N where N > 1 and max(4N, 6) measured requests."""
    return iter([steps[levels[0]]] + [steps[n] for n in levels
                                      for _ in range((n if n > 1 else 0) + max(4 * n, 6))])


def run(clock, eagle3, baseline, *args):
    result = CliRunner().invoke(bench_with_clock(clock), ["--url", eagle3.url, "--baseline-url", baseline.url,
                                                          *PROMPTS, *args])
    assert result.exit_code == 0, result.output
    return result


def bench_json(clock, eagle3, baseline, *args) -> dict:
    return json.loads(run(clock, eagle3, baseline, *args, "--json").stdout)


def expected_tau(max_new_tokens: int, per: int) -> float:
    return max_new_tokens / -(-(max_new_tokens - 1) // per)


@pytest.mark.parametrize("per", [1, 3, 4])
def test_single_stream_round_cost_break_even_and_predictions_are_the_set_step_times(per):
    clock = ScriptedClock()
    with (StandIn(clock, server(clock, per, constant(T_R))) as eagle3,
          StandIn(clock, server(clock, None, constant(T_P)), speculative=False) as baseline):
        report = bench_json(clock, eagle3, baseline, "--max-new-tokens", "64")
    assert report["schema_version"] == 4
    model = report["speed_model"]
    assert model["assumption"] == ASSUMPTION and model["caveat"] is None and model["levels"] == []
    single = model["single_stream"]
    assert single["unavailable"] is None and single["concurrency"] == 1
    assert single["round_s"] == pytest.approx(T_R, rel=1e-12)
    assert single["plain_step_s"] == pytest.approx(T_P, rel=1e-12)
    assert single["round_cost"] == single["break_even_tau"] == pytest.approx(1.5, rel=1e-12)
    assert single["plain_steps"] == 6 * 63
    assert [p["tau"] for p in single["predictions"]] == [2.2, 2.4, 3.0, 4.0]
    assert [p["speedup"] for p in single["predictions"]] == pytest.approx([2.2 / 1.5, 2.4 / 1.5, 2.0, 4 / 1.5])
    tau = expected_tau(64, per)
    assert single["tau"] == pytest.approx(tau) == report["summary"]["overall"]["eagle3"]["tau"]
    assert single["predicted_speedup"] == pytest.approx(tau / 1.5)
    assert single["measured_speedup"] == report["summary"]["overall"]["speedup"]
    # tau counts the prefill token, the decode rates do not: predicted / measured = 64 / 63.
    assert single["predicted_over_measured"] == pytest.approx(64 / 63, rel=1e-9)


def test_single_stream_text_states_the_model_the_assumption_and_the_ratio():
    clock = ScriptedClock()
    with (StandIn(clock, server(clock, 3, constant(T_R))) as eagle3,
          StandIn(clock, server(clock, None, constant(T_P)), speculative=False) as baseline):
        text = run(clock, eagle3, baseline, "--max-new-tokens", "64").stdout
    lines = text.splitlines()
    start = lines.index("Speed model: one EAGLE-3 round (3 draft steps + verify) costs c plain decode steps, "
                        "so EAGLE-3 pays when tau > c and decodes tau / c times as fast.")
    header, row = lines[start + 1].split(), lines[start + 2].split()
    assert header == ["conc", "round", "ms", "step", "ms", "rounds", "c", "tau", "2.2", "tau", "2.4", "tau", "3.0",
                      "tau", "4.0", "tau", "predicted", "measured", "ratio"]
    assert row == ["1", "23.438", "15.625", "126", "1.50", "1.47x", "1.60x", "2.00x", "2.67x", "3.05", "2.03x",
                   "2.00x", "1.02"]
    assert f"Assumed: {ASSUMPTION}; so c from one run" in text
    assert "measured: ratio of median decode rates" in text


def test_each_load_level_has_the_round_cost_of_its_own_step_times():
    levels = (1, 2, 4)
    plain_steps = {1: 0.010, 2: 0.012, 4: 0.016}
    round_steps = {1: 0.012, 2: 0.018, 4: 0.032}  # c = 1.2, 1.5, 2.0: verify grows dearer with the batch
    clock = TaskClock()
    with (StandIn(clock, server(clock, 3, per_level(levels, round_steps))) as eagle3,
          StandIn(clock, server(clock, None, per_level(levels, plain_steps)), speculative=False) as baseline):
        report = bench_json(clock, eagle3, baseline, "--max-new-tokens", "16", "--concurrency", "1,2,4")
    model = report["speed_model"]
    assert model["single_stream"] is None
    assert [m["concurrency"] for m in model["levels"]] == [1, 2, 4]
    for entry, level in zip(model["levels"], report["levels"], strict=True):
        n = entry["concurrency"]
        cost = round_steps[n] / plain_steps[n]
        assert entry["unavailable"] is None
        assert entry["round_s"] == pytest.approx(round_steps[n], rel=1e-9)
        assert entry["plain_step_s"] == pytest.approx(plain_steps[n], rel=1e-9)
        assert entry["round_cost"] == entry["break_even_tau"] == pytest.approx(cost, rel=1e-9)
        assert entry["rounds"] == pytest.approx(max(4 * n, 6) * 5)
        assert [p["speedup"] for p in entry["predictions"]] == pytest.approx([t / cost for t in (2.2, 2.4, 3.0, 4.0)])
        assert entry["tau"] == level["eagle3"]["tau"] == pytest.approx(16 / 5)
        assert entry["predicted_speedup"] == pytest.approx(16 / 5 / cost)
        # Measured: the ratio of median decode rates (15 tokens in 5 rounds against 15 steps), not
        # the throughput ratio, which also pays for prefill.
        measured = level["eagle3"]["decode_tok_s"]["median"] / level["baseline"]["decode_tok_s"]["median"]
        assert entry["measured_speedup"] == measured == pytest.approx(3 / cost)
        assert entry["predicted_over_measured"] == pytest.approx(16 / 15, rel=1e-9)


def test_a_level_with_too_few_rounds_says_so_while_the_others_have_a_model():
    clock = TaskClock()
    with (StandIn(clock, server(clock, 3, constant(T_R))) as eagle3,
          StandIn(clock, server(clock, None, constant(T_P)), speculative=False) as baseline):
        # 4 new tokens: one round per request, 6 at level 1 and 16 at level 4.
        report = bench_json(clock, eagle3, baseline, "--max-new-tokens", "4", "--concurrency", "1,4")
        text = run(clock, eagle3, baseline, "--max-new-tokens", "4", "--concurrency", "1,4").stdout
    first, second = report["speed_model"]["levels"]
    assert first["round_cost"] is None and first["predictions"] == []
    assert first["unavailable"] == ("only 6 EAGLE-3 verify round(s) were timed, and c needs 10: "
                                    "raise --max-new-tokens or --runs")
    assert second["unavailable"] is None and second["round_cost"] == pytest.approx(1.5, rel=1e-9)
    assert f"   1  not given: {first['unavailable']}." in text.splitlines()
    assert "measured: ratio of median decode rates (the load table's speedup is throughput, " in text


def test_round_cost_from_a_run_whose_drafts_are_never_accepted_predicts_the_accepting_runs_speedup():
    # The GPU record's check: the same chain config and step times, one drafter always wrong (tau ~ 1),
    # one always right (tau 4). The first run's c and the second run's tau give the second's speedup.
    def measure(per):
        clock = ScriptedClock()
        with (StandIn(clock, server(clock, per, constant(T_R))) as eagle3,
              StandIn(clock, server(clock, None, constant(T_P)), speculative=False) as baseline):
            return bench_json(clock, eagle3, baseline, "--max-new-tokens", "64")["speed_model"]["single_stream"]

    wrong, right = measure(1), measure(4)
    assert wrong["tau"] == pytest.approx(64 / 63) and right["tau"] == pytest.approx(4.0)
    assert wrong["measured_speedup"] < 1 < right["measured_speedup"]
    assert wrong["round_cost"] == pytest.approx(right["round_cost"], rel=1e-9)
    predicted = right["tau"] / wrong["round_cost"]
    assert predicted / right["measured_speedup"] == pytest.approx(64 / 63, rel=1e-9)
    assert next(p["speedup"] for p in wrong["predictions"] if p["tau"] == 4.0) == pytest.approx(predicted)


@pytest.mark.parametrize("baseline_speculative, eagle3_rounds, why", [
    (True, 3, "the baseline runs speculative decoding too, so its tokens are not plain decode steps"),
    (False, None, "the EAGLE-3 server sent no verify count (spec_verify_ct), so its rounds are unknown"),
])
def test_no_model_where_the_servers_cannot_give_one(baseline_speculative, eagle3_rounds, why):
    clock = ScriptedClock()
    with (StandIn(clock, server(clock, eagle3_rounds, constant(T_R)), speculative=bool(eagle3_rounds)) as eagle3,
          StandIn(clock, server(clock, None, constant(T_P)), speculative=baseline_speculative) as baseline):
        report = bench_json(clock, eagle3, baseline, "--max-new-tokens", "16")
        text = run(clock, eagle3, baseline, "--max-new-tokens", "16").stdout
    single = report["speed_model"]["single_stream"]
    assert single["unavailable"] == why and single["round_cost"] is None
    assert f"Speed model: not given: {why}." in text.splitlines()


def test_no_model_without_a_baseline_in_text_and_json():
    clock = ScriptedClock()
    with StandIn(clock, server(clock, 3, constant(T_R))) as eagle3:
        args = ["--url", eagle3.url, *PROMPTS, "--max-new-tokens", "16", "--concurrency", "1,2"]
        report = json.loads(CliRunner().invoke(bench_with_clock(clock), [*args, "--json"]).stdout)
        text = CliRunner().invoke(bench_with_clock(clock), args).stdout
    why = "c is counted in a plain server's decode steps: run with --baseline-url"
    assert [m["unavailable"] for m in report["speed_model"]["levels"]] == [why, why]
    assert f"Speed model: not given: {why}." in text.splitlines()


def test_a_server_that_drafts_a_tree_gets_the_model_with_a_caveat():
    class TreeStandIn(StandIn):
        def server_info(self):
            return {**super().server_info(), "speculative_eagle_topk": 4}

    clock = ScriptedClock()
    with (TreeStandIn(clock, server(clock, 3, constant(T_R))) as eagle3,
          StandIn(clock, server(clock, None, constant(T_P)), speculative=False) as baseline):
        report = bench_json(clock, eagle3, baseline, "--max-new-tokens", "16")
        text = run(clock, eagle3, baseline, "--max-new-tokens", "16").stdout
    caveat = "the EAGLE-3 server drafts a tree (topk above 1), not a chain, where the assumption is untested"
    assert report["speed_model"]["caveat"] == caveat
    assert report["speed_model"]["single_stream"]["round_cost"] == pytest.approx(1.5, rel=1e-12)
    assert f"Caveat: {caveat}." in text.splitlines()


def test_a_run_that_stopped_before_any_request_says_so_not_that_the_baseline_is_missing():
    clock = ScriptedClock()
    with StandIn(clock, server(clock, 3, constant(T_R))) as eagle3:
        result = invoke_bench(clock, "--url", eagle3.url, "--baseline-url", closed_port_url(), "--json")
    assert result.exit_code == 10
    report = json.loads(result.stdout)
    assert report["partial"] is True
    assert report["speed_model"]["single_stream"]["unavailable"] == "no request finished"
