"""The HTTP server under every stand-in: on 127.0.0.1, on a thread, prompt, and silent.

``socketserver`` prints a handler's exception to stderr and carries on, so a stand-in that
broke mid-test left a traceback in the run and a green test. Here a handler's unexpected error
is kept, and leaving the ``with`` block fails the test that owns the server with it. A client
that hangs up (the benchmark giving up on a stream, a process exiting) is not an error: a real
server sees that all the time.
"""

from __future__ import annotations

import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

# What a handler meets when the client went away first: reading or writing a reset socket.
CLIENT_HUNG_UP = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class LoopbackServer(ThreadingHTTPServer):
    """``with LoopbackServer(Handler) as server:`` serves ``server.url`` until the block ends,
    then fails the block with any error a handler raised (``AssertionError``)."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.port = self.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._open: dict[socket.socket, threading.Thread] = {}

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], CLIENT_HUNG_UP):
            return
        with self._lock:
            self.errors.append(traceback.format_exc())

    def process_request(self, request: socket.socket, client_address: object) -> None:
        # Headers and body go out as separate small writes; with Nagle's algorithm the body waits
        # for the client's delayed ACK, 40 ms a response, which was most of the bench tests' time.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._lock:
            self._open[request] = thread
        thread.start()

    def shutdown_request(self, request: socket.socket) -> None:
        with self._lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def __enter__(self) -> LoopbackServer:
        # A short poll: shutdown() waits up to one poll interval, and the default 0.5 s would
        # dominate the test.
        threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.shutdown()
        self._hang_up()
        self.server_close()
        if not self.errors:
            return
        report = f"the stand-in server at {self.url} failed handling a request:\n" + "\n".join(self.errors)
        if exc is None:
            raise AssertionError(report)
        if hasattr(exc, "add_note"):  # Python 3.11+; before, the block's own error stands alone
            exc.add_note(report)

    def _hang_up(self) -> None:
        """End the connections still open (a keep-alive client not yet closed) and wait for their
        handlers, so that whatever a handler raises is in ``errors`` before the block ends."""
        with self._lock:
            still_open = list(self._open.items())
        for request, _ in still_open:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:  # the handler closed it meanwhile
                pass
        for request, thread in still_open:
            thread.join(timeout=10)
            if thread.is_alive():
                self.errors.append(f"a handler still runs 10 s after its connection was closed: {request!r}")
