"""Rendering a benchmark: the human table, the ``--json`` document and the ``--plot`` chart."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from eagle3_patch.bench.divergence import Candidates, Divergence
from eagle3_patch.bench.loadreport import load_json, render_load, write_load_plot
from eagle3_patch.bench.plotting import FOREIGN_TEXT, check_plot_format, import_pyplot, save_figure
from eagle3_patch.bench.runner import BenchSession
from eagle3_patch.bench.speedreport import render_speed_model, speed_model_json
from eagle3_patch.bench.stats import (
    BASELINE,
    EAGLE3,
    GroupFigures,
    ServerFigures,
    Spread,
    Summary,
    summarise,
)
from eagle3_patch.errors import BadInput
from eagle3_patch.text.masking import printable, shown

# 2: "levels" and "crossover" (issue 8); every key of 1 is still there.
# 3: a failed run's "error" is the CLI's error object {"what", "why", "fix"} beside "exit_code",
# no longer one string (issue 17).
# 4: "speed_model" (issue 22); every key of 3 is still there.
JSON_SCHEMA_VERSION = 4
_LABELS = {EAGLE3: "EAGLE-3", BASELINE: "baseline"}


def to_json(session: BenchSession, summary: Summary, partial: bool = False) -> dict[str, Any]:
    """Every per-request figure plus the summaries; ``partial`` marks an interrupted run.

    ``error`` stays null here: a failed run's error object is set beside these keys by the
    CLI's one error path (``errorreport``).
    """
    requests = []
    for figures in session.requests:
        row = asdict(figures)
        del row["output_ids"]  # token ids are compared, not reported; positions say where
        row["acceptance"] = figures.acceptance.to_json() if figures.acceptance else None
        requests.append(row)
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "partial": partial,
        "error": None,
        "settings": {**asdict(session.settings), "temperature": 0.0},
        "servers": {role: info.to_json() for role, info in session.servers.items()},
        "notes": session.notes,
        "summary": {
            "overall": asdict(summary.overall),
            "buckets": [asdict(g) for g in summary.buckets],
            "prompts": [asdict(g) for g in summary.prompts],
        },
        "requests": requests,
        "comparisons": [asdict(c) for c in session.comparisons],
        "divergences": [asdict(d) for d in session.divergences],
        **load_json(session),
        "speed_model": speed_model_json(session, summary),
    }


def summary_of(session: BenchSession) -> Summary:
    """Today's per-bucket and per-prompt figures; under load, those of the lowest level, where
    requests do not share the server with each other as much."""
    requests, comparisons = session.requests, session.comparisons
    if session.settings.under_load:
        lowest = session.settings.concurrency[0]
        requests = [r for r in requests if r.concurrency == lowest]
        comparisons = [c for c in comparisons if c.concurrency == lowest]
    return summarise(requests, comparisons)


def render_text(session: BenchSession, summary: Summary, color: bool, partial: str | None = None) -> str:
    """The readable report: configuration, per-bucket table, per-prompt speedups, mismatches.

    ``partial`` says why the run stopped early; the report then opens with that warning.
    """

    def bold(text: str) -> str:
        return click.style(text, bold=True) if color else text

    settings = session.settings
    lines = []
    if partial:
        lines.append(_warn(f"PARTIAL: {partial} Figures of the {len(session.requests)} measured "
                           "request(s) that finished:", color))
    lines += [
        bold("eagle3-patch bench")
        + f"  greedy, max_new_tokens={settings.max_new_tokens}, {settings.runs} run(s) after "
        f"{settings.warmup} warm-up request(s) per server"
        + (" and a wave of N before each level of N > 1" if settings.warmup and settings.under_load else "")
        + f", prompts: {printable(settings.prompt_source)}",
    ]
    for role, info in session.servers.items():
        lines.append(f"  {_LABELS[role]:<9} {info.describe()}")
    if settings.under_load:
        lines.append(f"Per bucket and prompt: the requests at concurrency {settings.concurrency[0]}.")
    lines += ["", bold(_row("bucket", "reqs", "baseline tok/s", "EAGLE-3 tok/s", "speedup", "tau", "match"))]
    for group in [*summary.buckets, summary.overall]:
        lines.append(_group_row(group, color))
    lines += ["", bold(_row("prompt", "runs", "baseline tok/s", "EAGLE-3 tok/s", "speedup", "tau", "match"))]
    lines += [_group_row(group, color) for group in summary.prompts]
    lines += [
        "",
        "tok/s: decode rate excluding time to first token, median (min-max) over requests; "
        "speedup: ratio of medians; tau: completion tokens / verify passes.",
    ]
    # Token-exact comparison is the losslessness check at concurrency 1 only; above it, batched
    # kernels may legitimately change late tokens (the load table shows that match rate).
    mismatched = [c for c in session.comparisons if not c.match and c.concurrency == 1]
    if mismatched:
        heading = "Greedy outputs that differ (late divergences are expected from batched-verify floating point):"
        lines += ["", _warn(heading, color)]
        for c in mismatched:
            lines.append(
                f"  {shown(c.prompt_id)} run {c.run}: first divergence at token {c.first_divergence} "
                f"(EAGLE-3 {c.eagle3_tokens} tokens, baseline {c.baseline_tokens})"
            )
    if session.divergences:
        lines += ["", bold("Where the outputs part (each server's two best candidates, logprob gap):")]
        lines += [_divergence_row(d) for d in session.divergences]
    if settings.under_load:
        lines += ["", *render_load(session, color)]
    lines += ["", *render_speed_model(session, summary, color)]
    for note in session.notes:
        lines.append(_warn(f"Note: {note}", color))
    return "\n".join(lines)


def write_plot(summary: Summary, session: BenchSession, path: Path) -> None:
    """A bar chart of decode tok/s per bucket, baseline vs EAGLE-3, tau over each bar; under
    load, throughput and per-request tok/s against concurrency instead."""
    pyplot = import_pyplot()
    if session.settings.under_load:
        write_load_plot(session, path, pyplot)
        return
    groups = [*summary.buckets, summary.overall]
    positions = list(range(len(groups)))
    width = 0.38
    figure, axes = pyplot.subplots(figsize=(max(6.0, 1.6 * len(groups) + 2), 4.5), dpi=120)
    for offset, role, colour in ((-width / 2, BASELINE, "#9e9e9e"), (width / 2, EAGLE3, "#1f6fb4")):
        rates = [_rate(getattr(g, role)) for g in groups]
        if not any(rates):
            continue
        medians = [r.median if r else 0.0 for r in rates]
        errors = [[r.median - r.low if r else 0.0 for r in rates], [r.high - r.median if r else 0.0 for r in rates]]
        bars = axes.bar([p + offset for p in positions], medians, width, yerr=errors, capsize=3,
                        color=colour, label=_LABELS[role])
        if role == EAGLE3:
            for bar, group, rate in zip(bars, groups, rates, strict=True):
                tau = group.eagle3.tau if group.eagle3 else None
                text = f"τ {tau:.2f}" if tau is not None else "τ n/a"
                if group.speedup is not None:
                    text += f"\n{group.speedup:.2f}×"
                top = rate.high if rate else 0.0  # above the error bar, not through it
                axes.annotate(text, (bar.get_x() + bar.get_width() / 2, top),
                              xytext=(0, 4), textcoords="offset points", ha="center", va="bottom", fontsize=8)
    axes.set_xticks(positions, [shown(g.name) for g in groups], **FOREIGN_TEXT)
    axes.set_ylabel("decode tok/s (median, min-max)")
    axes.margins(y=0.2)
    info = session.servers.get(EAGLE3)
    title = f"{shown(info.model_path)} · SGLang {shown(info.version)}" if info else "eagle3-patch bench"
    axes.set_title(title, fontsize=10, **FOREIGN_TEXT)
    # Below the axes: inside, it can sit on the annotations of the tallest bars.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False, fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def check_plot_target(path: Path) -> None:
    """Before measuring: the extra is installed and the chart can be written where asked."""
    import_pyplot()
    check_plot_format(path)
    try:
        folder = path.parent.is_dir()
    except OSError as exc:  # a name too long, a folder on the way this user may not search
        raise BadInput(f"Cannot write the plot to {path}.", f"Reason: {exc.strerror}.",
                       "Pass --plot a path in a folder this user can write.") from None
    if not folder:
        raise BadInput(
            f"Cannot write the plot to {path}.",
            f"The folder {path.parent} does not exist.",
            "Create it first, or pass --plot a path in an existing folder.",
        )


def _divergence_row(d: Divergence) -> str:
    def side(name: str, candidates: Candidates | None) -> str:
        if candidates is None:
            return f"{name} -"
        top = " ".join(f"{tid}:{logprob:.4f}" for tid, logprob in candidates.top)
        gap = f"{candidates.gap:.4f}" if candidates.gap is not None else "-"
        return f"{name} [{top}] gap {gap}"

    return (f"  {shown(d.prompt_id)} run {d.run} token {d.position}: EAGLE-3 {d.eagle3_token}, baseline "
            f"{d.baseline_token}; {side('EAGLE-3', d.eagle3)}; {side('baseline', d.baseline)} -> "
            f"{d.verdict.upper()}: {printable(d.reason)}")


def _rate(figures: ServerFigures | None) -> Spread | None:
    return figures.decode_tok_s if figures else None


def _row(*cells: str) -> str:
    name, reqs, base, eagle, speedup, tau, match = cells
    return f"{name:<24} {reqs:>4}  {base:<20} {eagle:<20} {speedup:>7}  {tau:>5}  {match}"


def _group_row(group: GroupFigures, color: bool) -> str:
    speedup = f"{group.speedup:.2f}x" if group.speedup is not None else "-"
    if color and group.speedup is not None:
        speedup = click.style(f"{speedup:>7}", fg="green" if group.speedup >= 1 else "yellow")
    tau = f"{group.eagle3.tau:.2f}" if group.eagle3 and group.eagle3.tau is not None else "n/a"
    match = "-"
    if group.match_rate is not None:
        match = f"{group.compared - group.mismatches}/{group.compared} ({group.match_rate:.0%})"
    reqs = str(group.eagle3.requests if group.eagle3 else 0)
    return _row(shown(group.name), reqs, _spread(group.baseline), _spread(group.eagle3), speedup, tau, match)


def _spread(figures: ServerFigures | None) -> str:
    rate = _rate(figures)
    if rate is None:
        return "-"
    return f"{rate.median:.1f} ({rate.low:.1f}-{rate.high:.1f})"


def _warn(text: str, color: bool) -> str:
    return click.style(text, fg="yellow") if color else text

