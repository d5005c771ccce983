"""A loopback stand-in for an SGLang server, following SGLang's real HTTP schema.

It answers ``/server_info``, ``/health``, ``/v1/models``, ``/v1/tokenize`` and streaming
``POST /generate`` the way ``sglang/srt/entrypoints/http_server.py``, ``managers/tokenizer_manager.py``
and ``entrypoints/openai/serving_tokenize.py`` do (0.5.12 and 0.5.23 agree; its tokenizer is one token
per whitespace-separated word): SSE ``data: <json>`` chunks with cumulative ``output_ids``
(or deltas with ``incremental_streaming_output``), ``meta_info.completion_tokens``, a
dict ``finish_reason`` on the last chunk together with the speculative counters, then
``data: [DONE]``. It validates request bodies like 0.5.23's contract gate, which
rejects unknown ``sampling_params`` keys with HTTP 400. Given ``api_key`` it gates requests
the way ``--api-key`` does (``srt/utils/auth.py``, ``decide_request_auth``, 0.5.23). A prompt that
does not fit its ``context_length`` is refused inside the stream, with SGLang's own words.

Timing is scripted, not measured: stand-ins share a ``ScriptedClock``, and before
writing each chunk a stand-in pushes that chunk's scripted time onto it. The client
reads the clock once per chunk it receives, so it sees exactly the scripted times no
matter how fast this machine is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from support.loopback import LoopbackServer

# sglang/api/v1/api_types.py (0.5.23), SamplingParams: "unknown keys rejected".
SAMPLING_PARAM_KEYS = frozenset(
    "max_new_tokens stop stop_token_ids stop_regex temperature top_p top_k min_p frequency_penalty "
    "presence_penalty repetition_penalty min_new_tokens n json_schema regex ebnf structural_tag ignore_eos "
    "skip_special_tokens spaces_between_special_tokens no_stop_trim stream_interval logit_bias sampling_seed "
    "custom_params beam_width watermark choice".split()
)


class ScriptedClock:
    """Returns the next time a stand-in pushed, or the last time returned if none is pending."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._pending: queue.SimpleQueue[float] = queue.SimpleQueue()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            try:
                self.now = self._pending.get_nowait()
            except queue.Empty:
                pass
            return self.now

    def push(self, at: float) -> None:
        self._pending.put(at)


@dataclass
class Script:
    """How the stand-in answers one request. Times are seconds after the request was sent."""

    output_ids: list[int]
    chunk_sizes: list[int]
    ttft: float
    step: float
    verify_ct: int | None = None
    finish: str = "length"
    stop_after_chunks: int | None = None
    error_after_chunks: int | None = None
    abort_after_chunks: int | None = None
    http_status: int = 200
    # Hostile servers: keep-alive comments instead of the next chunk, a stream held open
    # until the stand-in shuts down, fields of the wrong type in every chunk.
    ping_after_chunks: int | None = None
    ping_every: float = 0.05
    hold_after_chunks: int | None = None
    chunk_fields: dict[str, Any] = field(default_factory=dict)
    meta_fields: dict[str, Any] = field(default_factory=dict)
    # The cumulative completion_tokens each chunk reports, instead of the tokens sent so far.
    reported_counts: list[int] | None = None
    # Acceptance detail in the finished chunk, under this release's field names (None: none).
    acceptance_release: str | None = None
    # A request with return_logprob is answered in one JSON body (SGLang's non-stream reply):
    # each output token's [logprob, id, text], and these candidates per position (None: the
    # server returns no top logprobs).
    top_logprobs: list[list[tuple[int, float]]] | None = None
    # Instead of that answer: this raw (HTTP status, body), or the request held open until the
    # stand-in shuts down (a server that refuses or never answers the follow-up).
    logprob_reply: tuple[int, bytes] | None = None
    hold_logprob: bool = False


# What _calculate_spec_decoding_metrics names the accepted and proposed counts and the histogram.
ACCEPTANCE_NAMES = {
    "0.5.10": [("spec_accept_token_num", "spec_draft_token_num", "spec_accept_histogram")],
    "0.5.11": [("spec_accepted_drafts", "spec_proposed_drafts", "spec_accept_histogram")],
    "0.5.12": [("spec_num_correct_drafts", "spec_num_proposed_drafts", "spec_correct_drafts_histogram"),
               ("spec_accepted_drafts", "spec_proposed_drafts", "spec_accept_histogram")],
    "0.5.21": [("spec_num_correct_drafts", "spec_num_proposed_drafts", "spec_correct_drafts_histogram")],
}


