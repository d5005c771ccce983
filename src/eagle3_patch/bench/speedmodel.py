"""The speed model of one comparison: what an EAGLE-3 round costs in plain decode steps, the
accept length above which EAGLE-3 pays, and the speedup it predicts at any accept length.

Chain drafting (topk 1) does the same work every round: ``speculative_num_steps`` draft steps and
one verify pass over the chain, whether the target accepts none of the drafts or all of them. So
the round's cost c, in plain decode steps, belongs to the servers and the load, not to the
drafter's accuracy: a round that brings tau tokens decodes tau / c times as fast as the plain
server, and tau = c is the break-even. (The drafter card's 93 -> 183 tok/s at tau 2.4 implies
c = 2.4 x 93 / 183 = 1.22.)

Pure: per-request figures in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eagle3_patch.bench.serverinfo import ServerInfo
from eagle3_patch.bench.serverjson import is_count
from eagle3_patch.bench.stats import RequestFigures

ASSUMPTION = ("chain drafting (topk 1): a round, the draft steps and one verify pass, costs the same "
              "however many of its drafts the target accepts")
# The card's tau (2.4) and either side of it; the ceiling (every draft accepted) is added per server.
ACCEPT_LENGTHS = (2.2, 2.4, 3.0)
# Below this many timed rounds (or plain steps), c is mostly the arrival jitter of a few chunks.
MIN_TIMED = 10
# SGLang chains a few draft steps; a server claiming more than this is not describing a real setting.
_MOST_STEPS = 64


@dataclass(frozen=True)
class RoundCost:
    """EAGLE-3 seconds per round and plain seconds per decode step, pooled over the decode windows
    timed (time to first token excluded on both sides), and how many of each were timed."""

    round_s: float
    step_s: float
    rounds: float
    steps: int

    @property
    def cost(self) -> float:
        """c: one EAGLE-3 round in plain decode steps, which is also the break-even tau."""
        return self.round_s / self.step_s


def timed_rounds(requests: Iterable[RequestFigures]) -> tuple[float, float]:
    """Seconds and verify rounds inside the EAGLE-3 requests' decode windows.

    ``spec_verify_ct`` counts the rounds that made every token but the prefill's one. The window
    opens at the first chunk, which normally brings that token alone; where it brought more, the
    rounds behind its extra tokens fall outside, in proportion to the tokens they made.
    """
    seconds = rounds = 0.0
    for request in requests:
        tokens = _window_tokens(request)
        if not request.verify_ct or tokens is None or request.output_tokens < 2:
            continue
        seconds += request.decode_s
        rounds += request.verify_ct * tokens / (request.output_tokens - 1)
    return seconds, rounds


def timed_steps(requests: Iterable[RequestFigures]) -> tuple[float, int]:
    """Seconds and decode steps inside the plain requests' decode windows: one token, one step."""
    seconds, steps = 0.0, 0
    for request in requests:
        tokens = _window_tokens(request)
        if tokens:
            seconds += request.decode_s
            steps += tokens
    return seconds, steps


def _window_tokens(request: RequestFigures) -> int | None:
    """The tokens that arrived after the first chunk: those ``decode_s`` times."""
    if request.decode_s is None or request.decode_tok_s is None:
        return None
    return round(request.decode_tok_s * request.decode_s)


