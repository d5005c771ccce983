"""The speed model from hand-built requests: round cost, break-even, predictions, and the cases
where it cannot be given. No clock, no server: every time is exact."""

from __future__ import annotations

import pytest

from eagle3_patch.bench.serverinfo import ServerInfo
from eagle3_patch.bench.stream import Chunk, Recording
from eagle3_patch.bench.speedmodel import ACCEPT_LENGTHS, MIN_TIMED, speed_model, timed_rounds
from eagle3_patch.bench.stats import BASELINE, EAGLE3, request_figures


def info(speculative: bool = True, steps: int | None = 3) -> ServerInfo:
    return ServerInfo("http://127.0.0.1:1", "m", "0.5.12", "EAGLE3" if speculative else None,
                      steps if speculative else None, 1 if speculative else None,
                      steps + 1 if speculative and steps else None, None, False)


SERVERS = (info(), info(speculative=False))


def streamed(server: str, sizes: list[int], step: float, verify_ct: int | None = None):
    """One request: ``sizes[0]`` tokens in the first chunk at 0.25 s, then one chunk per ``step``."""
    counts = [sum(sizes[: k + 1]) for k in range(len(sizes))]
    meta = {"completion_tokens": counts[-1], "finish_reason": {"type": "length"}}
    if verify_ct is not None:
        meta["spec_verify_ct"] = verify_ct
    chunks = [Chunk(0.25 + step * k, n) for k, n in enumerate(counts)]
    return request_figures(Recording(0.0, chunks, list(range(counts[-1])), meta), server, "p", "chat", 1)


def rounds(count: int, tokens: int, step: float, first: int = 1, verify_ct: int | None = None):
    """An EAGLE-3 request: the prefill token (and, with ``first`` > 1, more) in its first chunk,
    then ``count`` rounds of ``tokens`` each, one per ``step``."""
    sizes = [first] + [tokens] * count
    made_by_rounds = (first - 1) // tokens + count
    return streamed(EAGLE3, sizes, step, verify_ct if verify_ct is not None else made_by_rounds)


def plain(tokens: int, step: float):
    return streamed(BASELINE, [1] * tokens, step)


def test_round_cost_is_time_per_verify_round_over_time_per_plain_decode_step():
    eagle3 = [rounds(8, 3, 0.030), rounds(8, 3, 0.030)]
    baseline = [plain(17, 0.020), plain(9, 0.020)]
    model = speed_model(1, eagle3, baseline, SERVERS, tau=25 / 8, measured_speedup=None)
    assert model.unavailable is None
    assert model.cost.round_s == pytest.approx(0.030, rel=1e-12)
    assert model.cost.step_s == pytest.approx(0.020, rel=1e-12)
    assert model.cost.cost == pytest.approx(1.5, rel=1e-12)
    assert (model.cost.rounds, model.cost.steps) == (16, 24)
    assert model.to_json()["break_even_tau"] == model.to_json()["round_cost"] == model.cost.cost


def test_predictions_are_tau_over_c_at_the_usual_accept_lengths_and_every_draft_accepted():
    model = speed_model(1, [rounds(12, 2, 0.03)], [plain(13, 0.02)], SERVERS, tau=25 / 12, measured_speedup=None)
    assert [tau for tau, _ in model.predictions] == [*ACCEPT_LENGTHS, 4.0]
    for tau, speedup in model.predictions:
        assert speedup == pytest.approx(tau / 1.5, rel=1e-12)


@pytest.mark.parametrize("steps, taus", [(1, [2.0]), (2, [2.2, 2.4, 3.0]), (5, [2.2, 2.4, 3.0, 6.0]),
                                         (None, [2.2, 2.4, 3.0]), (10**9, [2.2, 2.4, 3.0])])
def test_predictions_stop_at_the_accept_length_a_round_can_reach(steps, taus):
    servers = (info(steps=steps), info(speculative=False))
    model = speed_model(1, [rounds(12, 2, 0.03)], [plain(13, 0.02)], servers, tau=2.0, measured_speedup=None)
    assert [tau for tau, _ in model.predictions] == taus


def test_prediction_at_the_measured_tau_stands_beside_the_measured_speedup_with_their_ratio():
    model = speed_model(1, [rounds(12, 2, 0.03)], [plain(13, 0.02)], SERVERS, tau=2.5, measured_speedup=1.6)
    assert model.predicted_speedup == pytest.approx(2.5 / 1.5, rel=1e-12)
    assert model.predicted_over_measured == pytest.approx(2.5 / 1.5 / 1.6, rel=1e-12)
    unmeasured = speed_model(1, [rounds(12, 2, 0.03)], [plain(13, 0.02)], SERVERS, tau=2.5, measured_speedup=None)
    assert unmeasured.predicted_speedup is not None and unmeasured.predicted_over_measured is None


