"""A streaming client for SGLang's native HTTP API, recording when each chunk arrived.

Schema facts, read from the release wheels (0.5.8 through 0.5.23 agree on all of them):
- ``POST /generate`` takes ``GenerateReqInput`` (``managers/io_struct.py``): ``text``,
  ``sampling_params`` and ``stream``. 0.5.23 validates the body against
  ``sglang/api/v1/api_types.py``, whose ``SamplingParams`` *rejects unknown keys*, so we
  send only ``max_new_tokens``, ``temperature`` and ``ignore_eos``.
- With ``stream`` the reply is server-sent events, read by ``stream``; ``GET /server_info``
  is read by ``serverinfo``.
- A server started with ``--api-key`` checks ``Authorization: Bearer <key>`` on every route
  except /health, /ready and /metrics, /server_info and /generate included, and answers a
  missing or wrong key with HTTP 401 ``{"error": "Unauthorized"}`` (``add_api_key_middleware``
  and ``decide_request_auth`` in ``srt/utils/auth.py``, 0.5.23).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from eagle3_patch.bench import failures
from eagle3_patch.bench.serverinfo import ServerInfo, read_server_info
from eagle3_patch.bench.serverjson import is_counts, logprob_entries, parse_json
from eagle3_patch.bench.stream import Recording, read_stream
from eagle3_patch.errors import BadInput, BenchFailed
from eagle3_patch.text.masking import masked_url

# SGLang answers 401 for a missing/wrong key; 403 comes from its admin-only routes or a proxy
# in front of it. Both mean "this request's credentials", never "this is not SGLang".
_AUTH_STATUSES = (401, 403)

# What no HTTP header can carry (aiohttp refuses to send it, as header injection): a control
# character other than tab.
_NOT_IN_A_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# See _answer_cap.
ANSWER_CAP = 32 * 2**20
# A cumulative chunk of a long generation is one long SSE line; aiohttp refuses a line
# longer than twice its read buffer, so give it room for ~250k token ids.
_READ_BUFSIZE = 2**21


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
        if api_key and _NOT_IN_A_HEADER.search(api_key):
            raise BadInput(
                f"The API key given for {self.url} holds a control character (a newline, an escape...).",
                "It is sent as the request's Authorization header, which cannot carry one.",
                "Pass the key exactly as the server was started with it (--api-key KEY or SGLANG_API_KEY); "
                "a key read from a file keeps the file's last newline unless it is stripped: "
                '--api-key "$(cat key.txt)" strips it.',
            )
        self.timeout = timeout
        self._clock = clock
        self._incremental = False
        self._api_key = api_key or None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SGLangClient:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
        # Whether a request is still looking its host name up, so that --timeout passing then is
        # said as such (the lookup is not a connection that went silent).
        lookups = aiohttp.TraceConfig()
        lookups.on_dns_resolvehost_start.append(_lookup_started)
        lookups.on_dns_resolvehost_end.append(_lookup_ended)
        self._session = aiohttp.ClientSession(
            headers=headers,
            # limit=0: the benchmark decides how many requests are in flight, not the pool.
            connector=aiohttp.TCPConnector(limit=0),
            # total bounds every read too: a read can only outlast --timeout inside a request that
            # does. sock_connect is there so a connection that never completes reads as unreachable.
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.timeout),
            read_bufsize=_READ_BUFSIZE,
            trace_configs=[lookups],
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
        info = read_server_info(self.url, body)
        self._incremental = info.incremental_streaming_output
        return info

    async def _required_json(self, method: str, path: str, not_json: str, body: Any = None) -> Any:
        """The JSON answer of a route every SGLang has; anything else is a ``BenchFailed``."""
        request, data, lookup = f"{method} {path}", _encoded(body), _lookup()
        began = False
        try:
            async with self._open(method, path, data, lookup) as response:
                began = True
                await self._check_status(request, response)
                text = await _bounded_read(response, _answer_cap(data))
        except aiohttp.ClientResponseError as exc:
            raise failures.not_sglang(self.url, f"{request} answered badly: {exc.message}") from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self._broken(request, began, lookup, exc) from exc
        if text is None:
            raise failures.not_sglang(self.url, f"{request} answered more than {_answer_cap(data)} bytes, "
                                                "more than any SGLang answer")
        try:
            return parse_json(text)
        except ValueError as exc:
            raise failures.not_sglang(self.url, f"{not_json} ({exc})") from exc

    async def optional_json(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of a route not every server has: None for any other answer (a missing
        key is still an error); no connection, or an answer broken off, is an error as on every route."""
        request, data, lookup = f"{method} {path}", _encoded(body), _lookup()
        began = False
        try:
            async with self._open(method, path, data, lookup) as response:
                began = True
                if response.status in _AUTH_STATUSES:
                    raise failures.auth_rejected(self.url, request, response.status, bool(self._api_key))
                if response.status != 200:
                    return None
                text = await _bounded_read(response, _answer_cap(data))
        except aiohttp.ClientResponseError:
            return None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self._broken(request, began, lookup, exc) from exc
        try:
            return parse_json(text) if text is not None else None
        except ValueError:
            return None

    def _broken(self, request: str, began: bool, lookup: SimpleNamespace, exc: BaseException) -> BenchFailed:
        if began:
            return failures.broke_off(self.url, request, self.timeout, exc)
        return failures.failed_to_connect(self.url, request, self.timeout, exc, lookup.pending)

    async def generate(self, text: str, max_new_tokens: int, ignore_eos: bool) -> Recording:
        """Stream one greedy generation and record every chunk's arrival."""
        body = {
            "text": text,
            "sampling_params": {"temperature": 0.0, "max_new_tokens": max_new_tokens, "ignore_eos": ignore_eos},
            "stream": True,
        }
        recording = Recording(sent_at=self._clock())
        streaming, lookup = False, _lookup()
        try:
            async with self._open("POST", "/generate", _encoded(body), lookup) as response:
                await self._check_status("POST /generate", response)
                streaming = True
                await read_stream(response.content, recording, max_new_tokens, self.url, self._incremental,
                                  self._clock)
        except aiohttp.ClientResponseError as exc:
            raise failures.not_sglang(self.url, f"POST /generate answered badly: {exc.message}") from exc
        except (HttpProcessingError, ValueError) as exc:  # a line longer than any SGLang chunk
            why = f"its /generate stream was malformed: {getattr(exc, 'message', exc)}"
            raise failures.not_sglang(self.url, why) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            if streaming:
                raise failures.stopped_early(self.url, recording, failures.stream_failure(self.timeout, exc)) from exc
            raise failures.failed_to_connect(self.url, "POST /generate", self.timeout, exc, lookup.pending) from exc
        return recording

    async def top_candidates(self, text: str, position: int,
                             ignore_eos: bool) -> tuple[list[int], list[tuple[int, float]]]:
        """Generate greedily up to and including ``position``; return the output token ids and
        the two best ``(token id, logprob)`` candidates at ``position`` (empty when the server
        returns no top logprobs). Any answer but SGLang's is a ``BenchFailed``."""
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
        tokens = logprob_entries(meta.get("output_token_logprobs"))
        ids = [token for token, _ in tokens] if tokens is not None else out.get("output_ids")
        if not is_counts(ids):
            raise failures.not_sglang(self.url, "a /generate answer with logprobs names no output token ids")
        tops = meta.get("output_top_logprobs")
        if not isinstance(tops, list) or position >= len(tops) or tops[position] is None:
            return ids, []
        candidates = logprob_entries(tops[position])
        if candidates is None:
            raise failures.not_sglang(self.url, "'meta_info.output_top_logprobs' is not [logprob, token id, text] "
                                                "entries, each logprob a finite number")
        return ids, sorted(candidates, key=lambda c: -c[1])[:2]

    def _open(self, method: str, path: str, data: bytes | None, lookup: SimpleNamespace) -> Any:
        if self._session is None:
            raise RuntimeError("SGLangClient is used outside `async with`")
        headers = {"Content-Type": "application/json"} if data is not None else None
        # No redirects: following one would hand the bearer key to whatever host it names.
        return self._session.request(method, self._address + path, data=data, headers=headers, allow_redirects=False,
                                     trace_request_ctx=lookup)

    async def _check_status(self, request: str, response: aiohttp.ClientResponse) -> None:
        if response.status == 200:
            return
        if response.status in _AUTH_STATUSES:
            raise failures.auth_rejected(self.url, request, response.status, bool(self._api_key))
        if request.startswith("POST"):
            detail = (await response.content.read(500)).decode("utf-8", "replace")
            raise failures.refused(self.url, response.status, detail or str(response.reason))
        raise failures.not_sglang(self.url, f"{request} answered HTTP {response.status}")

def _lookup() -> SimpleNamespace:
    """One request's host-name lookup: ``pending`` while aiohttp waits for the resolver."""
    return SimpleNamespace(pending=False)


async def _lookup_started(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    context.trace_request_ctx.pending = True


async def _lookup_ended(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    context.trace_request_ctx.pending = False


def _encoded(body: Any) -> bytes | None:
    return json.dumps(body).encode() if body is not None else None


def _answer_cap(sent: bytes | None) -> int:
    """The most bytes a JSON answer to ``sent`` may have: SGLang's are kilobytes (server info, model
    cards, one generation with its logprobs), but /v1/tokenize's token ids grow with the prompts."""
    return ANSWER_CAP + 16 * len(sent or b"")


async def _bounded_read(response: aiohttp.ClientResponse, cap: int) -> bytes | None:
    """The body, decompressed, or None once it passes ``cap`` bytes (declared or read): a server
    can send, or inflate from a few kilobytes, more than this machine's memory."""
    if response.content_length is not None and response.content_length > cap:
        return None
    data = bytearray()
    async for block in response.content.iter_any():
        data += block
        if len(data) > cap:
            return None
    return bytes(data)