def acceptance_fields(release: str, decode_chunk_sizes: list[int], draft_tokens: int = 4) -> dict[str, Any]:
    """A verify pass that brought k tokens accepted k - 1 drafts (the last token is the target's own)."""
    histogram = [0] * draft_tokens
    for size in decode_chunk_sizes:
        histogram[size - 1] += 1
    accepted = sum(size - 1 for size in decode_chunk_sizes)
    proposed = len(decode_chunk_sizes) * (draft_tokens - 1)
    fields: dict[str, Any] = {}
    for accepted_name, proposed_name, histogram_name in ACCEPTANCE_NAMES[release]:
        fields.update({accepted_name: accepted, proposed_name: proposed, histogram_name: histogram})
    return fields


class Gauge:
    """Requests in flight across every stand-in that shares it, and the most seen at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.overlapped = False  # were two servers ever serving at the same time?

    def enter(self, server: str) -> None:
        with self._lock:
            self.now[server] = self.now.get(server, 0) + 1
            self.peak[server] = max(self.peak.get(server, 0), self.now[server])
            self.overlapped |= sum(1 for count in self.now.values() if count) > 1

    def leave(self, server: str) -> None:
        with self._lock:
            self.now[server] -= 1


def token_ids(text: str, count: int) -> list[int]:
    """Deterministic 'greedy output' for a prompt: the same text always yields the same ids."""
    seed = hashlib.sha256(text.encode()).digest()
    return [seed[i % len(seed)] * 1000 + i for i in range(count)]


def eagle3_script(body: dict[str, Any], step: float = 1 / 64) -> Script:
    """Prefill token, then chunks of 3 accepted tokens per verify pass (the last may be short)."""
    n = body["sampling_params"]["max_new_tokens"]
    sizes = [1] + [3] * ((n - 1) // 3) + ([(n - 1) % 3] if (n - 1) % 3 else [])
    return Script(token_ids(body["text"], n), sizes, ttft=1 / 16, step=step, verify_ct=len(sizes) - 1)


def baseline_script(body: dict[str, Any], step: float = 1 / 64) -> Script:
    n = body["sampling_params"]["max_new_tokens"]
    return Script(token_ids(body["text"], n), [1] * n, ttft=1 / 16, step=step)


@dataclass
class StandIn:
    """One fake server. Use as a context manager; ``url`` is valid inside it."""

    clock: ScriptedClock
    respond: Callable[[dict[str, Any]], Script]
    speculative: bool = True
    model_path: str = "Qwen/Qwen3.6-27B"
    version: str = "0.5.12"
    incremental: bool = False
    api_key: str | None = None
    bodies: list[dict[str, Any]] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    gauge: Gauge | None = None
    # model_config.context_len: /v1/models' max_model_len. ``--context-length`` is what
    # /server_info's ``context_length`` shows: None when the server was started without it.
    context_length: int = 262144
    context_length_flag: int | None = None
    # The routes a server older or stranger than SGLang lacks (answered 404).
    missing_routes: tuple[str, ...] = ()
    # Requests answered by a hostile function of the handler instead ("GET /server_info",
    # "POST /generate", "POST /generate logprob" for the follow-up; see hostile_routes.py), and
    # set once one of them was reached.
    raw_routes: dict[str, Callable[[Any], None]] = field(default_factory=dict)
    raw_reached: threading.Event = field(default_factory=threading.Event)

    @property
    def reserved_tokens(self) -> int:
        """The draft-token slots an EAGLE server reserves per request (``num_reserved_tokens``)."""
        return max(1 * 3, 4) if self.speculative else 0

    def server_info(self) -> dict[str, Any]:
        spec = {
            "speculative_algorithm": "EAGLE3" if self.speculative else None,
            "speculative_draft_model_path": "drafter/compressed" if self.speculative else None,
            "speculative_num_steps": 3 if self.speculative else None,
            "speculative_eagle_topk": 1 if self.speculative else None,
            "speculative_num_draft_tokens": 4 if self.speculative else None,
        }
        return {
            "model_path": self.model_path,
            "tokenizer_path": self.model_path,
            "host": "127.0.0.1",
            "port": self.port,
            "stream_interval": 1,
            "incremental_streaming_output": self.incremental,
            **spec,
            "context_length": self.context_length_flag,
            "max_total_num_tokens": 1_000_000,
            "max_req_input_len": min(self.context_length - 1, 1_000_000 - 1) - 5,
            "internal_states": [{"last_gen_throughput": 0.0}],
            "version": self.version,
        }

    def models(self) -> dict[str, Any]:
        card = {"id": self.model_path, "object": "model", "created": 0, "owned_by": "sglang",
                "root": self.model_path, "parent": None, "max_model_len": self.context_length}
        return {"object": "list", "data": [card]}

    def context_error(self, body: dict[str, Any]) -> str | None:
        """TokenizerManager._validate_one_request's refusal of this request, if any."""
        tokens = len(body["text"].split()) + self.reserved_tokens
        if tokens >= self.context_length:
            return (f"The input ({tokens} tokens) is longer than the model's context length "
                    f"({self.context_length} tokens).")
        wanted = body["sampling_params"]["max_new_tokens"]
        if tokens + wanted > self.context_length:
            return (f"Requested token count exceeds the model's maximum context length of {self.context_length} "
                    f"tokens. You requested a total of {tokens + wanted} tokens: {tokens} tokens from the input "
                    f"messages and {wanted} tokens for the completion.")
        return None

    def __enter__(self) -> StandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = LoopbackServer(Handler).__enter__()
        self.port, self.url = self._server.port, self._server.url
        return self

    def __exit__(self, *exc: Any) -> None:
        self.released.set()  # held and pinging streams end, so their handlers can finish
        self._server.__exit__(*exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: StandIn

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _authorized(self) -> bool:
        """SGLang's NORMAL auth level: probes are open, everything else needs the bearer key."""
        key = self.owner.api_key
        if not key or self.path.startswith(("/health", "/ready", "/metrics")):
            return True
        parts = (self.headers.get("Authorization") or "").split(" ", 1)
        if len(parts) == 2 and parts[0].lower() == "bearer" and secrets.compare_digest(parts[1], key):
            return True
        if self.command == "POST":  # drain the body so the keep-alive connection stays in step
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send_json(401, {"error": "Unauthorized"})
        return False

    def _raw(self, route: str) -> bool:
        answer = self.owner.raw_routes.get(route)
        if answer is None:
            return False
        self.owner.raw_reached.set()
        answer(self)
        self.close_connection = True
        return True

    def do_GET(self) -> None:
        if not self._authorized() or self._raw(f"GET {self.path}"):
            return
        if self.path in self.owner.missing_routes:
            self._send_json(404, {"detail": "Not Found"})
        elif self.path == "/server_info":
            self._send_json(200, self.owner.server_info())
        elif self.path == "/v1/models":
            self._send_json(200, self.owner.models())
        elif self.path == "/health":
            self._send_json(200, {})
        else:
            self._send_json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        if not self._authorized():
            return
        if self.path in self.owner.missing_routes or self.path not in ("/generate", "/v1/tokenize"):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send_json(404, {"detail": "Not Found"})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self._raw(f"POST {self.path}" + (" logprob" if body.get("return_logprob") else "")):
            return
        if self.path == "/v1/tokenize":
            self._tokenize(body)
            return
        unknown = set(body.get("sampling_params", {})) - SAMPLING_PARAM_KEYS
        if unknown:
            self._send_json(400, {"error": f"unknown field `{sorted(unknown)[0]}`"})
            return
        self.owner.bodies.append(body)
        script = self.owner.respond(body)
        if script.http_status != 200:
            self._send_json(script.http_status, {"error": {"message": "scripted failure"}})
            return
        if body.get("return_logprob"):
            self._answer_logprobs(body, script)
            return
        self._in_flight = self.owner.gauge is not None
        if self._in_flight:
            self.owner.gauge.enter(self.owner.url)
        try:
            self._stream(body, script)
        finally:
            self._leave()

    def _answer_logprobs(self, body: dict[str, Any], script: Script) -> None:
        if script.hold_logprob:
            self.owner.released.wait()
            self.close_connection = True
        elif script.logprob_reply is not None:
            status, data = script.logprob_reply
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._send_json(200, _with_logprobs(body, script))

    def _tokenize(self, body: dict[str, Any]) -> None:
        prompt = body.get("prompt")
        texts = prompt if isinstance(prompt, list) else [prompt]
        tokens = [[len(word) for word in text.split()] for text in texts]
        counts = [len(ids) for ids in tokens]
        self._send_json(200, {"tokens": tokens if isinstance(prompt, list) else tokens[0],
                              "count": counts if isinstance(prompt, list) else counts[0],
                              "max_model_len": 131072})  # the tokenizer's model_max_length, not the server's

    def _leave(self) -> None:
        """Counted out before the finished chunk goes: once the client has it, it may send its next."""
        if getattr(self, "_in_flight", False):
            self._in_flight = False
            self.owner.gauge.leave(self.owner.url)

    def _stream(self, body: dict[str, Any], script: Script) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        refused = self.owner.context_error(body)
        if refused:
            self._event({"error": {"message": refused, "code": 400}})
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
            return
        base, sent = self.owner.clock.now, 0
        for index, size in enumerate(script.chunk_sizes):
            if index == script.stop_after_chunks:
                self.close_connection = True
                self.wfile.flush()
                return
            if index == script.ping_after_chunks:
                while not self.owner.released.wait(script.ping_every):
                    self._chunk(b": ping\n\n")
                self.close_connection = True
                return
            if index == script.hold_after_chunks:
                self.owner.released.wait()
                self.close_connection = True
                return
            if index == script.error_after_chunks:
                self._event({"error": {"message": "scripted generation error", "code": 400}})
                break
            delta = script.output_ids[sent : sent + size]
            sent += size
            last = index == len(script.chunk_sizes) - 1
            meta: dict[str, Any] = {
                "id": "standin",
                "finish_reason": None,
                "prompt_tokens": len(body["text"].split()),
                "weight_version": "default",
                "completion_tokens": sent if script.reported_counts is None else script.reported_counts[index],
                "cached_tokens": 0,
                "reasoning_tokens": 0,
            }
            if index == script.abort_after_chunks:
                meta["finish_reason"] = {"type": "abort", "message": "scripted abort", "status_code": 503}
            elif last:
                meta["finish_reason"] = {"type": script.finish, "length": sent}
                meta["e2e_latency"] = script.ttft + script.step * index
                if script.verify_ct:
                    meta["spec_verify_ct"] = script.verify_ct
                    meta["spec_accept_length"] = sent / script.verify_ct
                if script.acceptance_release:
                    meta.update(acceptance_fields(script.acceptance_release, script.chunk_sizes[1:]))
            meta.update(script.meta_fields)
            ids = delta if self.owner.incremental else script.output_ids[:sent]
            self.owner.clock.push(base + script.ttft + script.step * index)
            if meta.get("finish_reason") is not None:
                self._leave()
            self._event({"text": f"<{sent}>", "output_ids": ids, "meta_info": meta, **script.chunk_fields})
            if meta.get("finish_reason") is not None:
                break
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _event(self, obj: dict[str, Any]) -> None:
        self._chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _with_logprobs(body: dict[str, Any], script: Script) -> dict[str, Any]:
    n = body["sampling_params"]["max_new_tokens"]
    ids = script.output_ids[:n]
    meta: dict[str, Any] = {
        "completion_tokens": len(ids),
        "finish_reason": {"type": "length", "length": n},
        "output_token_logprobs": [[-0.5, token, None] for token in ids],
    }
    if script.top_logprobs is not None:
        k = body.get("top_logprobs_num") or 0
        meta["output_top_logprobs"] = [[[lp, tid, None] for tid, lp in top[:k]] for top in script.top_logprobs[:n]]
    return {"text": "".join(f"<{t}>" for t in ids), "output_ids": ids, "meta_info": meta}


class NotSGLang:
    """A web server that is not SGLang: HTML everywhere, or ``answers`` (route -> raw body, for
    GET and POST alike) verbatim where given."""

    def __init__(self, answers: dict[str, bytes] | None = None) -> None:
        self.answers = answers or {}

    def __enter__(self) -> NotSGLang:
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = answers.get(self.path, b"<html><body>It works!</body></html>")
                self.send_response(200)
                self.send_header("Content-Type", "text/html" if self.path not in answers else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.do_GET()

        self._server = LoopbackServer(Handler).__enter__()
        self.url = self._server.url
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.__exit__(*exc)


def server_info(client: Any) -> Any:
    """``client.server_info()`` in a session of its own, for tests of one call."""
    return asyncio.run(_once(client, "server_info"))


def generate(client: Any, *args: Any, **kwargs: Any) -> Any:
    """``client.generate(...)`` in a session of its own, for tests of one call."""
    return asyncio.run(_once(client, "generate", *args, **kwargs))


async def _once(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    async with client:
        return await getattr(client, method)(*args, **kwargs)
