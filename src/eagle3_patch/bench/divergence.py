"""Why two greedy outputs part: each server's two leading candidates where they first differ.

A greedy EAGLE-3 server is lossless when its verify step picks the target model's argmax. Its
verify pass runs the target over several tokens at once, so its kernels add in another order
than a plain decode step; where the model's two best tokens are within rounding of each other
(bf16 keeps about three significant digits), the two servers may pick different ones without
anything being wrong. Where the plain server prefers its token by a clear margin, the EAGLE-3
server's output is a real loss.

To tell these apart, each server is asked once more for the same greedy continuation, up to and
including the diverging position, with ``return_logprob`` and ``top_logprobs_num`` (SGLang's
``GenerateReqInput``; 0.5.23's strict schema declares them too): the answer carries, per output
token, its candidates as ``[logprob, token_id, text]`` in ``meta_info.output_top_logprobs``.

The follow-up is a diagnostic extra: a server may refuse it (logprobs disabled, a stricter schema),
time out or answer it badly, and the benchmark's figures stand without it. Such a divergence is
left unexplained with the server's answer as the reason; the run goes on to its report.
"""

from __future__ import annotations

from dataclasses import dataclass

from eagle3_patch.bench.client import SGLangClient
from eagle3_patch.bench.prompts import Prompt
from eagle3_patch.bench.stats import BASELINE, EAGLE3, Comparison
from eagle3_patch.errors import BenchFailed
from eagle3_patch.text.masking import EXCERPT, shown

# bf16 keeps 8 significant bits: a logit between 16 and 32 is stored to the nearest 0.125, one
# between 32 and 64 to 0.25. A verify pass over several tokens and a one-token decode step add
# in different orders, and on SGLang 0.5.12 (H200, benchmarks/gpu/RESULTS.md) that moved the
# two servers' logits apart by up to three such steps (0.375). A margin of at most 0.5 nats on
# both sides is therefore within rounding; a loss by the EAGLE-3 server shows as the plain server
# preferring its own token by more than that.
NEAR_TIE_NATS = 0.5
# Each explained divergence costs one request per server; past this many, the rest are listed
# unexplained rather than doubling a long benchmark's run time.
MAX_EXPLAINED = 20

_LABELS = {EAGLE3: "EAGLE-3", BASELINE: "baseline"}

NEAR_TIE = "near-tie"
REAL = "real"
UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class Candidates:
    """One server's view of the diverging position: what it chose, its two best, their gap."""

    chosen: int
    top: tuple[tuple[int, float], ...]  # (token id, logprob), best first
    reproduced: bool  # the re-run's tokens before the position match what the benchmark saw

    @property
    def gap(self) -> float | None:
        return self.top[0][1] - self.top[1][1] if len(self.top) >= 2 else None

    def logprob_of(self, token: int) -> float | None:
        return next((logprob for tid, logprob in self.top if tid == token), None)


@dataclass(frozen=True)
class Divergence:
    prompt_id: str
    run: int
    position: int
    eagle3_token: int | None
    baseline_token: int | None
    eagle3: Candidates | None
    baseline: Candidates | None
    verdict: str
    reason: str


def classify(eagle3_token: int | None, baseline_token: int | None,
             eagle3: Candidates | None, baseline: Candidates | None) -> tuple[str, str]:
    """``(verdict, reason)``: near-tie, real, or unexplained (with why)."""
    if eagle3_token is None or baseline_token is None:
        return UNEXPLAINED, "one output is a prefix of the other (it ended early), no token to compare"
    if eagle3 is None or baseline is None:
        return UNEXPLAINED, "a server returned no top logprobs for the position"
    if not (eagle3.reproduced and baseline.reproduced):
        return UNEXPLAINED, "a server's re-run did not reproduce its output up to the position"
    margins = []
    for name, side, own, other in (("baseline", baseline, baseline_token, eagle3_token),
                                   ("EAGLE-3", eagle3, eagle3_token, baseline_token)):
        own_lp, other_lp = side.logprob_of(own), side.logprob_of(other)
        if own_lp is None or other_lp is None:
            return REAL, f"the {name} server does not rank both tokens among its two best"
        margins.append((name, own_lp - other_lp))
    worst = max(margin for _, margin in margins)
    detail = ", ".join(f"{name} prefers its own by {margin:.4f}" for name, margin in margins)
    if worst <= NEAR_TIE_NATS:
        return NEAR_TIE, f"{detail} nats: within bf16 rounding ({NEAR_TIE_NATS})"
    return REAL, f"{detail} nats: more than bf16 rounding ({NEAR_TIE_NATS})"


