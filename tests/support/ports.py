"""Local TCP ports for tests: one nothing listens on. Standard library only, so that
scripts the tests start (the probes, through sglang_cpu.py) can import it too."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 whose port refuses connections."""
    return f"http://127.0.0.1:{free_port()}"
