"""Why a server could not be measured, as ``BenchFailed`` messages a user can act on.

Every message names the server's URL and never the API key. What the server said is quoted
as an excerpt (``masking.shown``): a server can send megabytes, or escape sequences.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from eagle3_patch.errors import BenchFailed
from eagle3_patch.text.masking import shown, shown_json


def not_sglang(url: str, why: str) -> BenchFailed:
    return BenchFailed(
        f"The server at {url} does not look like SGLang.",
        f"Reason: {why}.",
        "Point --url/--baseline-url at SGLang's own HTTP port (python -m sglang.launch_server), "
        "not at a router or another engine's port.",
    )


def failed_to_connect(url: str, request: str, timeout: float, exc: BaseException,
                      looking_up: bool = False) -> BenchFailed:
    """No answer to ``request``: its host name not looked up in time (``looking_up`` when it
    failed), refused, silent after connecting, or dropped."""
    if looking_up and isinstance(exc, asyncio.TimeoutError):
        return BenchFailed(
            f"Cannot reach the server at {url}: looking up its host name took longer than {timeout:g} s.",
            "The system's resolver (DNS, /etc/hosts) did not answer for that name in time, so no "
            "connection was tried.",
            "Check the host name and the resolver (`getent hosts HOST` answers at once when it works), "
            "or give the server's IP address; raise --timeout if the resolver is merely slow.",
        )
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return BenchFailed(
            f"Cannot reach the server at {url}.",
            f"Reason: {getattr(exc, 'os_error', None) or exc or 'no connection within --timeout'}.",
            "Start it (e.g. `eagle3-patch serve`), wait until it logs that it is ready, "
            "and check the host and port; raise --timeout if it is merely slow.",
        )
    if isinstance(exc, asyncio.TimeoutError):  # TimeoutError itself from 3.11 on
        return BenchFailed(
            f"Connected to {url}, but {request} got no answer within {timeout:g} s.",
            "Something accepts connections on that port but does not respond: a server still "
            "starting up, a stuck process, or something that is not an HTTP server.",
            "Wait until SGLang logs that it is ready (or check what listens on that port), "
            "then rerun; raise --timeout if it is merely slow.",
        )
    return BenchFailed(
        f"The connection to {url} failed during {request}.",
        f"Reason: {exc or type(exc).__name__}.",
        "Check that the URL is SGLang's HTTP port and that the server is still running.",
    )


def broke_off(url: str, request: str, timeout: float, exc: BaseException) -> BenchFailed:
    """An answer to ``request`` began (its status and headers came) but did not finish."""
    return BenchFailed(
        f"The server at {url} began answering {request} but did not finish"
        + (f" within {timeout:g} s." if isinstance(exc, asyncio.TimeoutError) else "."),
        f"Reason: {stream_failure(timeout, exc)}.",
        "Check that the URL is SGLang's HTTP port and that the server is still running; "
        "raise --timeout if it is merely slow.",
    )


def stream_failure(timeout: float, exc: BaseException) -> str:
    """Why a stream that had started broke off."""
    if isinstance(exc, asyncio.TimeoutError):
        return f"the request took longer than {timeout:g} s in all (--timeout)"
    return f"reading failed: {shown(str(exc))}"


def stopped_early(url: str, recording: Any, why: str) -> BenchFailed:
    got = recording.chunks[-1].completion_tokens if recording.chunks else 0
    return BenchFailed(
        f"The stream from {url} stopped before the generation finished ({got} tokens received).",
        f"Reason: {why}.",
        "The server may have crashed or restarted; check its log. Raise --timeout if it is slow.",
    )


def auth_rejected(url: str, request: str, status: int, key_given: bool) -> BenchFailed:
    if key_given:
        what = f"The server at {url} rejected the API key given ({request} answered HTTP {status})."
        fix = "Pass the key the server was started with (its --api-key)"
    else:
        what = f"The server at {url} requires an API key ({request} answered HTTP {status})."
        fix = "It was started with --api-key; pass the same key"
    return BenchFailed(
        what,
        "SGLang started with --api-key refuses requests without that key as a bearer token.",
        f"{fix}: --api-key KEY or the SGLANG_API_KEY environment variable "
        "(--baseline-api-key KEY for the --baseline-url server, if its key differs).",
    )


def refused(url: str, status: int, detail: str) -> BenchFailed:
    return BenchFailed(
        f"The server at {url} refused a /generate request with HTTP {status}.",
        f"It said: {shown(detail)}",
        "Check the server's log; if the prompt is too long for its context, "
        "lower --max-new-tokens or shorten the prompt.",
    )


def generation_error(url: str, message: Any) -> BenchFailed:
    return BenchFailed(
        f"The server at {url} reported an error during generation.",
        f"It said: {_said(message)}",
        "Check the server's log for the cause, then rerun.",
    )


def aborted(url: str, count: int, message: Any) -> BenchFailed:
    return BenchFailed(
        f"The server at {url} aborted a generation after {count} tokens.",
        f"It said: {_said(message) if message else 'no reason given'}",
        "Check the server's log (out of memory, a restart, or another client's abort).",
    )


def overran(url: str, limit: int, got: int) -> BenchFailed:
    return BenchFailed(
        f"The server at {url} kept generating past max_new_tokens={limit} ({got} tokens received).",
        "SGLang stops every generation at max_new_tokens; this stream did not, so its figures "
        "would be meaningless.",
        "Point --url/--baseline-url at SGLang's own HTTP port, or check what answers there.",
    )


def nothing_measured(url: str, concurrency: int, duration: float | None) -> BenchFailed:
    within = f" within --duration {duration:g} s" if duration is not None else ""
    return BenchFailed(
        f"The server at {url} measured no request at concurrency {concurrency}{within}.",
        "A level without a finished request has no figures, and reporting it would read as a result.",
        "Raise --duration so every worker finishes at least one request per level, and check that "
        "the server is not stalled.",
    )


def _said(message: Any) -> str:
    """A server's message (any JSON value) as quoted: a string as it reads, anything else as JSON."""
    return shown(message) if isinstance(message, str) else shown_json(message)
