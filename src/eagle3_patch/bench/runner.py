"""The measurement loops: server info, warm-up, then either every prompt on every server one
request at a time (``run_bench``), or closed loops of N workers per load level (``run_levels``).

Figures are appended to a ``BenchSession`` as they are measured, so when a request fails
the caller still holds everything gathered before it (``--json`` prints it as partial).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from eagle3_patch.bench import failures
from eagle3_patch.bench.client import SGLangClient
from eagle3_patch.bench.serverinfo import ServerInfo
from eagle3_patch.bench.context import fitting_prompts
from eagle3_patch.bench.load import LevelRun, Timeline
from eagle3_patch.bench.prompts import Prompt
from eagle3_patch.bench.stats import (
    BASELINE,
    EAGLE3,
    Comparison,
    RequestFigures,
    compare,
    request_figures,
)
from eagle3_patch.text.masking import printable, shown


@dataclass(frozen=True)
class BenchSettings:
    max_new_tokens: int
    runs: int
    warmup: int
    ignore_eos: bool
    prompt_source: str
    concurrency: tuple[int, ...] = (1,)
    duration_s: float | None = None

    @property
    def under_load(self) -> bool:
        """Anything but today's one-request-at-a-time run."""
        return self.concurrency != (1,) or self.duration_s is not None


@dataclass
class BenchSession:
    """Everything gathered so far; complete once ``run_bench`` returns."""

    settings: BenchSettings
    servers: dict[str, ServerInfo] = field(default_factory=dict)
    requests: list[RequestFigures] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Each single-stream divergence with both servers' leading candidates (bench.divergence).
    divergences: list = field(default_factory=list)
    level_runs: list[LevelRun] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One finished request, for the progress display. ``figures`` is None while warming up."""

    done: int
    total: int
    server: str
    prompt: Prompt
    run: int
    figures: RequestFigures | None


def _warmups(roles: list[str], prompts: list[Prompt], count: int) -> Iterator[tuple[str, Prompt]]:
    """``count`` warm-up requests per server, the prompts in turn, made one at a time: --warmup can
    be any count (a list of 2**40 of them filled memory before the first request)."""
    for role in roles:
        for i in range(count):
            yield role, prompts[i % len(prompts)]


async def run_bench(
    session: BenchSession,
    prompts: list[Prompt],
    clients: dict[str, SGLangClient],
    progress: Callable[[Step | Notice], None] = lambda step: None,
) -> None:
    """Measure ``prompts`` on ``clients`` (keys ``eagle3`` and optionally ``baseline``, each
    already entered with ``async with``)."""
    settings = session.settings
    roles, prompts = await _introduce(session, clients, prompts, progress)
    total = settings.warmup * len(roles) + settings.runs * len(prompts) * len(roles)
    done = 0
    # Warm-up pays for CUDA-graph first use and fills the radix cache; never counted.
    for role, prompt in _warmups(roles, prompts, settings.warmup):
        await clients[role].generate(prompt.render(), settings.max_new_tokens, settings.ignore_eos)
        done += 1
        progress(Step(done, total, role, prompt, 0, None))

    # Servers alternate per prompt so slow drift (clocks, heat) hits both alike.
    for run in range(1, settings.runs + 1):
        for prompt in prompts:
            measured: dict[str, RequestFigures] = {}
            for role in roles:
                recording = await clients[role].generate(prompt.render(), settings.max_new_tokens, settings.ignore_eos)
                figures = request_figures(recording, role, prompt.id, prompt.bucket, run)
                session.requests.append(figures)
                measured[role] = figures
                done += 1
                progress(Step(done, total, role, prompt, run, figures))
            if len(measured) == 2:
                session.comparisons.append(compare(measured[EAGLE3], measured[BASELINE]))


@dataclass(frozen=True)
class LevelStep:
    """One server finished one load level, for the progress display."""

    index: int
    total: int
    run: LevelRun


async def run_levels(
    session: BenchSession,
    prompts: list[Prompt],
    clients: dict[str, SGLangClient],
    clock: Callable[[], float],
    progress: Callable[[Step | LevelStep | Notice], None] = lambda step: None,
) -> None:
    """For each concurrency level, a closed loop of N workers on each server in turn: every
    worker sends its next prompt as soon as its last one finished. The servers are never
    measured at the same time, so neither steals the other's GPU or host CPU."""
    settings = session.settings
    roles, prompts = await _introduce(session, clients, prompts, progress)
    for done, (role, prompt) in enumerate(_warmups(roles, prompts, settings.warmup), 1):
        await clients[role].generate(prompt.render(), settings.max_new_tokens, settings.ignore_eos)
        progress(Step(done, settings.warmup * len(roles), role, prompt, 0, None))
    total = len(settings.concurrency) * len(roles)
    for level, n in enumerate(settings.concurrency):
        runs: dict[str, LevelRun] = {}
        for index, role in enumerate(roles, 1):
            if settings.warmup and n > 1:
                await _wave(settings, prompts, clients[role], n)
            runs[role] = await _closed_loop(session, prompts, clients[role], role, n, clock)
            if not runs[role].requests:
                raise failures.nothing_measured(clients[role].url, n, settings.duration_s)
            session.level_runs.append(runs[role])
            progress(LevelStep(level * len(roles) + index, total, runs[role]))
        if len(runs) == 2:
            baseline = {(r.prompt_id, r.run): r for r in runs[BASELINE].requests}
            session.comparisons.extend(
                compare(r, baseline[(r.prompt_id, r.run)])
                for r in runs[EAGLE3].requests
                if (r.prompt_id, r.run) in baseline
            )


