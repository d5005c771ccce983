"""A streaming client for SGLang's native HTTP API, recording when each chunk arrived.

Schema facts, read from the release wheels (0.5.8 through 0.5.23 agree on all of them):
- ``POST /generate`` takes ``GenerateReqInput`` (``managers/io_struct.py``): ``text``,
  ``sampling_params`` and ``stream``. 0.5.23 validates the body against
  ``sglang/api/v1/api_types.py``, whose ``SamplingParams`` *rejects unknown keys*, so we
  send only ``max_new_tokens``, ``temperature`` and ``ignore_eos``.
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
- ``GET /server_info`` returns the flattened server arguments (``model_path``,
  ``speculative_algorithm``, ``speculative_num_steps``, ``speculative_eagle_topk``,
  ``speculative_num_draft_tokens``, ``incremental_streaming_output`` ...) plus ``version``.
  ``/get_server_info`` is its deprecated alias, so we use ``/server_info``.
- A server started with ``--api-key`` checks ``Authorization: Bearer <key>`` on every route
  except /health, /ready and /metrics, /server_info and /generate included, and answers a
  missing or wrong key with HTTP 401 ``{"error": "Unauthorized"}`` (``add_api_key_middleware``
  and ``decide_request_auth`` in ``srt/utils/auth.py``, 0.5.23).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from eagle3_patch.bench import failures
from eagle3_patch.bench.acceptance import COUNT_FIELDS, HISTOGRAM_FIELDS
from eagle3_patch.errors import BadInput
from eagle3_patch.jsontext import loads
from eagle3_patch.masking import masked_url, printable

# SGLang answers 401 for a missing/wrong key; 403 comes from its admin-only routes or a proxy
# in front of it. Both mean "this request's credentials", never "this is not SGLang".
_AUTH_STATUSES = (401, 403)

# A cumulative chunk of a long generation is one long SSE line; aiohttp refuses a line
# longer than twice its read buffer, so give it room for ~250k token ids.
_READ_BUFSIZE = 2**21
# /server_info's texts are paths, ids and names: no path the system can open is longer (PATH_MAX).
_MAX_INFO_TEXT = 4096
_INFO_TEXTS = ("model_path", "version", "speculative_algorithm", "speculative_draft_model_path")
_INFO_COUNTS = ("speculative_num_steps", "speculative_eagle_topk", "speculative_num_draft_tokens")


def _json(raw: bytes | str) -> Any:
    """A server's JSON answer; ValueError for anything that is not one, nesting past Python's
    recursion limit and numbers past its digit limit included (valid JSON, but no SGLang answer
    holds either)."""
    try:
        return loads(raw)
    except RecursionError as exc:
        raise ValueError(f"JSON nested too deeply to read: {exc}") from None


@dataclass(frozen=True)
class ServerInfo:
    """What a server says it is running, printed with the results."""

    url: str
    model_path: str
    version: str
    speculative_algorithm: str | None
    speculative_num_steps: int | None
    speculative_eagle_topk: int | None
    speculative_num_draft_tokens: int | None
    speculative_draft_model_path: str | None
    incremental_streaming_output: bool
    # --context-length (None: the model's own) and the scheduler's longest prompt.
    context_length: int | None = None
    max_req_input_len: int | None = None

    @property
    def reserved_tokens(self) -> int:
        """The draft-token slots an EAGLE server reserves in every request's context
        (``num_reserved_tokens``: max(topk x steps, draft tokens); 0 without speculative decoding)."""
        if not self.speculative:
            return 0
        sizes = (self.speculative_eagle_topk, self.speculative_num_steps, self.speculative_num_draft_tokens)
        if not all(is_count(n) for n in sizes):
            return 0
        topk, steps, draft_tokens = sizes
        return max(topk * steps, draft_tokens)

    @property
    def speculative(self) -> bool:
        return bool(self.speculative_algorithm)

    def describe(self) -> str:
        """One line for the report; the server's own words escaped (they are printed to a terminal)."""
        spec = "no speculative decoding"
        if self.speculative:
            spec = (
                f"{printable(self.speculative_algorithm)} steps={self.speculative_num_steps} "
                f"topk={self.speculative_eagle_topk} draft_tokens={self.speculative_num_draft_tokens}"
            )
        return f"{self.url}  {printable(self.model_path)}  ({spec}; SGLang {printable(self.version)})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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


