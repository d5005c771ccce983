"""Figures of one load level: N requests kept in flight against one server.

Pure: recorded chunk times in, throughput, percentiles, tau, acceptance and the crossover out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eagle3_patch.bench.acceptance import Acceptance, pool
from eagle3_patch.bench.stream import Chunk
from eagle3_patch.bench.stats import RequestFigures


@dataclass(frozen=True)
class Timeline:
    """When one request was sent and when each of its chunks arrived."""

    sent_at: float
    chunks: tuple[Chunk, ...]


@dataclass(frozen=True)
class LevelRun:
    """Everything one server did at one level: its requests and when its workers ran dry.

    ``drained_at`` is the first moment a worker found no more work; None if the run was cut off.
    """

    concurrency: int
    server: str
    requests: tuple[RequestFigures, ...]
    timelines: tuple[Timeline, ...]
    drained_at: float | None


def in_flight_window(run: LevelRun) -> tuple[float, float] | None:
    """From the moment the N-th request started until the first worker ran out of work.

    Before it the workers are still ramping up; after it the last wave is half empty. Either
    would bias throughput low, so only this window counts.
    """
    starts = sorted(t.sent_at for t in run.timelines)
    if len(starts) < run.concurrency or run.drained_at is None:
        return None
    start = starts[run.concurrency - 1]
    return (start, run.drained_at) if run.drained_at > start else None


def throughput(run: LevelRun) -> float | None:
    """Tokens received inside the all-in-flight window / the window's length, in tok/s."""
    window = in_flight_window(run)
    if window is None:
        return None
    start, end = window
    tokens = 0
    for timeline in run.timelines:
        before = 0
        for chunk in timeline.chunks:
            if start < chunk.at <= end:
                tokens += chunk.completion_tokens - before
            before = chunk.completion_tokens
    return tokens / (end - start)


def percentile(values: Sequence[float], p: int) -> float:
    """The p-th percentile by ``statistics.quantiles(method="inclusive")``: interpolated
    between the sorted values, never outside their range."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@dataclass(frozen=True)
class ServerLoad:
    """One server at one level, as the JSON contract names it."""

    throughput_tok_s: float | None
    decode_tok_s: dict[str, float] | None  # median, p10: the slow tail
    ttft_s: dict[str, float] | None  # median, p99
    tau: float | None
    acceptance: Acceptance | None
    requests: int

    def to_json(self) -> dict[str, Any]:
        return {
            "throughput_tok_s": self.throughput_tok_s,
            "decode_tok_s": self.decode_tok_s,
            "ttft_s": self.ttft_s,
            "tau": self.tau,
            "acceptance": self.acceptance.to_json() if self.acceptance else None,
            "requests": self.requests,
        }


def server_load(run: LevelRun) -> ServerLoad:
    rates = [r.decode_tok_s for r in run.requests if r.decode_tok_s is not None]
    ttfts = [r.ttft_s for r in run.requests if r.ttft_s is not None]
    counted = [r for r in run.requests if r.verify_ct]
    return ServerLoad(
        throughput_tok_s=throughput(run),
        decode_tok_s={"median": statistics.median(rates), "p10": percentile(rates, 10)} if rates else None,
        ttft_s={"median": statistics.median(ttfts), "p99": percentile(ttfts, 99)} if ttfts else None,
        tau=sum(r.output_tokens for r in counted) / sum(r.verify_ct for r in counted) if counted else None,
        acceptance=pool(r.acceptance for r in run.requests),
        requests=len(run.requests),
    )


@dataclass(frozen=True)
class Level:
    """One concurrency level, both servers. ``match_rate`` above concurrency 1 is information
    only: batched kernels may legitimately change late tokens."""

    concurrency: int
    eagle3: ServerLoad | None
    baseline: ServerLoad | None
    match_rate: float | None
    compared: int

    @property
    def speedup(self) -> float | None:
        if self.eagle3 is None or self.baseline is None:
            return None
        mine, theirs = self.eagle3.throughput_tok_s, self.baseline.throughput_tok_s
        return mine / theirs if mine is not None and theirs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "eagle3": self.eagle3.to_json() if self.eagle3 else None,
            "baseline": self.baseline.to_json() if self.baseline else None,
            "speedup": self.speedup,
            "match_rate": self.match_rate,
            "compared": self.compared,
        }


@dataclass(frozen=True)
class Crossover:
    """``last_win``: the highest level such that every level up to it is faster with EAGLE-3;
    ``first_loss``: the level right after it. Both None without a baseline."""

    last_win: int | None
    first_loss: int | None

    def to_json(self) -> dict[str, int | None]:
        return {"last_win": self.last_win, "first_loss": self.first_loss}


def crossover(levels: Sequence[Level]) -> Crossover:
    """Levels in ascending concurrency; a level wins when its speedup is above 1.

    A level without a speedup (no baseline, or a window too short to measure) ends the
    streak like a loss would not: it is unknown, so the crossover stops before it.
    """
    last_win = first_loss = None
    for level in levels:
        speedup = level.speedup
        if speedup is None:
            break
        if speedup <= 1:
            first_loss = level.concurrency
            break
        last_win = level.concurrency
    return Crossover(last_win, first_loss)
