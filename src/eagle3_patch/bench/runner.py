"""The measurement loop: server info, warm-up, then every prompt on every server, run by run.

Figures are appended to a ``BenchSession`` as they are measured, so when a request fails
the caller still holds everything gathered before it (``--json`` prints it as partial).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eagle3_patch.bench.client import ServerInfo, SGLangClient
from eagle3_patch.bench.prompts import Prompt
from eagle3_patch.bench.stats import (
    BASELINE,
    EAGLE3,
    Comparison,
    RequestFigures,
    compare,
    request_figures,
)


@dataclass(frozen=True)
class BenchSettings:
    max_new_tokens: int
    runs: int
    warmup: int
    ignore_eos: bool
    prompt_source: str


@dataclass
class BenchSession:
    """Everything gathered so far; complete once ``run_bench`` returns."""

    settings: BenchSettings
    servers: dict[str, ServerInfo] = field(default_factory=dict)
    requests: list[RequestFigures] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One finished request, for the progress display. ``figures`` is None while warming up."""

    done: int
    total: int
    server: str
    prompt: Prompt
    run: int
    figures: RequestFigures | None


async def run_bench(
    session: BenchSession,
    prompts: list[Prompt],
    clients: dict[str, SGLangClient],
    progress: Callable[[Step], None] = lambda step: None,
) -> None:
    """Measure ``prompts`` on ``clients`` (keys ``eagle3`` and optionally ``baseline``, each
    already entered with ``async with``)."""
    settings = session.settings
    for role, client in clients.items():
        session.servers[role] = await client.server_info()
    session.notes.extend(_configuration_notes(session.servers))

    roles = [role for role in (EAGLE3, BASELINE) if role in clients]
    warmups = [(role, prompts[i % len(prompts)]) for role in roles for i in range(settings.warmup)]
    total = len(warmups) + settings.runs * len(prompts) * len(roles)
    done = 0
    # Warm-up pays for CUDA-graph first use and fills the radix cache; never counted.
    for role, prompt in warmups:
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


def _configuration_notes(servers: dict[str, ServerInfo]) -> list[str]:
    """Warnings about a setup that would make the comparison mean something else."""
    notes = []
    eagle3, baseline = servers.get(EAGLE3), servers.get(BASELINE)
    if eagle3 and not eagle3.speculative:
        notes.append(f"{eagle3.url} runs without speculative decoding, so tau is n/a; is --url the EAGLE-3 server?")
    if baseline and baseline.speculative:
        notes.append(
            f"The baseline {baseline.url} runs {baseline.speculative_algorithm} too; "
            "speedup compares two speculative servers."
        )
    if eagle3 and baseline and eagle3.model_path != baseline.model_path:
        notes.append(
            f"The servers load different model paths ({eagle3.model_path} vs {baseline.model_path}); "
            "outputs only match if they are the same weights."
        )
    return notes
