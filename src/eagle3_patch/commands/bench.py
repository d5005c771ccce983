"""``eagle3-patch bench``: options in, one measurement run, a report out."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import click

from eagle3_patch.bench.client import SGLangClient
from eagle3_patch.bench.divergence import explain
from eagle3_patch.bench.interrupt import signals_stop
from eagle3_patch.bench.load import server_load
from eagle3_patch.bench.optiontypes import ConcurrencyLevels, Duration, Timeout
from eagle3_patch.bench.prompts import (
    Prompt,
    BUILTIN_NAME,
    builtin_prompts,
    load_prompts,
    select_buckets,
)
from eagle3_patch.bench.report import check_plot_target, render_text, summary_of, to_json, write_plot
from eagle3_patch.bench.runner import BenchSession, BenchSettings, LevelStep, Notice, Step, run_bench, run_levels
from eagle3_patch.bench.stats import BASELINE, EAGLE3
from eagle3_patch.ui.errorreport import refuse_unusable_stdout
from eagle3_patch.errors import BadInput, BenchFailed, Interrupted
from eagle3_patch.text.masking import printable, shown


@click.command("bench")
@click.option("--url", required=True, metavar="URL", help="The EAGLE-3 server, e.g. http://127.0.0.1:30000.")
@click.option("--baseline-url", metavar="URL",
              help="A plain server of the same model: adds speedup and the losslessness check.")
# The env var keeps the key out of shell history and `ps`. No show_default/show_envvar:
# help text and error output must never reveal the key.
@click.option("--api-key", envvar="SGLANG_API_KEY", metavar="KEY",
              help="The key the servers were started with (SGLang's --api-key); env: SGLANG_API_KEY.")
@click.option("--baseline-api-key", metavar="KEY",
              help="The --baseline-url server's key, if it differs from --api-key.")
@click.option("--prompts", "prompts_file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="JSONL prompts, one per line: a string, or {\"text\"|\"messages\", \"bucket\", \"id\"}. "
                   "Default: the built-in set.")
@click.option("--bucket", "buckets", multiple=True, metavar="NAME",
              help="Run only this bucket (repeatable): chat, multi-turn, agentic, coding for the built-in set.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=256, show_default=True,
              help="Tokens generated per request.")
@click.option("--runs", type=click.IntRange(min=2), default=3, show_default=True,
              help="Measured repeats of every prompt (a median needs more than one).")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Uncounted requests per server first; under load, also one uncounted wave of N requests "
              "before each level of N > 1 (0: none at all).")
@click.option("--ignore-eos", is_flag=True, help="Always generate --max-new-tokens tokens, past end-of-sequence.")
@click.option("--timeout", type=Timeout(), default=120.0, show_default=True,
              help="Seconds allowed for a connection, for each read, and for each request as a whole.")
@click.option("--concurrency", type=ConcurrencyLevels(), default="1", show_default=True,
              help="Requests kept in flight per server, one level after another, e.g. 1,4,16,64: "
                   "throughput, tail latency and the speedup per level, and where EAGLE-3 stops paying.")
@click.option("--duration", type=Duration(),
              help="Measure each level for this long (1 to 86400) instead of a request count.")
@click.option("--json", "as_json", is_flag=True, help="Print every per-request figure as JSON on stdout.")
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE.png",
              help="Also draw tok/s per bucket, baseline vs EAGLE-3 (needs the 'plot' extra).")
def bench(**options: Any) -> None:
    """Measure decode tok/s, accept length and losslessness against running SGLang servers.

    One request at a time, greedy, streamed: time to first token is kept apart from
    decode speed. With --baseline-url the same prompts run on both servers and the
    greedy outputs are compared token by token. With --concurrency or --duration, each
    level keeps N requests in flight per server, and the report says up to which level
    EAGLE-3 is faster.
    """
    measure_and_report(**options)


def measure_and_report(
    url: str,
    baseline_url: str | None,
    api_key: str | None,
    baseline_api_key: str | None,
    prompts_file: Path | None,
    buckets: tuple[str, ...],
    max_new_tokens: int,
    runs: int,
    warmup: int,
    ignore_eos: bool,
    timeout: float,
    concurrency: tuple[int, ...],
    duration: float | None,
    as_json: bool,
    plot: Path | None,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """``bench`` on its options (named as the command's): measure, then print the table or the JSON
    and draw the plot. Every time is read from ``clock``. A failure is raised as our typed error
    carrying whatever was measured (``found``), for errorreport to print."""
    refuse_unusable_stdout()  # fail now, not after minutes of measuring: the report goes there
    if plot is not None:
        check_plot_target(plot)
    prompts = load_prompts(prompts_file) if prompts_file else builtin_prompts()
    prompts = select_buckets(prompts, buckets)
    clients = {EAGLE3: SGLangClient(url, timeout, clock, api_key=api_key)}
    if baseline_url:
        # A key sent to a server that has none is ignored by SGLang, so defaulting is safe.
        key = api_key if baseline_api_key is None else baseline_api_key
        clients[BASELINE] = SGLangClient(baseline_url, timeout, clock, api_key=key)
    source = str(prompts_file) if prompts_file else BUILTIN_NAME
    settings = BenchSettings(max_new_tokens, runs, warmup, ignore_eos, source, concurrency, duration)
    session = BenchSession(settings)
    with signals_stop() as stop:
        try:
            stop.run(_measure(session, prompts, clients, clock))
        except (BenchFailed, Interrupted) as exc:
            # Whatever finished is still worth having: in the --json error object always, the table
            # once a request did.
            summary = summary_of(session)
            exc.found = to_json(session, summary, partial=True)
            if not as_json and session.requests:
                click.echo(render_text(session, summary, color=not os.environ.get("NO_COLOR"), partial=exc.what))
            raise
        summary = summary_of(session)
        report = to_json(session, summary) if as_json else None
        if not as_json:
            click.echo(render_text(session, summary, color=not os.environ.get("NO_COLOR")))
        after = "Every request had finished and is reported" + ("; the plot was not written." if plot else ".")
        try:
            if plot is not None:
                stop.call(lambda: write_plot(summary, session, plot), after)
            if stop.received is not None:  # came while the figures were summed up or shown
                raise stop.interrupted(after)
        except (BadInput, Interrupted) as exc:
            exc.found = report  # --json: still one object, the figures beside the error
            raise
        # A signal from here on lets the finished report be printed whole, and bench end as done.
        if plot is not None:
            click.echo(f"Plot written to {printable(str(plot))}", err=True)
        if as_json:
            click.echo(json.dumps(report, indent=2))


async def _measure(
    session: BenchSession, prompts: list[Prompt], clients: dict[str, SGLangClient], clock: Callable[[], float]
) -> None:
    async with AsyncExitStack() as stack:
        for client in clients.values():
            await stack.enter_async_context(client)
        if session.settings.under_load:
            await run_levels(session, prompts, clients, clock, progress=_show_progress)
        else:
            await run_bench(session, prompts, clients, progress=_show_progress)
        await explain(session, prompts, clients)


def _show_progress(step: Step | LevelStep | Notice) -> None:
    if isinstance(step, Notice):
        click.echo(f"Note: {step.text}", err=True)
        return
    if isinstance(step, LevelStep):
        _show_level(step)
        return
    where = f"[{step.done:>{len(str(step.total))}}/{step.total}]"
    label = "EAGLE-3 " if step.server == EAGLE3 else "baseline"
    if step.figures is None:
        click.echo(f"{where} warm-up  {label} {shown(step.prompt.id)}", err=True)
        return
    figures = step.figures
    rate = f"{figures.decode_tok_s:.1f} tok/s" if figures.decode_tok_s is not None else "- tok/s"
    tau = f"tau {figures.tau:.2f}" if figures.tau is not None else "tau n/a"
    click.echo(f"{where} run {step.run}    {label} {shown(step.prompt.id)}: {figures.output_tokens} tokens, "
               f"{rate}, {tau}", err=True)


def _show_level(step: LevelStep) -> None:
    run = step.run
    load = server_load(run)
    label = "EAGLE-3 " if run.server == EAGLE3 else "baseline"
    tps = f"{load.throughput_tok_s:.1f} tok/s" if load.throughput_tok_s is not None else "- tok/s"
    median = f"{load.decode_tok_s['median']:.1f}" if load.decode_tok_s else "-"
    tau = f"tau {load.tau:.2f}" if load.tau is not None else "tau n/a"
    click.echo(f"[level {step.index}/{step.total}] concurrency {run.concurrency:<4} {label} "
               f"{load.requests} requests: {tps} throughput, {median} tok/s per request (median), {tau}",
               err=True)