def test_the_cards_figures_imply_its_round_cost_of_1_22():
    # 93 -> 183 tok/s at tau 2.4: rounds bring 3, 2, 3, 2, 2 tokens (2.4 each), 12 tokens in 12 / 183 s.
    def card_request():
        request = streamed(EAGLE3, [1, 3, 2, 3, 2, 2], 12 / 183 / 5, verify_ct=5)
        assert request.decode_tok_s == pytest.approx(183, rel=1e-12)
        return request

    baseline = [streamed(BASELINE, [1] * 11, 1 / 93)]
    model = speed_model(1, [card_request() for _ in range(2)], baseline, SERVERS, tau=2.4, measured_speedup=183 / 93)
    assert model.cost.cost == pytest.approx(2.4 * 93 / 183, rel=1e-12)
    assert round(model.cost.cost, 2) == 1.22
    assert model.predicted_speedup == pytest.approx(183 / 93, rel=1e-12)


def test_rounds_whose_tokens_came_with_the_first_chunk_are_outside_the_decode_window():
    # The first chunk brought the prefill token and the first round's 3: 5 rounds in all, 4 timed.
    late = rounds(4, 3, 0.03, first=4)
    assert late.verify_ct == 5
    seconds, timed = timed_rounds([late])
    assert timed == pytest.approx(4, rel=1e-12)
    assert seconds / timed == pytest.approx(0.03, rel=1e-12)


def test_round_cost_is_pooled_over_time_not_averaged_over_requests():
    # 30 rounds of 10 ms and 10 rounds of 50 ms: 0.8 s over 40 rounds, not the mean of 10 and 50 ms.
    model = speed_model(1, [rounds(30, 2, 0.010), rounds(10, 2, 0.050)], [plain(21, 0.02)], SERVERS,
                        tau=2.0, measured_speedup=None)
    assert model.cost.round_s == pytest.approx(0.8 / 40, rel=1e-12)


@pytest.mark.parametrize("eagle3, baseline, servers, why", [
    ([rounds(12, 2, 0.03)], [], (info(), None), "run with --baseline-url"),
    ([rounds(12, 2, 0.03)], [plain(13, 0.02)], (info(), info()), "the baseline runs speculative decoding too"),
    ([streamed(EAGLE3, [1] + [2] * 12, 0.03)], [plain(13, 0.02)], SERVERS, "sent no verify count"),
    ([], [plain(13, 0.02)], SERVERS, "no EAGLE-3 request finished"),
    ([], [], (None, None), "no request finished"),
    ([rounds(12, 2, 0.03)], [], SERVERS, "no baseline request finished"),
    ([rounds(MIN_TIMED - 1, 2, 0.03)], [plain(13, 0.02)], SERVERS, f"only {MIN_TIMED - 1} EAGLE-3 verify round"),
    ([rounds(12, 2, 0.03)], [plain(MIN_TIMED, 0.02)], SERVERS, f"only {MIN_TIMED - 1} plain decode step"),
    # A request of one chunk has no decode window: nothing of it is timed.
    ([streamed(EAGLE3, [25], 0.03, verify_ct=12)], [plain(13, 0.02)], SERVERS, "only 0 EAGLE-3 verify round"),
])
def test_the_model_is_not_given_where_it_would_be_nonsense_and_says_why(eagle3, baseline, servers, why):
    model = speed_model(4, eagle3, baseline, servers, tau=2.0, measured_speedup=1.2)
    assert model.cost is None and why in model.unavailable
    report = model.to_json()
    assert report["unavailable"] == model.unavailable and report["predictions"] == []
    assert {key for key, value in report.items() if value is not None} == {
        "concurrency", "tau", "measured_speedup", "predictions", "unavailable"}


def test_the_fewest_rounds_and_steps_that_give_a_model():
    model = speed_model(1, [rounds(MIN_TIMED, 2, 0.03)], [plain(MIN_TIMED + 1, 0.02)], SERVERS,
                        tau=2.0, measured_speedup=None)
    assert model.unavailable is None and (model.cost.rounds, model.cost.steps) == (MIN_TIMED, MIN_TIMED)