@dataclass(frozen=True)
class SpeedModel:
    """The model at one concurrency level: ``cost`` is None exactly when ``unavailable`` says why.

    ``tau`` and ``measured_speedup`` are the figures bench reports for the same level; ``ceiling``
    is the tau of a round whose drafts are all accepted (draft steps + 1), where known.
    """

    concurrency: int
    cost: RoundCost | None
    tau: float | None
    measured_speedup: float | None
    ceiling: int | None
    unavailable: str | None = None

    def speedup_at(self, tau: float) -> float | None:
        return tau / self.cost.cost if self.cost else None

    @property
    def predictions(self) -> list[tuple[float, float]]:
        """(tau, predicted speedup) at the usual accept lengths a round can reach, and the ceiling."""
        if self.cost is None:
            return []
        taus = [t for t in ACCEPT_LENGTHS if self.ceiling is None or t < self.ceiling]
        taus += [float(self.ceiling)] if self.ceiling is not None else []
        return [(tau, tau / self.cost.cost) for tau in taus]

    @property
    def predicted_speedup(self) -> float | None:
        """The speedup predicted at the measured tau."""
        return self.speedup_at(self.tau) if self.tau is not None else None

    @property
    def predicted_over_measured(self) -> float | None:
        predicted = self.predicted_speedup
        return predicted / self.measured_speedup if predicted is not None and self.measured_speedup else None

    def to_json(self) -> dict[str, Any]:
        cost = self.cost
        return {
            "concurrency": self.concurrency,
            "round_cost": cost.cost if cost else None,
            "break_even_tau": cost.cost if cost else None,
            "round_s": cost.round_s if cost else None,
            "plain_step_s": cost.step_s if cost else None,
            "rounds": cost.rounds if cost else None,
            "plain_steps": cost.steps if cost else None,
            "tau": self.tau,
            "predictions": [{"tau": tau, "speedup": speedup} for tau, speedup in self.predictions],
            "predicted_speedup": self.predicted_speedup,
            "measured_speedup": self.measured_speedup,
            "predicted_over_measured": self.predicted_over_measured,
            "unavailable": self.unavailable,
        }


def speed_model(
    concurrency: int,
    eagle3: list[RequestFigures],
    baseline: list[RequestFigures],
    servers: tuple[ServerInfo | None, ServerInfo | None],
    tau: float | None,
    measured_speedup: float | None,
) -> SpeedModel:
    """The model from one level's EAGLE-3 and baseline requests; ``servers`` is (EAGLE-3, baseline)."""
    eagle3_info, baseline_info = servers
    steps = draft_steps(eagle3_info)
    ceiling = steps + 1 if steps is not None else None
    why = _why_not(eagle3, baseline, baseline_info)
    if why is None:
        round_seconds, rounds = timed_rounds(eagle3)
        step_seconds, plain_steps = timed_steps(baseline)
        if rounds < MIN_TIMED:
            why = (f"only {rounds:.0f} EAGLE-3 verify round(s) were timed, and c needs {MIN_TIMED}: "
                   "raise --max-new-tokens or --runs")
        elif plain_steps < MIN_TIMED:
            why = (f"only {plain_steps} plain decode step(s) were timed, and c needs {MIN_TIMED}: "
                   "raise --max-new-tokens or --runs")
        else:
            cost = RoundCost(round_seconds / rounds, step_seconds / plain_steps, rounds, plain_steps)
            return SpeedModel(concurrency, cost, tau, measured_speedup, ceiling)
    return SpeedModel(concurrency, None, tau, measured_speedup, ceiling, why)


def draft_steps(info: ServerInfo | None) -> int | None:
    """The draft steps of a round (``speculative_num_steps``), where the server says a sane number."""
    steps = info.speculative_num_steps if info else None
    return steps if is_count(steps, 1) and steps <= _MOST_STEPS else None


def _why_not(eagle3: list[RequestFigures], baseline: list[RequestFigures],
             baseline_info: ServerInfo | None) -> str | None:
    if not eagle3 and not baseline:
        # Before the first request even the servers may be unread: no baseline is not known yet.
        return "no request finished"
    if baseline_info is None:
        return "c is counted in a plain server's decode steps: run with --baseline-url"
    if baseline_info.speculative:
        return "the baseline runs speculative decoding too, so its tokens are not plain decode steps"
    if not eagle3 or not baseline:
        return f"no {'EAGLE-3' if not eagle3 else 'baseline'} request finished"
    if not any(r.verify_ct for r in eagle3):
        return "the EAGLE-3 server sent no verify count (spec_verify_ct), so its rounds are unknown"
    return None
