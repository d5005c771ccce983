"""Pure figure computation: recorded chunk timestamps in, tok/s, tau, speedup and match rate out.

No I/O and no clock here, so tests feed exact scripted timestamps and assert exact values.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from eagle3_patch.bench.acceptance import Acceptance, read_acceptance
from eagle3_patch.bench.stream import Recording

EAGLE3, BASELINE = "eagle3", "baseline"


@dataclass(frozen=True)
class RequestFigures:
    """One measured request. ``decode_tok_s`` excludes time to first token."""

    server: str
    prompt_id: str
    bucket: str
    run: int
    output_tokens: int
    ttft_s: float | None
    decode_s: float | None
    decode_tok_s: float | None
    verify_ct: int | None
    tau: float | None
    finish_reason: str | None
    output_ids: tuple[int, ...]
    acceptance: Acceptance | None = None
    concurrency: int = 1


def request_figures(
    recording: Recording, server: str, prompt_id: str, bucket: str, run: int, concurrency: int = 1
) -> RequestFigures:
    """Figures for one request from its chunk arrival times.

    TTFT runs from sending to the first chunk that carried a token. Decode time runs
    from that chunk to the chunk that brought the final count (a trailing chunk adding
    no tokens would otherwise dilute the rate), and decode tok/s counts only the tokens
    that arrived after the first chunk, the same split SGLang's bench_serving uses.
    """
    meta = recording.meta_info
    total = int(meta.get("completion_tokens", len(recording.output_ids)))
    with_tokens = [c for c in recording.chunks if c.completion_tokens > 0]
    ttft = decode_s = rate = None
    if with_tokens:
        first = with_tokens[0]
        last = next((c for c in with_tokens if c.completion_tokens >= total), with_tokens[-1])
        ttft = first.at - recording.sent_at
        if last.at > first.at:
            decode_s = last.at - first.at
            rate = (total - first.completion_tokens) / decode_s
    verify_ct = meta.get("spec_verify_ct")
    # tau from the raw counters rather than spec_accept_length: same definition
    # (completion_tokens / verify passes), but exact and poolable across requests.
    tau = total / verify_ct if verify_ct else None
    reason = meta.get("finish_reason")
    return RequestFigures(
        server=server,
        prompt_id=prompt_id,
        bucket=bucket,
        run=run,
        output_tokens=total,
        ttft_s=ttft,
        decode_s=decode_s,
        decode_tok_s=rate,
        verify_ct=int(verify_ct) if verify_ct else None,
        tau=tau,
        finish_reason=reason.get("type") if isinstance(reason, dict) else reason,
        output_ids=tuple(recording.output_ids),
        acceptance=read_acceptance(meta),
        concurrency=concurrency,
    )


@dataclass(frozen=True)
class Comparison:
    """Greedy outputs of the same prompt and run on both servers."""

    prompt_id: str
    bucket: str
    run: int
    match: bool
    first_divergence: int | None
    eagle3_tokens: int
    baseline_tokens: int
    concurrency: int = 1


def first_divergence(a: tuple[int, ...], b: tuple[int, ...]) -> int | None:
    """Index of the first differing token; a strict prefix diverges where it ends."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def compare(eagle3: RequestFigures, baseline: RequestFigures) -> Comparison:
    position = first_divergence(eagle3.output_ids, baseline.output_ids)
    return Comparison(
        prompt_id=eagle3.prompt_id,
        bucket=eagle3.bucket,
        run=eagle3.run,
        match=position is None,
        first_divergence=position,
        eagle3_tokens=len(eagle3.output_ids),
        baseline_tokens=len(baseline.output_ids),
        concurrency=eagle3.concurrency,
    )


@dataclass(frozen=True)
class Spread:
    """Median with the full range: a benchmark is never one number."""

    median: float
    low: float
    high: float
    n: int


def spread(values: Iterable[float | None]) -> Spread | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return Spread(statistics.median(present), min(present), max(present), len(present))


@dataclass(frozen=True)
class ServerFigures:
    decode_tok_s: Spread | None
    ttft_s: Spread | None
    tau: float | None
    requests: int


def server_figures(requests: list[RequestFigures]) -> ServerFigures | None:
    if not requests:
        return None
    counted = [r for r in requests if r.verify_ct]
    # Pooled, like the drafter card's tau: all accepted tokens over all verify passes.
    tau = sum(r.output_tokens for r in counted) / sum(r.verify_ct for r in counted) if counted else None
    return ServerFigures(
        decode_tok_s=spread(r.decode_tok_s for r in requests),
        ttft_s=spread(r.ttft_s for r in requests),
        tau=tau,
        requests=len(requests),
    )


@dataclass(frozen=True)
class GroupFigures:
    """One row of the report: a bucket, a prompt, or everything."""

    name: str
    eagle3: ServerFigures | None
    baseline: ServerFigures | None
    speedup: float | None
    match_rate: float | None
    compared: int
    mismatches: int


def group_figures(name: str, requests: list[RequestFigures], comparisons: list[Comparison]) -> GroupFigures:
    eagle3 = server_figures([r for r in requests if r.server == EAGLE3])
    baseline = server_figures([r for r in requests if r.server == BASELINE])
    speedup = None
    if eagle3 and baseline and eagle3.decode_tok_s and baseline.decode_tok_s and baseline.decode_tok_s.median:
        speedup = eagle3.decode_tok_s.median / baseline.decode_tok_s.median
    matches = sum(c.match for c in comparisons)
    return GroupFigures(
        name=name,
        eagle3=eagle3,
        baseline=baseline,
        speedup=speedup,
        match_rate=matches / len(comparisons) if comparisons else None,
        compared=len(comparisons),
        mismatches=len(comparisons) - matches,
    )


@dataclass(frozen=True)
class Summary:
    buckets: list[GroupFigures]
    prompts: list[GroupFigures]
    overall: GroupFigures


def summarise(requests: list[RequestFigures], comparisons: list[Comparison]) -> Summary:
    """Per bucket, per prompt and overall, in the order prompts were first measured."""

    def by(key: str) -> list[GroupFigures]:
        names = list(dict.fromkeys(getattr(r, key) for r in requests))
        return [
            group_figures(
                name,
                [r for r in requests if getattr(r, key) == name],
                [c for c in comparisons if getattr(c, key) == name],
            )
            for name in names
        ]

    return Summary(by("bucket"), by("prompt_id"), group_figures("overall", requests, comparisons))
