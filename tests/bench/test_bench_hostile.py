"""Servers that misbehave: `bench` ends with a clear message and the right exit code, never hangs.

Issue 10, items 7-9: keep-alive comments forever, streams past max_new_tokens, malformed
fields, a port that accepts connections but never answers, and URLs that name no server.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from eagle3_patch.cli import main
from eagle3_patch.errors import BadInput, BenchFailed

from support.bench_standin import NotSGLang, ScriptedClock, StandIn, eagle3_script
from support.cli import bench_with_clock, invoke_bench
from support.deadline import within


ARGS = ["--bucket", "chat", "--max-new-tokens", "8", "--runs", "2", "--warmup", "0"]


def run(clock, *args):
    return CliRunner().invoke(bench_with_clock(clock), [*args])


def scripted(**changes):
    return lambda body: dataclasses.replace(eagle3_script(body), **changes)


def test_keep_alive_comments_cannot_hold_a_request_past_timeout():
    clock = ScriptedClock()
    # Pings arrive 40 times per --timeout, so only a whole-request bound can end this.
    with StandIn(clock, scripted(ping_after_chunks=1, ping_every=0.3 / 40)) as server:
        result = invoke_bench(clock, "--url", server.url, *ARGS, "--timeout", "0.3", "--json")
    assert result.exit_code == 10, result.stderr
    report = json.loads(result.stdout)
    assert "took longer than 0.3 s in all (--timeout)" in report["error"]["why"]
    assert report["partial"] is True and report["requests"] == [] and report["exit_code"] == 10


def test_a_stream_that_goes_silent_ends_at_timeout():
    clock = ScriptedClock()
    with StandIn(clock, scripted(hold_after_chunks=1)) as server:
        result = run(clock, "--url", server.url, *ARGS, "--timeout", "0.25")
    assert isinstance(result.exception, BenchFailed), result.output
    assert "stopped before the generation finished (1 tokens received)" in result.exception.what
    assert "took longer than 0.25 s in all (--timeout)" in result.exception.why


def overrun(body):
    """Chunks of one token that go on past max_new_tokens."""
    n = body["sampling_params"]["max_new_tokens"] + 20
    script = eagle3_script({**body, "sampling_params": {"max_new_tokens": n}})
    return dataclasses.replace(script, chunk_sizes=[1] * n, verify_ct=None)


def test_a_stream_past_max_new_tokens_is_a_server_error_saying_so():
    clock = ScriptedClock()
    with StandIn(clock, overrun) as server:
        result = run(clock, "--url", server.url, *ARGS)
    assert isinstance(result.exception, BenchFailed), result.output
    assert result.exception.exit_code == 10
    assert "kept generating past max_new_tokens=8 (9 tokens received)" in result.exception.what


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"chunk_fields": {"output_ids": ["x"]}}, "'output_ids'"),
        ({"chunk_fields": {"output_ids": "1,2,3"}}, "'output_ids'"),
        ({"chunk_fields": {"meta_info": "oops"}}, "'meta_info'"),
        ({"meta_fields": {"completion_tokens": "lots"}}, "'meta_info.completion_tokens'"),
        ({"meta_fields": {"completion_tokens": True}}, "'meta_info.completion_tokens'"),
        ({"meta_fields": {"completion_tokens": -1}}, "'meta_info.completion_tokens'"),
        ({"meta_fields": {"spec_verify_ct": 2.5}}, "'meta_info.spec_verify_ct'"),
        ({"meta_fields": {"finish_reason": 7}}, "'meta_info.finish_reason'"),
        ({"meta_fields": {"finish_reason": {"type": 7}}}, "'meta_info.finish_reason'"),
        ({"meta_fields": {"finish_reason": {"length": 8}}}, "'meta_info.finish_reason'"),
    ],
    ids=["ids-strings", "ids-text", "meta-text", "count-text", "count-bool", "count-negative",
         "verify-float", "finish-number", "finish-type-number", "finish-without-type"],
)
def test_malformed_stream_fields_are_not_sglang_and_name_the_field(changes, field):
    clock = ScriptedClock()
    with StandIn(clock, scripted(**changes)) as server:
        result = run(clock, "--url", server.url, *ARGS)
    assert isinstance(result.exception, BenchFailed), result.output
    assert result.exception.exit_code == 10
    assert "does not look like SGLang" in result.exception.what
    assert field in result.exception.why


def test_a_cumulative_token_count_that_decreases_is_a_malformed_stream():
    clock = ScriptedClock()
    # --max-new-tokens 8 is sent as chunks of 1, 3, 3, 1 tokens; the third claims fewer than the second.
    with StandIn(clock, scripted(reported_counts=[1, 4, 2, 8])) as server:
        result = invoke_bench(clock, "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr
    report = json.loads(result.stdout)
    assert "does not look like SGLang" in report["error"]["what"]
    assert "'meta_info.completion_tokens' went down from 4 to 2" in report["error"]["why"]
    assert report["requests"] == [] and report["exit_code"] == 10


def test_a_stream_line_longer_than_any_sglang_chunk_is_not_sglang():
    clock = ScriptedClock()
    with StandIn(clock, scripted(chunk_fields={"text": "x" * 5_000_000})) as server:
        result = run(clock, "--url", server.url, *ARGS)
    assert isinstance(result.exception, BenchFailed), result.output
    assert "does not look like SGLang" in result.exception.what
    assert "stream was malformed" in result.exception.why


# Valid JSON that Python's decoder cannot hold: it raises RecursionError, not ValueError.
DEEP = b"[" * 100_000 + b"]" * 100_000
INFO = json.dumps({"version": "0.5.23", "model_path": "m"}).encode()


@pytest.mark.parametrize("answers", [
    {"/server_info": DEEP},
    {"/server_info": INFO, "/generate": b"data: " + DEEP + b"\n\n"},
], ids=["server-info", "stream-chunk"])
def test_json_nested_past_pythons_recursion_limit_is_not_sglang_exit_10(answers):
    with NotSGLang(answers) as server:
        result = invoke_bench(ScriptedClock(), "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr
    report = json.loads(result.stdout)
    assert "does not look like SGLang" in report["error"]["what"] and report["exit_code"] == 10


def test_a_port_that_accepts_but_never_answers_is_reported_as_connected_and_timed_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel completes the handshake; nobody ever reads or answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        result = run(ScriptedClock(), "--url", url, *ARGS, "--timeout", "0.1")
    assert isinstance(result.exception, BenchFailed), result.output
    message = result.exception.message
    assert f"Connected to {url}, but GET /server_info got no answer within 0.1 s." in message
    assert "Cannot reach" not in message


def test_a_host_name_the_resolver_never_answers_ends_at_timeout_saying_so(monkeypatch):
    answer = threading.Event()
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # a resolver that answers for that name only when the test ends
        if host == "stuck.example":
            answer.wait(60)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    try:
        with within(30):  # the lookup outlived the run: bench ended only when the resolver answered
            started = time.monotonic()
            result = invoke_bench(ScriptedClock(), "--url", "http://stuck.example:30000", *ARGS, "--timeout", "1")
            took = time.monotonic() - started
    finally:
        answer.set()
    assert result.exit_code == 10, result.stderr
    assert took < 20  # the resolver answers after 60 s; a loaded 2-core CI machine gets slack
    assert "looking up its host name took longer than 1 s" in result.stderr and "Connected" not in result.stderr


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://[::1", "does not parse"),
        ("http://[::1]:30000x", "does not parse"),
        ("http://127.0.0.1:99999", "does not parse"),
        ("http://:30000", "names no host"),
        ("http://127.0.0.1:0", "Port 0 names no server"),
        ("ftp://127.0.0.1:30000", "needs http:// or https://"),
        ("127.0.0.1:30000", "needs http:// or https://"),
    ],
    ids=["unclosed-ipv6", "port-not-a-number", "port-out-of-range", "no-host", "port-zero", "ftp", "no-scheme"],
)
def test_a_url_that_names_no_server_is_bad_input_exit_8(url, why, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["bench", "--url", url])
    assert exited.value.code == 8
    err = capsys.readouterr().err
    assert f"error: {url!r} is not a usable HTTP URL." in err and why in err
    assert "--url http://127.0.0.1:30000" in err


def test_a_bad_baseline_url_is_refused_before_any_request():
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script) as server:
        result = run(clock, "--url", server.url, "--baseline-url", "http://127.0.0.1:99999", *ARGS)
    assert isinstance(result.exception, BadInput)
    assert server.bodies == []
