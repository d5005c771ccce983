"""Which prompts fit the servers' context, decided before the first request.

SGLang refuses a request whose prompt tokens, plus the draft-token slots an EAGLE server reserves,
plus ``max_new_tokens`` exceed the model's context length (``TokenizerManager._validate_one_request``),
and its scheduler aborts one whose prompt reaches ``max_req_input_len``. Mid-run, either ended the
whole benchmark. So each server is asked up front: its context length from ``GET /v1/models``
(``max_model_len``, which is ``model_config.context_len``), else from ``/server_info``'s
``context_length`` (set only by ``--context-length``); and the prompts' lengths from its own tokenizer,
``POST /v1/tokenize`` with the list of prompts, which encodes as ``/generate`` does. 0.5.12 and
0.5.23 agree on all of it. A prompt that cannot fit a server is skipped, with a note; when none fits,
the run is refused before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from eagle3_patch.bench.client import SGLangClient
from eagle3_patch.bench.serverinfo import ServerInfo
from eagle3_patch.bench.serverjson import is_count
from eagle3_patch.bench.prompts import Prompt
from eagle3_patch.errors import BadInput
from eagle3_patch.text.masking import shown


@dataclass(frozen=True)
class ContextLimit:
    """What one server lets a prompt be: ``room`` is the most prompt tokens that fit."""

    url: str
    context_len: int
    reserved: int
    max_input: int | None

    def room(self, max_new_tokens: int) -> int:
        room = self.context_len - self.reserved - max_new_tokens
        return room if self.max_input is None else min(room, self.max_input - 1)

    def describe(self, max_new_tokens: int) -> str:
        reserved = f" and the {self.reserved} tokens it reserves for drafts" if self.reserved else ""
        return (f"the context length of {self.context_len} tokens of {self.url} with --max-new-tokens "
                f"{max_new_tokens}{reserved}")


async def fitting_prompts(
    prompts: list[Prompt], clients: dict[str, SGLangClient], servers: dict[str, ServerInfo], max_new_tokens: int
) -> tuple[list[Prompt], list[str]]:
    """The prompts every server can take, and notes on those skipped (or on a server not checked)."""
    kept, notes = list(prompts), []
    texts = [prompt.render() for prompt in prompts]
    for role, client in clients.items():
        limit = await _limit(client, servers[role])
        counts = await _token_counts(client, texts) if limit else None
        if limit is None or counts is None:
            missing = "/v1/models and /server_info name no context length" if limit is None else \
                "/v1/tokenize did not count the prompts' tokens"
            notes.append(f"Prompts were not checked against the context length of {client.url} ({missing}); "
                         "a prompt too long for it ends the run.")
            continue
        room = limit.room(max_new_tokens)
        too_long = {prompt.id: count for prompt, count in zip(prompts, counts, strict=True)
                    if count > room and prompt in kept}
        if not too_long:
            continue
        kept = [prompt for prompt in kept if prompt.id not in too_long]
        if not kept:
            raise BadInput(
                f"No prompt fits {limit.describe(max_new_tokens)}.",
                f"The shortest has {min(counts)} tokens; SGLang refuses a request whose prompt, drafts "
                "and new tokens exceed the context.",
                "Lower --max-new-tokens, choose shorter prompts (--bucket, --prompts), or start the "
                "server with a longer --context-length.",
            )
        skipped = ", ".join(f"{shown(pid)} ({count} tokens)" for pid, count in too_long.items())
        notes.append(f"{len(too_long)} prompt(s) cannot fit {limit.describe(max_new_tokens)}, so they were "
                     f"skipped: {skipped}.")
    return kept, notes


async def _limit(client: SGLangClient, info: ServerInfo) -> ContextLimit | None:
    models = await client.optional_json("GET", "/v1/models")
    cards = models.get("data") if isinstance(models, dict) else None
    if not isinstance(cards, list):
        cards = []
    lengths = [card.get("max_model_len") for card in cards if isinstance(card, dict)]
    context = next((n for n in lengths if is_count(n, 1)), info.context_length)
    if context is None:
        return None
    return ContextLimit(client.url, context, info.reserved_tokens, info.max_req_input_len)


async def _token_counts(client: SGLangClient, texts: list[str]) -> list[int] | None:
    answer = await client.optional_json("POST", "/v1/tokenize", {"prompt": texts})
    counts = answer.get("count") if isinstance(answer, dict) else None
    if not isinstance(counts, list) or len(counts) != len(texts) or not all(is_count(n) for n in counts):
        return None
    return counts
