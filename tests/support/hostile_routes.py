"""Answers no SGLang gives, for ``StandIn.raw_routes``: each writes to the handler's socket
itself, and every one that could go on forever stops once the stand-in shuts down."""

from __future__ import annotations

from typing import Any

# Slow enough that no --timeout of a test passes before a handful of bytes arrived.
TRICKLE_S = 0.5


def hold(handler: Any) -> None:
    """Accept the request and never answer."""
    handler.owner.released.wait()


def trickle_headers(handler: Any) -> None:
    """A status line and headers, one byte per TRICKLE_S."""
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 1000:
        if handler.owner.released.wait(TRICKLE_S):
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


def trickle_body(handler: Any) -> None:
    """Prompt headers, then a body of one byte per TRICKLE_S."""
    _chunked_headers(handler, "text/event-stream")
    for byte in b'data: {"output_ids": [' + b"1, " * 1000:
        if handler.owner.released.wait(TRICKLE_S):
            return
        _chunk(handler, bytes([byte]))


def keep_alive_forever(handler: Any) -> None:
    """A stream of SSE comments, a hundred a second, and never a chunk."""
    _chunked_headers(handler, "text/event-stream")
    while not handler.owner.released.wait(0.01):
        _chunk(handler, b": ping\n\n")


def endless_body(handler: Any) -> None:
    """A body of spaces (valid JSON padding) as fast as the socket takes it."""
    _chunked_headers(handler, "application/json")
    block = b" " * 2**16
    while not handler.owner.released.is_set():
        _chunk(handler, block)


def _chunked_headers(handler: Any, content_type: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.wfile.flush()


def _chunk(handler: Any, data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


def raw(data: bytes):
    """An answer of exactly these bytes, status line and headers included."""
    def answer(handler: Any) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
    return answer
