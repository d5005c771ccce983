"""One streamed generation read into a ``Recording``: when each chunk arrived, what it carried.

Schema facts, read from the release wheels (0.5.8 through 0.5.23 agree on all of them):
- With ``stream`` the reply is server-sent events: ``data: <json>\\n\\n`` per chunk, then
  ``data: [DONE]`` (``entrypoints/http_server.py``). A failure inside the stream arrives as
  ``data: {"error": {"message": ...}}`` followed by ``[DONE]``.
- Each chunk carries ``output_ids`` and ``meta_info`` with the cumulative
  ``completion_tokens`` and ``finish_reason`` (null until the last chunk; a dict whose
  ``type`` is stop/length/abort) (``managers/tokenizer_manager.py``). ``output_ids`` (and
  ``text``) are cumulative unless the server runs with ``incremental_streaming_output``,
  then they are per-chunk deltas. SGLang never sends more than ``max_new_tokens``.
- Speculative counters appear only in the finished chunk and only on a speculative
  server: ``spec_verify_ct`` (verify passes) and ``spec_accept_length``
  (= completion_tokens / spec_verify_ct) (``_calculate_spec_decoding_metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from eagle3_patch.bench import acceptance, failures
from eagle3_patch.bench.serverjson import MAX_WORD, is_count, is_counts, is_word, parse_json


@dataclass(frozen=True)
class Chunk:
    """One streamed chunk: when we read it and the cumulative token count it reported."""

    at: float
    completion_tokens: int


@dataclass
class Recording:
    """Everything observed for one request; ``stats`` turns it into figures."""

    sent_at: float
    chunks: list[Chunk] = field(default_factory=list)
    output_ids: list[int] = field(default_factory=list)
    meta_info: dict[str, Any] = field(default_factory=dict)


async def read_stream(content: aiohttp.StreamReader, recording: Recording, limit: int, url: str, incremental: bool,
                      clock: Callable[[], float]) -> None:
    """Read SSE lines from ``content`` into ``recording`` until the finished chunk; a ``BenchFailed``
    for a stream that ends first or is not SGLang's. ``limit`` is the request's max_new_tokens,
    ``clock`` is read once per data chunk, ``incremental`` is the server's incremental_streaming_output."""
    finished = False
    while not finished:
        line = await content.readline()
        if not line:
            raise failures.stopped_early(url, recording, "the connection closed")
        payload = line.strip()
        if not payload.startswith(b"data:"):
            continue  # blank separators and ": ping" keep-alive comments
        payload = payload[len(b"data:"):].strip()
        if payload == b"[DONE]":
            raise failures.stopped_early(url, recording, "[DONE] came before a finished chunk")
        at = clock()
        try:
            out = parse_json(payload)
        except ValueError as exc:
            raise failures.not_sglang(url, f"a /generate stream chunk was not JSON ({exc})") from exc
        if not isinstance(out, dict):
            raise failures.not_sglang(url, "a /generate stream chunk was not a JSON object")
        finished = _take_chunk(out, at, recording, limit, url, incremental)


def _take_chunk(out: dict[str, Any], at: float, recording: Recording, limit: int, url: str, incremental: bool) -> bool:
    if "error" in out:
        error = out["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise failures.generation_error(url, message)
    ids = out.get("output_ids") or []
    if not is_counts(ids):
        raise failures.not_sglang(url, "a /generate chunk's 'output_ids' is not a list of token ids")
    meta = out.get("meta_info") or {}
    if not isinstance(meta, dict):
        raise failures.not_sglang(url, "a /generate chunk's 'meta_info' is not a JSON object")
    recording.output_ids = recording.output_ids + ids if incremental else ids
    count = meta.get("completion_tokens", len(recording.output_ids))
    if not is_count(count):
        raise failures.not_sglang(url, "a /generate chunk's 'meta_info.completion_tokens' is not a token count")
    before = recording.chunks[-1].completion_tokens if recording.chunks else 0
    if count < before:
        # Cumulative by definition; throughput counts each chunk as count - before.
        raise failures.not_sglang(
            url, f"a /generate chunk's 'meta_info.completion_tokens' went down from {before} to {count}")
    if meta.get("spec_verify_ct") is not None and not is_count(meta["spec_verify_ct"]):
        raise failures.not_sglang(url, "a /generate chunk's 'meta_info.spec_verify_ct' is not a count")
    why = acceptance.malformed(meta)
    if why:
        raise failures.not_sglang(url, f"a /generate chunk's {why}")
    recording.meta_info = meta
    if count > before:
        # A chunk that brings no token changes no figure; kept, a server sending them without
        # end would fill memory until --timeout.
        recording.chunks.append(Chunk(at, count))
    if max(count, len(recording.output_ids)) > limit:
        raise failures.overran(url, limit, max(count, len(recording.output_ids)))
    reason = meta.get("finish_reason")
    if not (reason is None or is_word(reason) or isinstance(reason, dict) and is_word(reason.get("type"))):
        raise failures.not_sglang(url, "a /generate chunk's 'meta_info.finish_reason' is neither null, a word nor "
                                       f"an object whose 'type' is a word (text of at most {MAX_WORD} characters)")
    if isinstance(reason, dict) and reason.get("type") == "abort":
        raise failures.aborted(url, count, reason.get("message"))
    return reason is not None
