"""Stand-in servers never print into the run: a handler's error fails the test that owns the
server, and a client that hangs up is no error at all."""

from __future__ import annotations

import socket
import struct
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from eagle3_patch.bench.client import SGLangClient
from eagle3_patch.errors import BenchFailed

from support.bench_standin import ScriptedClock, StandIn, generate
from support.loopback import LoopbackServer


class Breaks(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        raise ValueError("the stand-in itself is broken")


class StreamsForever(BaseHTTPRequestHandler):
    ended = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        try:
            while True:  # until the client hangs up: then a write fails
                self.wfile.write(b"x" * 65536)
        finally:
            self.ended.set()


def _ask(url: str) -> None:
    try:
        urllib.request.urlopen(url, timeout=10).read()
    except OSError:  # the broken handler closes the connection without an answer
        pass


def test_a_handler_error_fails_the_block_that_owns_the_server_and_prints_nothing(capfd):
    with pytest.raises(AssertionError, match="ValueError: the stand-in itself is broken") as failed:
        with LoopbackServer(Breaks) as server:
            _ask(server.url)
    assert f"the stand-in server at {server.url} failed handling a request" in str(failed.value)
    assert capfd.readouterr().err == ""


def test_a_client_that_hangs_up_mid_answer_is_not_an_error(capfd):
    with LoopbackServer(StreamsForever) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096)
            # Linger 0: close with a reset, as a process that dies or a client that gives up does.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert server.errors == []
    assert capfd.readouterr().err == ""


def test_a_handler_still_streaming_when_the_block_ends_is_hung_up_on_not_left_running():
    class Streams(StreamsForever):
        ended = threading.Event()

    with socket.socket() as client:
        with LoopbackServer(Streams) as server:
            client.connect(("127.0.0.1", server.port))
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096)
        # The block ended while the client still held the connection, reading nothing: the
        # handler was stopped inside it, where an error it raised would have been counted.
        assert Streams.ended.is_set()
        assert server.errors == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11+")
def test_when_the_block_fails_too_its_own_error_stands_with_the_servers_as_a_note():
    with pytest.raises(KeyError) as failed:
        with LoopbackServer(Breaks) as server:
            _ask(server.url)
            raise KeyError("the test's own failure")
    assert "ValueError: the stand-in itself is broken" in "\n".join(failed.value.__notes__)


def test_a_bench_stand_in_whose_script_raises_fails_its_test(capfd):
    def broken_script(body):
        raise ZeroDivisionError("a bug in the test's script")

    clock = ScriptedClock()
    with pytest.raises(AssertionError, match="ZeroDivisionError: a bug in the test's script"):
        with StandIn(clock, broken_script) as server:
            with pytest.raises(BenchFailed):
                generate(SGLangClient(server.url, timeout=5, clock=clock), "Hello", 8, ignore_eos=True)
    assert capfd.readouterr().err == ""