def check_url(url: str) -> str:
    """The URL without a trailing slash, or ``BadInput`` if it cannot name an HTTP server."""
    why = None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        why = f"It does not parse: {exc}."
    else:
        if port == 0:
            why = "Port 0 names no server: nothing can listen there."
        elif parts.scheme not in ("http", "https"):
            why = "The benchmark talks to SGLang's HTTP server, so the URL needs http:// or https://."
        elif not parts.hostname:
            why = "It names no host."
        else:
            try:  # what the resolver does to it: an empty label, or one past 63 characters, fails there
                parts.hostname.encode("idna")
            except UnicodeError as exc:
                why = f"Its host name is not one a resolver can look up ({exc.__cause__ or exc})."
    if why:
        raise BadInput(f"{masked_url(url)!r} is not a usable HTTP URL.", why,
                       "Pass the server's address with scheme, host and port, e.g. --url http://127.0.0.1:30000")
    return url.rstrip("/")


class SGLangClient:
    """One server, used as ``async with``. ``clock`` is called once before each request and
    once per data chunk.

    ``timeout`` bounds the connection, each read, and each request as a whole: a server that
    sends only keep-alive comments cannot hold the benchmark forever. ``api_key`` is sent as a
    bearer token on every request; it is never put in a message. ``url`` is the address as
    shown (in messages, the report and ``--json``): its user-info masked; requests use the real one.
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        clock: Callable[[], float] = time.perf_counter,
        api_key: str | None = None,
    ) -> None:
        self._address = check_url(url)
        self.url = masked_url(self._address)
        credentials = urlsplit(self._address)
        if api_key and (credentials.username or credentials.password is not None):
            # aiohttp would refuse to send both (one Authorization header each).
            raise BadInput(
                f"--url {self.url} carries credentials, and an API key is given too.",
                "Both become the request's Authorization header; only one can be sent.",
                "Pass the key alone (--api-key KEY or SGLANG_API_KEY) for a server started with "
                "--api-key, or the user-info alone for a proxy that wants HTTP Basic auth.",
            )
        self.timeout = timeout
        self._clock = clock
        self._incremental = False
        self._api_key = api_key or None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SGLangClient:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
        self._session = aiohttp.ClientSession(
            headers=headers,
            # limit=0: the benchmark decides how many requests are in flight, not the pool.
            connector=aiohttp.TCPConnector(limit=0),
            # total bounds every read too: a read can only outlast --timeout inside a request that
            # does. sock_connect is there so a connection that never completes reads as unreachable.
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.timeout),
            read_bufsize=_READ_BUFSIZE,
            # trust_env=False (the default) ignores http(s)_proxy: a proxy between us and the
            # server would buffer the stream and add its own latency to every figure.
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def server_info(self) -> ServerInfo:
        """Read ``/server_info``; anything that is not SGLang's answer is a ``BenchFailed``."""
        body = await self._required_json("GET", "/server_info", "GET /server_info did not return JSON")
        if not isinstance(body, dict) or "version" not in body or "model_path" not in body:
            raise failures.not_sglang(self.url, "its /server_info has no 'version' and 'model_path'")
        for name in _INFO_TEXTS:
            value, optional = body.get(name), name.startswith("speculative_")
            if not (value is None and optional or isinstance(value, str) and len(value) <= _MAX_INFO_TEXT):
                raise failures.not_sglang(self.url, f"its /server_info '{name}' is not a text of at most "
                                                    f"{_MAX_INFO_TEXT} characters")
        for name in _INFO_COUNTS:
            if body.get(name) is not None and not is_count(body[name]):
                raise failures.not_sglang(self.url, f"its /server_info '{name}' is not a count")
        self._incremental = bool(body.get("incremental_streaming_output", False))
        return ServerInfo(
            url=self.url,
            model_path=body["model_path"],
            version=body["version"],
            speculative_algorithm=body.get("speculative_algorithm"),
            speculative_num_steps=body.get("speculative_num_steps"),
            speculative_eagle_topk=body.get("speculative_eagle_topk"),
            speculative_num_draft_tokens=body.get("speculative_num_draft_tokens"),
            speculative_draft_model_path=body.get("speculative_draft_model_path"),
            incremental_streaming_output=self._incremental,
            context_length=_count_or_none(body.get("context_length")),
            max_req_input_len=_count_or_none(body.get("max_req_input_len")),
        )

    async def _required_json(self, method: str, path: str, not_json: str, body: Any = None) -> Any:
        """The JSON answer of a route every SGLang has; anything else is a ``BenchFailed``."""
        request = f"{method} {path}"
        try:
            async with self._open(method, path, body) as response:
                await self._check_status(request, response)
                text = await response.read()
        except aiohttp.ClientResponseError as exc:
            raise failures.not_sglang(self.url, f"{request} answered badly: {exc.message}") from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise failures.failed_to_connect(self.url, request, self.timeout, exc) from exc
        try:
            return _json(text)
        except ValueError as exc:
            raise failures.not_sglang(self.url, f"{not_json} ({exc})") from exc

    async def optional_json(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of a route not every server has: None for any other answer (a missing
        key is still an error); no connection is an error as on every route."""
        request = f"{method} {path}"
        try:
            async with self._open(method, path, body) as response:
                if response.status in _AUTH_STATUSES:
                    raise failures.auth_rejected(self.url, request, response.status, bool(self._api_key))
                if response.status != 200:
                    return None
                text = await response.read()
        except aiohttp.ClientResponseError:
            return None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise failures.failed_to_connect(self.url, request, self.timeout, exc) from exc
        try:
            return _json(text)
        except ValueError:
            return None

    async def generate(self, text: str, max_new_tokens: int, ignore_eos: bool) -> Recording:
        """Stream one greedy generation and record every chunk's arrival."""
        body = {
            "text": text,
            "sampling_params": {"temperature": 0.0, "max_new_tokens": max_new_tokens, "ignore_eos": ignore_eos},
            "stream": True,
        }
        recording = Recording(sent_at=self._clock())
        streaming = False
        try:
            async with self._open("POST", "/generate", body) as response:
                await self._check_status("POST /generate", response)
                streaming = True
                await self._read_stream(response, recording, max_new_tokens)
        except aiohttp.ClientResponseError as exc:
            raise failures.not_sglang(self.url, f"POST /generate answered badly: {exc.message}") from exc
        except (HttpProcessingError, ValueError) as exc:  # a line longer than any SGLang chunk
            why = f"its /generate stream was malformed: {getattr(exc, 'message', exc)}"
            raise failures.not_sglang(self.url, why) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            if streaming:
                raise failures.stopped_early(self.url, recording, failures.stream_failure(self.timeout, exc)) from exc
            raise failures.failed_to_connect(self.url, "POST /generate", self.timeout, exc) from exc
        return recording

    async def top_candidates(self, text: str, position: int,
                             ignore_eos: bool) -> tuple[list[int], list[tuple[int, float]]]:
        """Generate greedily up to and including ``position``; return the output token ids and
        the two best ``(token id, logprob)`` candidates at ``position`` (empty when the server
        returns no top logprobs)."""
        body = {
            "text": text,
            "sampling_params": {"temperature": 0.0, "max_new_tokens": position + 1, "ignore_eos": ignore_eos},
            "return_logprob": True,
            "top_logprobs_num": 2,
        }
        out = await self._required_json("POST", "/generate", "a /generate answer with logprobs was not JSON", body)
        meta = out.get("meta_info") if isinstance(out, dict) else None
        if not isinstance(meta, dict):
            raise failures.not_sglang(self.url, "a /generate answer with logprobs has no 'meta_info' object")
        tokens = meta.get("output_token_logprobs")
        ids = [entry[1] for entry in tokens] if _entries(tokens) else out.get("output_ids")
        if not isinstance(ids, list) or not all(is_count(i) for i in ids):
            raise failures.not_sglang(self.url, "a /generate answer with logprobs names no output token ids")
        tops = meta.get("output_top_logprobs")
        if not isinstance(tops, list) or position >= len(tops) or tops[position] is None:
            return ids, []
        if not _entries(tops[position]):
            raise failures.not_sglang(self.url,
                                      "'meta_info.output_top_logprobs' is not [logprob, token id, text] entries")
        ranked = sorted(((entry[1], float(entry[0])) for entry in tops[position]), key=lambda c: -c[1])
        return ids, ranked[:2]

    def _open(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            raise RuntimeError("SGLangClient is used outside `async with`")
        # No redirects: following one would hand the bearer key to whatever host it names.
        return self._session.request(method, self._address + path, json=body, allow_redirects=False)

    async def _check_status(self, request: str, response: aiohttp.ClientResponse) -> None:
        if response.status == 200:
            return
        if response.status in _AUTH_STATUSES:
            raise failures.auth_rejected(self.url, request, response.status, bool(self._api_key))
        if request.startswith("POST"):
            detail = (await response.content.read(500)).decode("utf-8", "replace")
            raise failures.refused(self.url, response.status, detail or str(response.reason))
        raise failures.not_sglang(self.url, f"{request} answered HTTP {response.status}")

    async def _read_stream(self, response: aiohttp.ClientResponse, recording: Recording, limit: int) -> None:
        finished = False
        while not finished:
            line = await response.content.readline()
            if not line:
                raise failures.stopped_early(self.url, recording, "the connection closed")
            payload = line.strip()
            if not payload.startswith(b"data:"):
                continue  # blank separators and ": ping" keep-alive comments
            payload = payload[len(b"data:"):].strip()
            if payload == b"[DONE]":
                raise failures.stopped_early(self.url, recording, "[DONE] came before a finished chunk")
            at = self._clock()
            try:
                out = _json(payload)
            except ValueError as exc:
                raise failures.not_sglang(self.url, f"a /generate stream chunk was not JSON ({exc})") from exc
            if not isinstance(out, dict):
                raise failures.not_sglang(self.url, "a /generate stream chunk was not a JSON object")
            finished = self._take_chunk(out, at, recording, limit)

    def _take_chunk(self, out: dict[str, Any], at: float, recording: Recording, limit: int) -> bool:
        if "error" in out:
            error = out["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise failures.generation_error(self.url, message)
        ids = out.get("output_ids") or []
        if not isinstance(ids, list) or not all(is_count(i) for i in ids):
            raise failures.not_sglang(self.url, "a /generate chunk's 'output_ids' is not a list of token ids")
        meta = out.get("meta_info") or {}
        if not isinstance(meta, dict):
            raise failures.not_sglang(self.url, "a /generate chunk's 'meta_info' is not a JSON object")
        recording.output_ids = recording.output_ids + ids if self._incremental else ids
        count = meta.get("completion_tokens", len(recording.output_ids))
        if not is_count(count):
            raise failures.not_sglang(self.url,
                                      "a /generate chunk's 'meta_info.completion_tokens' is not a token count")
        before = recording.chunks[-1].completion_tokens if recording.chunks else 0
        if count < before:
            # Cumulative by definition; throughput counts each chunk as count - before.
            raise failures.not_sglang(
                self.url, f"a /generate chunk's 'meta_info.completion_tokens' went down from {before} to {count}")
        for name in ("spec_verify_ct", *COUNT_FIELDS):
            if meta.get(name) is not None and not is_count(meta[name]):
                raise failures.not_sglang(self.url, f"a /generate chunk's 'meta_info.{name}' is not a count")
        for name in HISTOGRAM_FIELDS:
            histogram = meta.get(name)
            if histogram is not None and not (isinstance(histogram, list) and all(map(is_count, histogram))):
                raise failures.not_sglang(self.url, f"a /generate chunk's 'meta_info.{name}' is not a list of counts")
        recording.meta_info = meta
        recording.chunks.append(Chunk(at, count))
        if max(count, len(recording.output_ids)) > limit:
            raise failures.overran(self.url, limit, max(count, len(recording.output_ids)))
        reason = meta.get("finish_reason")
        if reason is not None and not isinstance(reason, (dict, str)):
            raise failures.not_sglang(
                self.url, "a /generate chunk's 'meta_info.finish_reason' is neither null, text nor an object")
        if isinstance(reason, dict) and reason.get("type") == "abort":
            raise failures.aborted(self.url, count, reason.get("message"))
        return reason is not None


def _entries(value: Any) -> bool:
    """SGLang's logprob entries: ``[logprob, token_id, text or null]`` each."""
    return isinstance(value, list) and all(
        isinstance(e, list) and len(e) >= 2 and isinstance(e[0], (int, float)) and not isinstance(e[0], bool)
        and is_count(e[1]) for e in value
    )


def is_count(value: Any, least: int = 0) -> bool:
    """A token count in a server's JSON: a whole number (not a bool) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _count_or_none(value: Any) -> int | None:
    return value if is_count(value, 1) else None
