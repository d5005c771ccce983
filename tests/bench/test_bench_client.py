"""The SGLang streaming client against the loopback stand-in."""

from __future__ import annotations

import dataclasses

import pytest

from eagle3_patch.bench.client import SGLangClient
from eagle3_patch.bench.stream import Chunk
from eagle3_patch.errors import BadInput, BenchFailed

from support.bench_standin import (
    NotSGLang,
    ScriptedClock,
    StandIn,
    baseline_script,
    eagle3_script,
    generate,
    server_info,
    token_ids,
)
from support.ports import free_port


def test_request_body_is_greedy_streamed_and_passes_sglang_contract():
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script) as server:
        generate(SGLangClient(server.url, timeout=5, clock=clock), "Hello", 8, ignore_eos=True)
    assert server.bodies == [
        {
            "text": "Hello",
            "sampling_params": {"temperature": 0.0, "max_new_tokens": 8, "ignore_eos": True},
            "stream": True,
        }
    ]


def test_recording_carries_scripted_chunk_times_and_final_meta():
    clock = ScriptedClock(start=100.0)
    with StandIn(clock, eagle3_script) as server:
        rec = generate(SGLangClient(server.url, timeout=5, clock=clock), "Hello", 7, ignore_eos=False)
    # eagle3_script: ttft 1/16, then one chunk every 1/64 s; sizes 1, 3, 3.
    assert rec.sent_at == 100.0
    assert rec.chunks == [Chunk(100.0625, 1), Chunk(100.078125, 4), Chunk(100.09375, 7)]
    assert rec.output_ids == token_ids("Hello", 7)
    assert rec.meta_info["spec_verify_ct"] == 2
    assert rec.meta_info["finish_reason"] == {"type": "length", "length": 7}


def test_incremental_streaming_output_deltas_are_joined():
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, incremental=True) as server:
        client = SGLangClient(server.url, timeout=5, clock=clock)
        assert server_info(client).incremental_streaming_output
        rec = generate(client, "Hello", 10, ignore_eos=False)
    assert rec.output_ids == token_ids("Hello", 10)
    assert [c.completion_tokens for c in rec.chunks] == [1, 4, 7, 10]


def test_server_info_reports_the_speculative_configuration():
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, version="0.5.23") as server:
        info = server_info(SGLangClient(server.url + "/", timeout=5, clock=clock))
    assert info.url == server.url
    assert (info.model_path, info.version, info.speculative_algorithm) == ("Qwen/Qwen3.6-27B", "0.5.23", "EAGLE3")
    assert (info.speculative_num_steps, info.speculative_eagle_topk, info.speculative_num_draft_tokens) == (3, 1, 4)
    assert "EAGLE3 steps=3 topk=1 draft_tokens=4; SGLang 0.5.23" in info.describe()


def test_plain_server_reports_no_speculative_decoding():
    clock = ScriptedClock()
    with StandIn(clock, baseline_script, speculative=False) as server:
        info = server_info(SGLangClient(server.url, timeout=5, clock=clock))
    assert not info.speculative
    assert "no speculative decoding" in info.describe()


def test_unreachable_server_raises_bench_failed():
    client = SGLangClient(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(BenchFailed, match="Cannot reach the server") as caught:
        server_info(client)
    assert caught.value.exit_code == 10
    assert "eagle3-patch serve" in caught.value.fix


def test_a_web_server_that_is_not_sglang_is_named_as_such():
    with NotSGLang() as server:
        with pytest.raises(BenchFailed, match="does not look like SGLang"):
            server_info(SGLangClient(server.url, timeout=5))


def test_url_without_scheme_is_bad_input():
    with pytest.raises(BadInput, match="not a usable HTTP URL"):
        SGLangClient("127.0.0.1:30000", timeout=5)


def scripted(**changes):
    return lambda body: dataclasses.replace(eagle3_script(body), **changes)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"stop_after_chunks": 2}, "stopped before the generation finished \\(4 tokens received\\)"),
        ({"error_after_chunks": 1}, "reported an error during generation"),
        ({"abort_after_chunks": 1}, "aborted a generation after 4 tokens"),
        ({"http_status": 400}, "refused a /generate request with HTTP 400"),
    ],
    ids=["connection-closed", "error-chunk", "abort", "http-error"],
)
def test_a_request_that_fails_raises_bench_failed(changes, message):
    clock = ScriptedClock()
    with StandIn(clock, scripted(**changes)) as server:
        with pytest.raises(BenchFailed, match=message):
            generate(SGLangClient(server.url, timeout=5, clock=clock), "Hello", 10, ignore_eos=False)


def test_proxy_environment_is_ignored_so_timings_are_direct(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script) as server:
        rec = generate(SGLangClient(server.url, timeout=5, clock=clock), "Hello", 4, ignore_eos=False)
    assert rec.output_ids == token_ids("Hello", 4)
