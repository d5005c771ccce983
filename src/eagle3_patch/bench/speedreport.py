"""Rendering the speed model: which requests feed it, its ``--json`` part and its text table."""

from __future__ import annotations

from typing import Any

import click

from eagle3_patch.bench.serverjson import is_count
from eagle3_patch.bench.load import Level
from eagle3_patch.bench.loadreport import levels_of
from eagle3_patch.bench.runner import BenchSession
from eagle3_patch.bench.speedmodel import ASSUMPTION, SpeedModel, draft_steps, speed_model
from eagle3_patch.bench.stats import BASELINE, EAGLE3, Summary


def speed_models(session: BenchSession, summary: Summary) -> tuple[SpeedModel | None, list[SpeedModel]]:
    """The single-stream model (None under load) and one per finished load level, each beside the
    tau bench reports for the same requests and the measured decode speedup: the ratio of median
    per-request decode rates, what the model predicts (a level's throughput ratio also pays for
    prefill)."""
    servers = (session.servers.get(EAGLE3), session.servers.get(BASELINE))
    if not session.settings.under_load:
        overall = summary.overall
        model = speed_model(1, _of(session, EAGLE3), _of(session, BASELINE), servers,
                            overall.eagle3.tau if overall.eagle3 else None, overall.speedup)
        return model, []
    return None, [
        speed_model(level.concurrency, _of(session, EAGLE3, level.concurrency),
                    _of(session, BASELINE, level.concurrency), servers,
                    level.eagle3.tau if level.eagle3 else None, _decode_speedup(level))
        for level in levels_of(session)
    ]


def _decode_speedup(level: Level) -> float | None:
    if level.eagle3 is None or level.baseline is None or not level.eagle3.decode_tok_s:
        return None
    theirs = level.baseline.decode_tok_s
    return level.eagle3.decode_tok_s["median"] / theirs["median"] if theirs and theirs["median"] else None


def _of(session: BenchSession, server: str, concurrency: int | None = None) -> list:
    return [r for r in session.requests
            if r.server == server and (concurrency is None or r.concurrency == concurrency)]


def speed_model_json(session: BenchSession, summary: Summary) -> dict[str, Any]:
    single, levels = speed_models(session, summary)
    return {
        "assumption": ASSUMPTION,
        "caveat": _caveat(session),
        "single_stream": single.to_json() if single else None,
        "levels": [model.to_json() for model in levels],
    }


def render_speed_model(session: BenchSession, summary: Summary, color: bool) -> list[str]:
    """The header, one row per level (or the one single-stream row), the legend and the assumption;
    one line when no level has a model for the same reason."""
    single, levels = speed_models(session, summary)
    models = [single] if single else levels
    if not models:
        return ["Speed model: not given: no level finished."]
    given = [model for model in models if model.cost]
    if not given:
        reasons = list(dict.fromkeys(model.unavailable for model in models))
        if len(reasons) == 1:
            return [f"Speed model: not given: {reasons[0]}."]
        return ["Speed model:", *(_model_row(model, []) for model in models)]
    steps = draft_steps(session.servers.get(EAGLE3))
    drafting = f"{steps} draft steps" if steps is not None else "the draft steps"
    taus = [tau for tau, _ in given[0].predictions]
    lines = [
        _bold(f"Speed model: one EAGLE-3 round ({drafting} + verify) costs c plain decode steps, so EAGLE-3 "
              "pays when tau > c and decodes tau / c times as fast.", color),
        _bold(_row("conc", "round ms", "step ms", "rounds", "c", [f"tau {t:.1f}" for t in taus],
                   "tau", "predicted", "measured", "ratio"), color),
        *(_model_row(model, taus) for model in models),
    ]
    ceiling = f" (tau {taus[-1]:.1f}: every draft accepted)" if given[0].ceiling else ""
    measured = "ratio of median decode rates" + ("" if single else " (the load table's speedup is throughput, "
                                                  "which pays for prefill too)")
    lines += [
        "round/step ms: EAGLE-3 time per verify round and plain time per decode step, in the decode windows "
        "(time to first token excluded); c: their ratio, the break-even tau.",
        f"tau {taus[0]:.1f} ...: the speedup predicted at that accept length{ceiling}; tau: measured; "
        "predicted = tau / c; "
        f"measured: {measured}; ratio = predicted / measured.",
        f"Assumed: {ASSUMPTION}; so c from one run predicts another run's speedup on the same servers, drafting "
        "config and level as its tau / c.",
    ]
    caveat = _caveat(session)
    if caveat:
        lines.append(f"Caveat: {caveat}.")
    return lines


def _model_row(model: SpeedModel, taus: list[float]) -> str:
    def num(value: float | None, spec: str, suffix: str = "") -> str:
        return format(value, spec) + suffix if value is not None else "-"

    cost = model.cost
    if cost is None:
        return f"{model.concurrency:>4}  not given: {model.unavailable}."
    predicted = [num(model.speedup_at(tau), ".2f", "x") for tau in taus]
    return _row(str(model.concurrency), num(cost.round_s * 1000, ".3f"), num(cost.step_s * 1000, ".3f"),
                f"{cost.rounds:.0f}", f"{cost.cost:.2f}", predicted, num(model.tau, ".2f"),
                num(model.predicted_speedup, ".2f", "x"), num(model.measured_speedup, ".2f", "x"),
                num(model.predicted_over_measured, ".2f"))


def _row(conc: str, round_ms: str, step_ms: str, rounds: str, cost: str, predicted: list[str], tau: str,
         predicted_at_tau: str, measured: str, ratio: str) -> str:
    cells = "".join(f"{cell:>9}" for cell in predicted)
    return (f"{conc:>4} {round_ms:>9} {step_ms:>9} {rounds:>7} {cost:>6}{cells} {tau:>6} {predicted_at_tau:>10} "
            f"{measured:>9} {ratio:>6}")


def _caveat(session: BenchSession) -> str | None:
    """A server that drafts a tree: the assumption is stated for chains."""
    info = session.servers.get(EAGLE3)
    topk = info.speculative_eagle_topk if info else None
    if is_count(topk, 2):
        return "the EAGLE-3 server drafts a tree (topk above 1), not a chain, where the assumption is untested"
    return None


def _bold(text: str, color: bool) -> str:
    return click.style(text, bold=True) if color else text
