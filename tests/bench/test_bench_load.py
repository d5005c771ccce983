"""Load-level figures from exact, hand-built timelines: throughput window, percentiles, tau,
acceptance pooling and the crossover. No clock, no server: every value is exact."""

from __future__ import annotations

import statistics

import pytest

from eagle3_patch.bench.acceptance import pool, read_acceptance
from eagle3_patch.bench.stream import Chunk, Recording
from eagle3_patch.bench.load import (
    Level,
    LevelRun,
    ServerLoad,
    Timeline,
    crossover,
    in_flight_window,
    percentile,
    server_load,
    throughput,
)
from eagle3_patch.bench.stats import EAGLE3, request_figures

from support.bench_standin import acceptance_fields


def request(sent_at: float, chunks: list[tuple[float, int]], verify_ct: int | None = None, meta: dict | None = None):
    total = chunks[-1][1]
    info = {"completion_tokens": total, "finish_reason": {"type": "length"}, **(meta or {})}
    if verify_ct:
        info["spec_verify_ct"] = verify_ct
    recording = Recording(sent_at, [Chunk(at, n) for at, n in chunks], list(range(total)), info)
    return request_figures(recording, EAGLE3, "p", "chat", 1, 2), Timeline(sent_at, tuple(recording.chunks))


def level_run(n: int, made: list, drained_at: float | None) -> LevelRun:
    return LevelRun(n, EAGLE3, tuple(f for f, _ in made), tuple(t for _, t in made), drained_at)


def test_throughput_counts_only_tokens_while_all_n_requests_were_in_flight():
    # Two workers. Worker A starts at 0 and again at 4; worker B starts at 1 (the N-th start)
    # and runs dry at 6 (the window's end). Tokens at t <= 1 (ramp-up) and t > 6 (last wave)
    # are outside; inside: A's 3+2 (t=2, 3), its second request's 4 (t=5), B's 4+4 (t=2.5, 5.5).
    made = [
        request(0.0, [(0.5, 1), (2.0, 4), (3.0, 6)]),
        request(4.0, [(5.0, 4), (7.0, 8)]),
        request(1.0, [(2.5, 4), (5.5, 8)]),
    ]
    run = level_run(2, made, drained_at=6.0)
    assert in_flight_window(run) == (1.0, 6.0)
    assert throughput(run) == (3 + 2 + 4 + 4 + 4) / 5.0


def test_no_window_when_fewer_requests_than_workers_started_or_the_run_was_cut_off():
    made = [request(0.0, [(0.5, 1), (1.0, 4)])]
    assert throughput(level_run(2, made, drained_at=1.0)) is None
    assert throughput(level_run(1, made, drained_at=None)) is None


def test_percentiles_are_statistics_quantiles_inclusive():
    values = [float(v) for v in range(1, 12)]  # 1..11
    assert percentile(values, 10) == 2.0
    assert percentile(values, 99) == statistics.quantiles(values, n=100, method="inclusive")[98]
    assert percentile(values, 50) == 6.0
    assert percentile([3.0], 10) == 3.0  # one request: that request


def test_server_load_pools_tau_and_reports_median_p10_decode_and_median_p99_ttft():
    made = [
        request(0.0, [(0.25, 1), (1.25, 11)], verify_ct=4),   # ttft 1/4, 10 tok/s
        request(0.0, [(0.125, 1), (0.625, 11)], verify_ct=3),  # ttft 1/8, 20 tok/s
        request(0.0, [(0.375, 1), (0.625, 11)], verify_ct=3),  # ttft 3/8, 40 tok/s
    ]
    load = server_load(level_run(3, made, drained_at=0.625))
    assert load.requests == 3
    assert load.tau == 33 / 10
    assert load.decode_tok_s == {"median": 20.0, "p10": 12.0}  # 10 + 0.2 x (20 - 10)
    assert load.ttft_s == {
        "median": 0.25,
        "p99": statistics.quantiles([0.125, 0.25, 0.375], n=100, method="inclusive")[98],
    }
    assert load.acceptance is None  # the server sent no acceptance fields: not invented


@pytest.mark.parametrize("release", ["0.5.10", "0.5.11", "0.5.12", "0.5.21"])
def test_acceptance_is_read_under_each_release_family_names(release):
    fields = acceptance_fields(release, [3, 3, 2, 4])  # accepted 2 + 2 + 1 + 3 of 4 x 3
    acceptance = read_acceptance({"completion_tokens": 13, **fields})
    assert (acceptance.accepted_drafts, acceptance.proposed_drafts) == (8, 12)
    assert acceptance.rate == 8 / 12
    assert acceptance.histogram == (0, 1, 2, 1)


def test_the_newest_names_win_when_a_release_sends_both():
    meta = {"spec_num_correct_drafts": 5, "spec_num_proposed_drafts": 9, "spec_correct_drafts_histogram": [1, 2],
            "spec_accepted_drafts": 0, "spec_proposed_drafts": 1, "spec_accept_histogram": [9]}
    acceptance = read_acceptance(meta)
    assert (acceptance.accepted_drafts, acceptance.histogram,
            acceptance.fields) == (5, (1, 2), "spec_num_correct_drafts")


def test_pooled_acceptance_sums_counts_and_histograms_of_different_lengths():
    one = read_acceptance(acceptance_fields("0.5.21", [2, 2]))
    two = read_acceptance({"spec_num_correct_drafts": 6, "spec_num_proposed_drafts": 6,
                           "spec_correct_drafts_histogram": [0, 0, 0, 2]})
    pooled = pool([one, None, two])
    assert (pooled.accepted_drafts, pooled.proposed_drafts) == (8, 12)
    assert pooled.histogram == (0, 2, 0, 2)
    no_histogram = read_acceptance({"spec_accepted_drafts": 1, "spec_proposed_drafts": 3})
    assert pool([one, no_histogram]).histogram is None  # a partial histogram would mislead
    assert pool([None, None]) is None


def level(n: int, eagle3: float | None, baseline: float | None) -> Level:
    def load(tps):
        return ServerLoad(tps, None, None, None, None, 4 * n)

    return Level(n, load(eagle3), load(baseline) if baseline is not None else None, None, 0)


@pytest.mark.parametrize(
    "throughputs, last_win, first_loss",
    [
        ([(200, 100), (300, 200), (400, 300)], 16, None),        # all win
        ([(200, 100), (300, 200), (300, 400), (500, 400)], 4, 16),  # a later win does not count
        ([(90, 100), (300, 200)], None, 1),                     # the first level already loses
        ([(200, 100), (200, 200)], 1, 4),                       # a tie is not a win
    ],
    ids=["all-win", "win-win-lose-win", "first-loses", "tie-loses"],
)
def test_crossover_is_the_last_level_of_the_first_winning_streak(throughputs, last_win, first_loss):
    levels = [level(n, e, b) for n, (e, b) in zip([1, 4, 16, 64], throughputs, strict=False)]
    assert levels[0].speedup == throughputs[0][0] / throughputs[0][1]
    result = crossover(levels)
    assert (result.last_win, result.first_loss) == (last_win, first_loss)


def test_no_crossover_without_a_baseline():
    result = crossover([level(1, 200, None), level(4, 300, None)])
    assert (result.last_win, result.first_loss) == (None, None)