def mismatches_to_explain(comparisons: list[Comparison]) -> list[Comparison]:
    """Single-stream divergences, one per prompt and position (repeated runs diverge alike)."""
    seen, chosen = set(), []
    for comparison in comparisons:
        key = (comparison.prompt_id, comparison.first_divergence)
        if comparison.match or comparison.concurrency != 1 or key in seen:
            continue
        seen.add(key)
        chosen.append(comparison)
    return chosen


async def explain(session, prompts: list[Prompt], clients: dict) -> None:
    """Ask both servers about each divergence of ``session``; appends to ``session.divergences``."""
    if BASELINE not in clients:
        return
    by_id = {prompt.id: prompt for prompt in prompts}
    outputs = {(r.server, r.prompt_id, r.run, r.concurrency): r.output_ids for r in session.requests}
    # After one failed follow-up no other is sent: a server that refused or timed out once would
    # most likely do so again, and each try may cost a whole --timeout.
    failed: str | None = None
    for index, comparison in enumerate(mismatches_to_explain(session.comparisons)):
        position = comparison.first_divergence
        key = (comparison.prompt_id, comparison.run, comparison.concurrency)
        seen = {role: outputs.get((role, *key), ()) for role in (EAGLE3, BASELINE)}
        tokens = {role: ids[position] if position < len(ids) else None for role, ids in seen.items()}
        sides: dict[str, Candidates | None] = {EAGLE3: None, BASELINE: None}
        if index >= MAX_EXPLAINED:
            verdict, reason = UNEXPLAINED, f"only the first {MAX_EXPLAINED} divergences are probed"
        elif None in tokens.values():
            verdict, reason = classify(tokens[EAGLE3], tokens[BASELINE], None, None)
        elif failed:
            verdict, reason = UNEXPLAINED, f"not asked: the {failed} server failed an earlier top-logprobs request"
        else:
            text = by_id[comparison.prompt_id].render()
            try:
                for role in (EAGLE3, BASELINE):
                    sides[role] = await _candidates(clients[role], text, position, session.settings.ignore_eos,
                                                    seen[role])
            except BenchFailed as exc:
                failed, sides = _LABELS[role], {EAGLE3: None, BASELINE: None}
                reason = f"the {failed} server's top-logprobs request failed: {_excerpt(exc)}"
                verdict = UNEXPLAINED
            else:
                verdict, reason = classify(tokens[EAGLE3], tokens[BASELINE], sides[EAGLE3], sides[BASELINE])
        session.divergences.append(Divergence(
            comparison.prompt_id, comparison.run, position, tokens[EAGLE3], tokens[BASELINE],
            sides[EAGLE3], sides[BASELINE], verdict, reason,
        ))


async def _candidates(client: SGLangClient, text: str, position: int, ignore_eos: bool,
                      seen: tuple[int, ...]) -> Candidates | None:
    ids, top = await client.top_candidates(text, position, ignore_eos)
    if not top:
        return None
    return Candidates(
        chosen=ids[position] if position < len(ids) else -1,
        top=tuple(top),
        reproduced=tuple(ids[:position + 1]) == tuple(seen[:position + 1]),
    )


def _excerpt(failure: BenchFailed) -> str:
    """What a failed follow-up said, as a divergence's reason quotes it: its what and why as one
    excerpt (``masking.shown``), with room for the excerpt of the server's own words in them."""
    return shown(f"{failure.what} {failure.why}", limit=3 * EXCERPT)