async def _wave(settings: BenchSettings, prompts: list[Prompt], client: SGLangClient, n: int) -> None:
    """N uncounted requests at once, before a level of N. A server's first batch of a size may
    pay for what it meets first (kernels compiled for a new shape, say): in the GPU record's run 5
    a level of 4 on the 27B saw one wave's first token after 1.49 s in the first pass and 0.67 s
    in the second, on the same machine, and its throughput moved by 28 % with it. The warm-up
    requests before the levels go one at a time, so they cover level 1 only."""
    await _together([client.generate(prompts[i % len(prompts)].render(), settings.max_new_tokens,
                                      settings.ignore_eos) for i in range(n)])


async def _closed_loop(
    session: BenchSession,
    prompts: list[Prompt],
    client: SGLangClient,
    role: str,
    n: int,
    clock: Callable[[], float],
) -> LevelRun:
    settings = session.settings
    # Enough requests that every worker sends several and every prompt runs --runs times.
    count = None if settings.duration_s is not None else max(4 * n, settings.runs * len(prompts))
    work: Iterator[int] = itertools.count() if count is None else iter(range(count))
    deadline = None if settings.duration_s is None else clock() + settings.duration_s
    requests: list[RequestFigures] = []
    timelines: list[Timeline] = []
    drained: list[float] = []

    async def worker() -> None:
        while deadline is None or clock() < deadline:
            item = next(work, None)
            if item is None:
                break
            prompt, run = prompts[item % len(prompts)], item // len(prompts) + 1
            recording = await client.generate(prompt.render(), settings.max_new_tokens, settings.ignore_eos)
            figures = request_figures(recording, role, prompt.id, prompt.bucket, run, n)
            requests.append(figures)
            timelines.append(Timeline(recording.sent_at, tuple(recording.chunks)))
            session.requests.append(figures)
        drained.append(clock())

    await _together([worker() for _ in range(n)])
    return LevelRun(n, role, tuple(requests), tuple(timelines), min(drained))


async def _together(jobs: list[Awaitable[None]]) -> None:
    """Run all; the first failure (or a cancellation) stops the others before it propagates."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True)
class Notice:
    """Something to say before the first request (prompts skipped), for the progress display."""

    text: str


async def _introduce(
    session: BenchSession, clients: dict[str, SGLangClient], prompts: list[Prompt],
    progress: Callable[[Notice], None],
) -> tuple[list[str], list[Prompt]]:
    """Read each server's configuration; the roles in measuring order and the prompts all can take."""
    for role, client in clients.items():
        session.servers[role] = await client.server_info()
    session.notes.extend(_configuration_notes(session.servers))
    prompts, notes = await fitting_prompts(prompts, clients, session.servers, session.settings.max_new_tokens)
    for note in notes:
        session.notes.append(note)
        progress(Notice(note))
    return [role for role in (EAGLE3, BASELINE) if role in clients], prompts


def _configuration_notes(servers: dict[str, ServerInfo]) -> list[str]:
    """Warnings about a setup that would make the comparison mean something else."""
    notes = []
    eagle3, baseline = servers.get(EAGLE3), servers.get(BASELINE)
    if eagle3 and not eagle3.speculative:
        notes.append(f"{eagle3.url} runs without speculative decoding, so tau is n/a; is --url the EAGLE-3 server?")
    if baseline and baseline.speculative:
        notes.append(
            f"The baseline {baseline.url} runs {printable(baseline.speculative_algorithm)} too; "
            "speedup compares two speculative servers."
        )
    if eagle3 and baseline and eagle3.model_path != baseline.model_path:
        notes.append(
            f"The servers load different model paths ({shown(eagle3.model_path)} vs {shown(baseline.model_path)}); "
            "outputs only match if they are the same weights."
        )
    return notes
