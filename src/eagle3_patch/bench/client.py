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
  then they are per-chunk deltas.
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

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from eagle3_patch.errors import BadInput, BenchFailed

# Module-level so a test can substitute a scripted clock for the whole process.
DEFAULT_CLOCK: Callable[[], float] = time.perf_counter

# SGLang answers 401 for a missing/wrong key; 403 comes from its admin-only routes or a proxy
# in front of it. Both mean "this request's credentials", never "this is not SGLang".
_AUTH_STATUSES = (401, 403)

# Ignore http(s)_proxy: a proxy between us and the server would buffer the stream
# and add its own latency to every figure we measure.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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

    @property
    def speculative(self) -> bool:
        return bool(self.speculative_algorithm)

    def describe(self) -> str:
        spec = "no speculative decoding"
        if self.speculative:
            spec = (
                f"{self.speculative_algorithm} steps={self.speculative_num_steps} "
                f"topk={self.speculative_eagle_topk} draft_tokens={self.speculative_num_draft_tokens}"
            )
        return f"{self.url}  {self.model_path}  ({spec}; SGLang {self.version})"

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


class SGLangClient:
    """One server. ``clock`` is called once before each request and once per data chunk.

    ``api_key`` is sent as a bearer token on every request; it is never put in a message.
    """

    def __init__(
        self, url: str, timeout: float, clock: Callable[[], float] | None = None, api_key: str | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise BadInput(
                f"{url!r} is not an HTTP URL.",
                "The benchmark talks to SGLang's HTTP server.",
                "Pass it with its scheme, e.g. --url http://127.0.0.1:30000",
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._clock = clock or DEFAULT_CLOCK
        self._incremental = False
        self._api_key = api_key or None

    def server_info(self) -> ServerInfo:
        """Read ``/server_info``; anything that is not SGLang's answer is a ``BenchFailed``."""
        try:
            with _OPENER.open(self._request("/server_info"), timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in _AUTH_STATUSES:
                raise self._auth_rejected("GET /server_info", exc) from exc
            raise self._not_sglang(f"GET /server_info answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from exc
        except ValueError as exc:
            raise self._not_sglang("GET /server_info did not return JSON") from exc
        if not isinstance(body, dict) or "version" not in body or "model_path" not in body:
            raise self._not_sglang("its /server_info has no 'version' and 'model_path'")
        self._incremental = bool(body.get("incremental_streaming_output", False))
        return ServerInfo(
            url=self.url,
            model_path=str(body["model_path"]),
            version=str(body["version"]),
            speculative_algorithm=body.get("speculative_algorithm"),
            speculative_num_steps=body.get("speculative_num_steps"),
            speculative_eagle_topk=body.get("speculative_eagle_topk"),
            speculative_num_draft_tokens=body.get("speculative_num_draft_tokens"),
            speculative_draft_model_path=body.get("speculative_draft_model_path"),
            incremental_streaming_output=self._incremental,
        )

    def generate(self, text: str, max_new_tokens: int, ignore_eos: bool) -> Recording:
        """Stream one greedy generation and record every chunk's arrival."""
        body = {
            "text": text,
            "sampling_params": {
                "temperature": 0.0,
                "max_new_tokens": max_new_tokens,
                "ignore_eos": ignore_eos,
            },
            "stream": True,
        }
        request = self._request("/generate", json.dumps(body).encode())
        recording = Recording(sent_at=self._clock())
        try:
            response = _OPENER.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in _AUTH_STATUSES:
                raise self._auth_rejected("POST /generate", exc) from exc
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise BenchFailed(
                f"The server at {self.url} refused a /generate request with HTTP {exc.code}.",
                f"It said: {detail or exc.reason}",
                "Check the server's log; if the prompt is too long for its context, "
                "lower --max-new-tokens or shorten the prompt.",
            ) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from exc
        with response:
            self._read_stream(response, recording)
        return recording

    def _request(self, path: str, data: bytes | None = None) -> urllib.request.Request:
        request = urllib.request.Request(self.url + path, data=data, method="GET" if data is None else "POST")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._api_key:
            # Unredirected: urllib copies ordinary headers onto a redirect to any host,
            # which would hand the key to whoever the server points us at.
            request.add_unredirected_header("Authorization", f"Bearer {self._api_key}")
        return request

    def _read_stream(self, response: Any, recording: Recording) -> None:
        finished = False
        while not finished:
            try:
                line = response.readline()
            except (OSError, http.client.HTTPException) as exc:
                raise self._stopped_early(recording, f"reading failed: {exc}") from exc
            if not line:
                raise self._stopped_early(recording, "the connection closed")
            payload = line.strip()
            if not payload.startswith(b"data:"):
                continue
            payload = payload[len(b"data:"):].strip()
            if payload == b"[DONE]":
                raise self._stopped_early(recording, "[DONE] came before a finished chunk")
            at = self._clock()
            try:
                out = json.loads(payload)
            except ValueError as exc:
                raise self._not_sglang("a /generate stream chunk was not JSON") from exc
            if not isinstance(out, dict):
                raise self._not_sglang("a /generate stream chunk was not a JSON object")
            finished = self._take_chunk(out, at, recording)

    def _take_chunk(self, out: dict[str, Any], at: float, recording: Recording) -> bool:
        if "error" in out:
            error = out["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise BenchFailed(
                f"The server at {self.url} reported an error during generation.",
                f"It said: {message}",
                "Check the server's log for the cause, then rerun.",
            )
        ids = [int(i) for i in out.get("output_ids") or []]
        recording.output_ids = recording.output_ids + ids if self._incremental else ids
        recording.meta_info = out.get("meta_info") or {}
        count = recording.meta_info.get("completion_tokens", len(recording.output_ids))
        recording.chunks.append(Chunk(at, int(count)))
        reason = recording.meta_info.get("finish_reason")
        if isinstance(reason, dict) and reason.get("type") == "abort":
            raise BenchFailed(
                f"The server at {self.url} aborted a generation after {count} tokens.",
                f"It said: {reason.get('message') or 'no reason given'}",
                "Check the server's log (out of memory, a restart, or another client's abort).",
            )
        return reason is not None

    def _unreachable(self, exc: BaseException) -> BenchFailed:
        reason = getattr(exc, "reason", exc)
        return BenchFailed(
            f"Cannot reach the server at {self.url}.",
            f"Reason: {reason}.",
            "Start it (e.g. `eagle3-patch serve`), wait until it logs that it is ready, "
            "and check the host and port; raise --timeout if it is merely slow.",
        )

    def _auth_rejected(self, request: str, exc: urllib.error.HTTPError) -> BenchFailed:
        status = exc.code
        exc.close()  # its unread body holds the socket open otherwise
        if self._api_key:
            what = f"The server at {self.url} rejected the API key given ({request} answered HTTP {status})."
            fix = "Pass the key the server was started with (its --api-key)"
        else:
            what = f"The server at {self.url} requires an API key ({request} answered HTTP {status})."
            fix = "It was started with --api-key; pass the same key"
        return BenchFailed(
            what,
            "SGLang started with --api-key refuses requests without that key as a bearer token.",
            f"{fix}: --api-key KEY or the SGLANG_API_KEY environment variable "
            "(--baseline-api-key KEY for the --baseline-url server, if its key differs).",
        )

    def _not_sglang(self, why: str) -> BenchFailed:
        return BenchFailed(
            f"The server at {self.url} does not look like SGLang.",
            f"Reason: {why}.",
            "Point --url/--baseline-url at SGLang's own HTTP port (python -m sglang.launch_server), "
            "not at a router or another engine's port.",
        )

    def _stopped_early(self, recording: Recording, why: str) -> BenchFailed:
        got = recording.chunks[-1].completion_tokens if recording.chunks else 0
        return BenchFailed(
            f"The stream from {self.url} stopped before the generation finished ({got} tokens received).",
            f"Reason: {why}.",
            "The server may have crashed or restarted; check its log. Raise --timeout if it is slow.",
        )
