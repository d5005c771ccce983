"""A hostile server at the HTTP level: answers without end, compressed past any size, cut off
half-way, chunks that bring nothing. bench reads a bounded amount of each, ends within --timeout,
and says what happened.
"""

from __future__ import annotations

import json
import zlib

import pytest

from eagle3_patch.bench.client import ANSWER_CAP, SGLangClient

from support import hostile_routes
from support.bench_standin import NotSGLang, ScriptedClock, StandIn, eagle3_script, generate
from support.cli import invoke_bench
from support.marks import first_fast

ARGS = ["--bucket", "chat", "--max-new-tokens", "8", "--runs", "2", "--warmup", "0"]


def bench(server_url, *extra):
    result = invoke_bench(ScriptedClock(), "--url", server_url, *ARGS, *extra, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == report.get("exit_code", 0), result.stderr
    return result.exit_code, report


def test_an_answer_without_end_is_refused_once_past_the_bound_not_read_until_timeout():
    # It was read into memory for the whole --timeout: about 250 MB a second over loopback.
    with StandIn(ScriptedClock(), eagle3_script, raw_routes={"GET /server_info": hostile_routes.endless_body}) as s:
        code, report = bench(s.url, "--timeout", "5")
    assert code == 10
    assert "does not look like SGLang" in report["error"]["what"]
    assert f"GET /server_info answered more than {ANSWER_CAP} bytes" in report["error"]["why"]


def test_an_endless_answer_to_a_pre_check_is_no_answer_and_the_run_goes_on():
    with StandIn(ScriptedClock(), eagle3_script, raw_routes={"POST /v1/tokenize": hostile_routes.endless_body}) as s:
        code, report = bench(s.url, "--timeout", "5")
    assert code == 0
    assert any("/v1/tokenize did not count the prompts' tokens" in note for note in report["notes"])
    assert len(report["requests"]) == 6


def deflate_bomb(size: int) -> bytes:
    """A deflate stream of ``size`` spaces: about a thousandth of that on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block, out = b" " * 2**20, []
    for _ in range(size // len(block)):
        out.append(packer.compress(block))
    return b"".join(out) + packer.flush()


def compressed(body: bytes):
    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return answer


@pytest.mark.slow  # another way past the same bound; compressing the bomb takes a second
def test_a_compressed_answer_that_inflates_past_the_bound_is_refused():
    bomb = deflate_bomb(ANSWER_CAP + 2**21)
    assert len(bomb) < ANSWER_CAP // 100
    with StandIn(ScriptedClock(), eagle3_script, raw_routes={"GET /server_info": compressed(bomb)}) as s:
        code, report = bench(s.url, "--timeout", "30")
    assert code == 10
    assert f"GET /server_info answered more than {ANSWER_CAP} bytes" in report["error"]["why"]


def test_a_declared_length_past_the_bound_is_refused_before_reading():
    def declares(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(ANSWER_CAP + 1))
        handler.end_headers()
        handler.owner.released.wait()  # the body never comes: only the header can end this

    with StandIn(ScriptedClock(), eagle3_script, raw_routes={"GET /server_info": declares}) as s:
        code, report = bench(s.url, "--timeout", "30")
    assert code == 10
    assert f"GET /server_info answered more than {ANSWER_CAP} bytes" in report["error"]["why"]


@pytest.mark.parametrize("route", first_fast("GET /server_info", "GET /v1/models"))
def test_an_answer_that_stops_half_way_is_said_to_have_begun_not_to_be_missing(route):
    with StandIn(ScriptedClock(), eagle3_script, raw_routes={route: hostile_routes.trickle_body}) as s:
        code, report = bench(s.url, "--timeout", "1")
    assert code == 10
    what = report["error"]["what"]
    assert f"began answering {route} but did not finish within 1 s" in what, what
    assert "got no answer" not in what


def test_a_flood_of_chunks_that_bring_no_token_keeps_no_record_of_each():
    nothing = b'data: {"output_ids": [], "meta_info": {"completion_tokens": 0}}\n\n'
    done = (b'data: {"output_ids": [7], "meta_info": {"completion_tokens": 1, '
            b'"finish_reason": {"type": "length"}}}\n\n')
    info = json.dumps({"version": "0.5.23", "model_path": "m"}).encode()
    with NotSGLang({"/server_info": info, "/generate": nothing * 20_000 + done}) as server:
        recording = generate(SGLangClient(server.url, timeout=30), "Hello", 1, ignore_eos=False)
    # Each was a record of its own: memory grew with every line for the whole --timeout.
    assert [chunk.completion_tokens for chunk in recording.chunks] == [1]
    assert recording.output_ids == [7]


MALFORMED_HTTP = first_fast(
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 100_000 + b"\r\nContent-Length: 2\r\n\r\n{}",
                 "Got more than 8190 bytes", id="gigantic-header"),
    pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X-A: a\r\n" * 10_000 + b"Content-Length: 2\r\n\r\n{}",
                 "Too many headers", id="ten-thousand-headers"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
                 "Invalid character in chunk size", id="chunk-size-not-hex"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc",
                 "Chunk size overflow", id="chunk-size-overflow"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                 "Content-Length can't be present with Transfer-Encoding", id="chunked-and-length"),
    pytest.param(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n\r\n",
                 "HTTP 302", id="redirect"),
    pytest.param(b"{}\r\n", "Bad status line", id="no-status-line"),
)


@pytest.mark.parametrize("route", ["GET /server_info", "POST /generate"])
@pytest.mark.parametrize("answer, said", MALFORMED_HTTP)
def test_malformed_http_is_a_failure_that_says_what_came(route, answer, said):
    with StandIn(ScriptedClock(), eagle3_script, raw_routes={route: hostile_routes.raw(answer)}) as s:
        code, report = bench(s.url, "--timeout", "30")
    assert code == 10
    assert said in report["error"]["what"] + " " + report["error"]["why"], report["error"]


@pytest.mark.parametrize("route, said", first_fast(
    ("GET /server_info", "began answering GET /server_info but did not finish"),
    ("POST /generate", "stopped before the generation finished"),
))
def test_a_body_shorter_than_its_declared_length_is_said_to_be_cut_short(route, said):
    cut_short = hostile_routes.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{}")
    with StandIn(ScriptedClock(), eagle3_script, raw_routes={route: cut_short}) as s:
        code, report = bench(s.url, "--timeout", "30")
    assert code == 10
    assert said in report["error"]["what"] and "Not enough data" in report["error"]["why"], report["error"]
