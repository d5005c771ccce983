"""Rendering the load levels: their JSON, the text table with the crossover, and the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from eagle3_patch.bench.load import Crossover, Level, ServerLoad, crossover, server_load
from eagle3_patch.bench.plotting import FOREIGN_TEXT, save_figure
from eagle3_patch.bench.runner import BenchSession
from eagle3_patch.bench.stats import BASELINE, EAGLE3
from eagle3_patch.text.masking import shown

_LABELS = {EAGLE3: "EAGLE-3", BASELINE: "baseline"}


def levels_of(session: BenchSession) -> list[Level]:
    """Every level both servers finished (or the one server, without a baseline), ascending."""
    levels = []
    for n in session.settings.concurrency:
        runs = {run.server: run for run in session.level_runs if run.concurrency == n}
        if EAGLE3 not in runs or (BASELINE in session.servers and BASELINE not in runs):
            break  # cut off: a level with one server only would show a speedup of nothing
        compared = [c for c in session.comparisons if c.concurrency == n]
        levels.append(Level(
            concurrency=n,
            eagle3=server_load(runs[EAGLE3]),
            baseline=server_load(runs[BASELINE]) if BASELINE in runs else None,
            match_rate=sum(c.match for c in compared) / len(compared) if compared else None,
            compared=len(compared),
        ))
    return levels


def load_json(session: BenchSession) -> dict[str, Any]:
    levels = levels_of(session)
    return {"levels": [level.to_json() for level in levels], "crossover": crossover(levels).to_json()}


def render_load(session: BenchSession, color: bool) -> list[str]:
    """The per-level table, the acceptance histograms and the crossover sentence."""
    settings = session.settings
    levels = levels_of(session)
    amount = (f"for {settings.duration_s:g} s" if settings.duration_s is not None
              else f"max(4N, {settings.runs} x prompts) requests")
    lines = [
        _bold(f"Under load: N workers per server, each sending its next request when its last finished, "
              f"{amount} per level; servers one after the other.", color),
        _bold(_row("conc", "server", "reqs", "tok/s", "dec med", "dec p10", "ttft med", "ttft p99",
                   "tau", "accept", "speedup", "match"), color),
    ]
    for level in levels:
        for role in (BASELINE, EAGLE3):
            load = getattr(level, role)
            if load is not None:
                lines.append(_load_row(level, role, load, color))
    lines += [
        "tok/s: throughput, tokens received while all N requests were in flight / that window; dec: "
        "per-request decode tok/s (p10 = slow tail); ttft in s; speedup: throughput ratio; "
        "match above 1 is information only (batched kernels may change late tokens).",
    ]
    for level in levels:
        acceptance = level.eagle3.acceptance if level.eagle3 else None
        if acceptance is not None and acceptance.histogram:
            passes = sum(acceptance.histogram)
            shares = "  ".join(f"{k}:{count / passes:.0%}" for k, count in enumerate(acceptance.histogram))
            lines.append(f"  drafts accepted per verify pass at {level.concurrency}: {shares}")
    lines += ["", describe_crossover(crossover(levels), levels, BASELINE in session.servers)]
    return lines


def describe_crossover(result: Crossover, levels: list[Level], with_baseline: bool) -> str:
    if not with_baseline:
        return "Crossover: needs --baseline-url."
    if not levels:
        return "Crossover: no level finished."
    if result.last_win is None and result.first_loss is not None:
        return f"Crossover: EAGLE-3 is not faster even at {result.first_loss} concurrent request(s)."
    if result.last_win is None and result.first_loss is None:
        return f"Crossover: unknown: the level at {levels[0].concurrency} has no throughput figure."
    if result.first_loss is None and result.last_win == levels[-1].concurrency:
        return f"Crossover: EAGLE-3 is faster at every level measured, up to {result.last_win}."
    if result.first_loss is None:
        return f"Crossover: EAGLE-3 is faster up to {result.last_win}; the next level has no throughput figure."
    return (f"Crossover: EAGLE-3 is faster up to {result.last_win} concurrent requests "
            f"and slower from {result.first_loss}.")


def write_load_plot(session: BenchSession, path: Path, pyplot: Any) -> None:
    """Throughput and per-request decode tok/s against concurrency, both servers, the
    crossover marked between the last winning and the first losing level."""
    levels = levels_of(session)
    result = crossover(levels)
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    for role, colour in ((BASELINE, "#9e9e9e"), (EAGLE3, "#1f6fb4")):
        points = [(level.concurrency, getattr(level, role)) for level in levels if getattr(level, role)]
        if not points:
            continue
        xs = [n for n, _ in points]
        left.plot(xs, [load.throughput_tok_s or 0.0 for _, load in points], "o-", color=colour, label=_LABELS[role])
        right.plot(xs, [load.decode_tok_s["median"] if load.decode_tok_s else 0.0 for _, load in points],
                   "o-", color=colour, label=f"{_LABELS[role]} median")
        right.plot(xs, [load.decode_tok_s["p10"] if load.decode_tok_s else 0.0 for _, load in points],
                   "o--", color=colour, alpha=0.6, label=f"{_LABELS[role]} p10")
    for axes, label in ((left, "throughput tok/s (all N in flight)"), (right, "per-request decode tok/s")):
        axes.set_xscale("log", base=2)
        axes.set_xticks([level.concurrency for level in levels], [str(level.concurrency) for level in levels])
        axes.set_xlabel("concurrent requests")
        axes.set_ylabel(label)
        if result.last_win is not None and result.first_loss is not None:
            axes.axvspan(result.last_win, result.first_loss, color="#f4b400", alpha=0.2, label="crossover")
        axes.legend(fontsize=8)
    info = session.servers.get(EAGLE3)
    title = f"{shown(info.model_path)} · SGLang {shown(info.version)}" if info else "eagle3-patch bench"
    sentence = describe_crossover(result, levels, BASELINE in session.servers)
    figure.suptitle(f"{title}\n{sentence}", fontsize=10, **FOREIGN_TEXT)
    figure.tight_layout()
    save_figure(figure, path)


def _load_row(level: Level, role: str, load: ServerLoad, color: bool) -> str:
    def num(value: float | None, spec: str) -> str:
        return format(value, spec) if value is not None else "-"

    decode, ttft = load.decode_tok_s or {}, load.ttft_s or {}
    speedup = match = ""
    if role == EAGLE3:
        speedup = f"{level.speedup:.2f}x" if level.speedup is not None else "-"
        if color and level.speedup is not None:
            speedup = click.style(f"{speedup:>7}", fg="green" if level.speedup > 1 else "yellow")
        if level.match_rate is not None:
            match = f"{level.match_rate:.0%} of {level.compared}"
    accept = load.acceptance.rate if load.acceptance else None
    return _row(str(level.concurrency) if role == BASELINE or level.baseline is None else "", _LABELS[role],
                str(load.requests), num(load.throughput_tok_s, ".1f"), num(decode.get("median"), ".1f"),
                num(decode.get("p10"), ".1f"), num(ttft.get("median"), ".3f"), num(ttft.get("p99"), ".3f"),
                num(load.tau, ".2f"), num(accept, ".0%"), speedup, match)


def _row(*cells: str) -> str:
    conc, server, reqs, tps, med, p10, ttft, p99, tau, accept, speedup, match = cells
    return (f"{conc:>4}  {server:<8} {reqs:>5} {tps:>9} {med:>8} {p10:>8} {ttft:>8} {p99:>8} "
            f"{tau:>5} {accept:>6} {speedup:>7}  {match}").rstrip()


def _bold(text: str, color: bool) -> str:
    return click.style(text, bold=True) if color else text
