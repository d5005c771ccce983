"""Figure computation from recorded chunk times: exact values from exact scripted timestamps."""

from __future__ import annotations

from eagle3_patch.bench.stream import Chunk, Recording
from eagle3_patch.bench.stats import (
    BASELINE,
    EAGLE3,
    compare,
    first_divergence,
    request_figures,
    summarise,
)


def recording(sent_at: float, chunks: list[tuple[float, int]], verify_ct: int | None = None,
              ids: list[int] | None = None) -> Recording:
    total = chunks[-1][1]
    meta = {"completion_tokens": total, "finish_reason": {"type": "length", "length": total}}
    if verify_ct is not None:
        meta["spec_verify_ct"] = verify_ct
    return Recording(sent_at, [Chunk(at, n) for at, n in chunks], ids if ids is not None else list(range(total)), meta)


def figures(server: str, rate_step: float, run: int = 1, prompt: str = "p", bucket: str = "chat",
            verify_ct: int | None = None, ids: list[int] | None = None):
    # 1 prefill token at t=0.5, then 8 tokens in 4 chunks rate_step apart: 8 / (4 * step) tok/s.
    chunks = [(0.5, 1)] + [(0.5 + rate_step * k, 1 + 2 * k) for k in range(1, 5)]
    return request_figures(recording(0.0, chunks, verify_ct, ids), server, prompt, bucket, run)


def test_decode_rate_excludes_time_to_first_token():
    f = request_figures(recording(10.0, [(10.25, 1), (10.5, 4), (10.75, 7), (11.0, 9)]), EAGLE3, "p", "chat", 1)
    assert f.ttft_s == 0.25
    assert f.decode_s == 0.75
    assert f.decode_tok_s == 8 / 0.75
    assert f.output_tokens == 9


def test_trailing_chunk_without_new_tokens_does_not_dilute_decode_rate():
    f = request_figures(recording(0.0, [(0.125, 1), (0.25, 5), (0.375, 9), (4.0, 9)]), EAGLE3, "p", "chat", 1)
    assert f.decode_s == 0.25
    assert f.decode_tok_s == 32.0


def test_single_chunk_has_no_decode_rate():
    f = request_figures(recording(0.0, [(0.5, 1)]), BASELINE, "p", "chat", 1)
    assert f.ttft_s == 0.5
    assert f.decode_tok_s is None


def test_tau_is_completion_tokens_over_verify_passes():
    f = request_figures(recording(0.0, [(0.5, 1), (0.75, 4), (1.0, 7), (1.25, 9)], verify_ct=3), EAGLE3, "p", "chat", 1)
    assert f.tau == 3.0
    assert f.verify_ct == 3


def test_tau_is_not_reported_without_speculative_counters():
    f = request_figures(recording(0.0, [(0.5, 1), (0.75, 2)]), BASELINE, "p", "chat", 1)
    assert f.tau is None


def test_first_divergence_is_the_first_differing_position():
    assert first_divergence((1, 2, 3, 4), (1, 2, 9, 4)) == 2
    assert first_divergence((1, 2, 3), (1, 2, 3)) is None


def test_a_shorter_output_diverges_where_it_ends():
    assert first_divergence((1, 2), (1, 2, 3)) == 2


def test_comparison_matches_only_identical_token_sequences():
    same = compare(figures(EAGLE3, 0.25, ids=[1, 2, 3]), figures(BASELINE, 0.5, ids=[1, 2, 3]))
    differ = compare(figures(EAGLE3, 0.25, ids=[1, 2, 3]), figures(BASELINE, 0.5, ids=[1, 5, 3]))
    assert (same.match, same.first_divergence) == (True, None)
    assert (differ.match, differ.first_divergence) == (False, 1)


def test_speedup_is_ratio_of_median_decode_rates():
    # EAGLE-3 runs: 8/(4*s) for s in (1/16, 1/8, 1/32) -> 32, 16, 64; median 32.
    # Baseline runs: s in (1/4, 1/8, 1/2) -> 8, 16, 4; median 8.
    requests = [figures(EAGLE3, s, run=r) for r, s in enumerate((1 / 16, 1 / 8, 1 / 32), 1)]
    requests += [figures(BASELINE, s, run=r) for r, s in enumerate((1 / 4, 1 / 8, 1 / 2), 1)]
    overall = summarise(requests, []).overall
    assert overall.eagle3.decode_tok_s.median == 32.0
    assert (overall.eagle3.decode_tok_s.low, overall.eagle3.decode_tok_s.high) == (16.0, 64.0)
    assert overall.baseline.decode_tok_s.median == 8.0
    assert overall.speedup == 4.0


def test_bucket_tau_pools_tokens_over_verify_passes():
    # 9 tokens / 3 passes and 9 tokens / 6 passes pool to 18 / 9 = 2.0 (not the mean 2.25).
    requests = [figures(EAGLE3, 0.25, run=1, verify_ct=3), figures(EAGLE3, 0.25, run=2, verify_ct=6)]
    assert summarise(requests, []).buckets[0].eagle3.tau == 2.0


def test_match_rate_is_share_of_identical_pairs_per_bucket():
    pairs = []
    for run, diverging in ((1, False), (2, True), (3, False), (4, False)):
        ids = [1, 2, 3, 4]
        other = [1, 2, 3, 7] if diverging else ids
        pairs.append((figures(EAGLE3, 0.25, run=run, ids=ids), figures(BASELINE, 0.5, run=run, ids=other)))
    requests = [f for pair in pairs for f in pair]
    comparisons = [compare(a, b) for a, b in pairs]
    bucket = summarise(requests, comparisons).buckets[0]
    assert bucket.match_rate == 0.75
    assert (bucket.compared, bucket.mismatches) == (4, 1)


def test_summary_groups_by_bucket_and_prompt_in_measured_order():
    requests = [
        figures(EAGLE3, 0.25, prompt="c1", bucket="coding"),
        figures(EAGLE3, 0.25, prompt="a1", bucket="agentic"),
        figures(EAGLE3, 0.25, prompt="c2", bucket="coding"),
    ]
    summary = summarise(requests, [])
    assert [g.name for g in summary.buckets] == ["coding", "agentic"]
    assert [g.name for g in summary.prompts] == ["c1", "a1", "c2"]
    assert summary.overall.baseline is None and summary.overall.speedup is None
    assert summary.overall.match_rate is None
