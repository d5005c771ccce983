"""Numbers a hostile server sends: counts past any float, impossible acceptance, NaN, wrong types.

Issue 23, item 2: ``spec_num_correct_drafts: 10**400`` ended ``bench --json`` with exit 70. Every
count bench reads has an upper bound (``serverjson.MAX_COUNT``), and a stream that breaks one of
SGLang's own invariants is refused as not SGLang (exit 10), like every other malformed stream.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from eagle3_patch.bench.serverjson import MAX_COUNT

from support.bench_standin import NotSGLang, ScriptedClock, StandIn, eagle3_script
from support.cli import invoke_bench
from support.marks import first_fast

ARGS = ["--bucket", "chat", "--max-new-tokens", "8", "--runs", "2", "--warmup", "0"]
HUGE = 10**400


def acceptance(**meta_fields):
    """The stand-in sends 0.5.21's acceptance fields, with ``meta_fields`` over them."""
    return lambda body: dataclasses.replace(eagle3_script(body), acceptance_release="0.5.21", meta_fields=meta_fields)


def refused(respond, *extra):
    clock = ScriptedClock()
    with StandIn(clock, respond) as server:
        result = invoke_bench(clock, "--url", server.url, *ARGS, *extra, "--json")
    assert result.exit_code == 10, result.stderr
    report = json.loads(result.stdout)
    assert "does not look like SGLang" in report["error"]["what"]
    assert report["exit_code"] == 10 and report["partial"] is True
    return report["error"]["why"]


@pytest.mark.parametrize("field, value", first_fast(
    ("spec_num_correct_drafts", HUGE),
    ("spec_num_proposed_drafts", HUGE),
    ("spec_verify_ct", HUGE),
    ("spec_num_correct_drafts", MAX_COUNT + 1),
    ("spec_correct_drafts_histogram", [HUGE, 1]),
    ("spec_num_correct_drafts", -3),
    ("spec_num_proposed_drafts", 2.5),
    ("spec_correct_drafts_histogram", [1, True]),
), ids=["accepted-huge", "proposed-huge", "verify-huge", "accepted-past-bound", "histogram-huge", "accepted-negative",
        "proposed-float", "histogram-bool"])
def test_a_count_past_the_bound_or_of_the_wrong_type_is_a_malformed_stream_naming_it(field, value):
    assert f"'meta_info.{field}'" in refused(acceptance(**{field: value}))


def test_a_huge_accepted_count_under_load_is_a_malformed_stream_not_an_overflow():
    assert "'meta_info.spec_num_correct_drafts'" in refused(acceptance(spec_num_correct_drafts=HUGE),
                                                           "--concurrency", "1,2")


def test_more_drafts_accepted_than_proposed_is_a_malformed_stream_not_a_rate_above_one():
    why = refused(acceptance(spec_num_correct_drafts=10, spec_num_proposed_drafts=3))
    assert "'meta_info.spec_num_correct_drafts' says 10 drafts were accepted of 3 proposed" in why


@pytest.mark.parametrize("histogram", first_fast([0, 0], []), ids=["zeros", "empty"])
def test_a_histogram_that_counts_no_verify_pass_is_a_malformed_stream(histogram):
    # Under load the table shows each entry's share of all passes: no pass was a ZeroDivisionError.
    why = refused(acceptance(spec_correct_drafts_histogram=histogram), "--concurrency", "1,2")
    assert "'meta_info.spec_correct_drafts_histogram' counts no verify pass" in why


# Each request keeps these in the report: a server could make a --json report of hundreds of MB
# (a million-entry histogram took 46 s and 264 MB for 18 requests).
@pytest.mark.parametrize("respond", first_fast(
    acceptance(spec_correct_drafts_histogram=[1] * 100_000),
    lambda body: dataclasses.replace(eagle3_script(body), finish="stop" * 100_000),
    lambda body: dataclasses.replace(eagle3_script(body), meta_fields={"finish_reason": "length" * 100_000}),
), ids=["histogram", "finish-type", "finish-text"])
def test_a_list_or_word_longer_than_any_sglang_sends_is_a_malformed_stream_with_a_small_report(respond):
    clock = ScriptedClock()
    with StandIn(clock, respond) as server:
        result = invoke_bench(clock, "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert "does not look like SGLang" in report["error"]["what"]
    assert any(name in report["error"]["why"] for name in ("histogram", "finish_reason"))
    assert len(result.stdout) < 20_000


def test_an_acceptance_count_sent_as_null_is_no_acceptance_not_a_crash():
    clock = ScriptedClock()
    with StandIn(clock, acceptance(spec_num_correct_drafts=None)) as server:
        result = invoke_bench(clock, "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 0, result.stderr
    assert [r["acceptance"] for r in json.loads(result.stdout)["requests"]] == [None] * 6


@pytest.mark.parametrize("field, value", first_fast(
    ("output_ids", [1, 2, HUGE]),
    ("output_ids", [1, 2, MAX_COUNT + 1]),
), ids=["huge", "past-bound"])
def test_a_token_id_past_the_bound_is_a_malformed_stream(field, value):
    assert f"'{field}'" in refused(lambda body: dataclasses.replace(eagle3_script(body), chunk_fields={field: value}))


def strict_json(text):
    def refuse(name):
        raise ValueError(f"{name} in bench's own JSON output")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("constant", first_fast(b"NaN", b"Infinity", b"-Infinity"), ids=["nan", "inf", "-inf"])
def test_a_non_standard_json_number_from_a_server_is_not_sglang_and_never_reaches_our_json(constant):
    info = b'{"version": "0.5.23", "model_path": "m", "speculative_algorithm": "EAGLE3", ' \
           b'"speculative_num_steps": %s}' % constant
    with NotSGLang({"/server_info": info}) as server:
        result = invoke_bench(ScriptedClock(), "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr
    report = strict_json(result.stdout)
    assert "GET /server_info did not return JSON" in report["error"]["why"]
    assert "is not a JSON number" in report["error"]["why"]


INFO = json.dumps({"version": "0.5.23", "model_path": "m"}).encode()


@pytest.mark.parametrize("number", first_fast(b"1e999", b"-1e999"), ids=["huge", "minus-huge"])
def test_a_number_past_a_floats_range_is_not_json_and_never_reaches_our_json(number):
    # Python's json reads 1e999 as inf without asking parse_constant; as a finish reason's type it
    # went into --json as Infinity, which no strict JSON reader takes.
    chunk = b'{"output_ids": [1], "meta_info": {"completion_tokens": 1, "finish_reason": {"type": %s}}}' % number
    with NotSGLang({"/server_info": INFO, "/generate": b"data: " + chunk + b"\n\n"}) as server:
        result = invoke_bench(ScriptedClock(), "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr
    report = strict_json(result.stdout)
    assert "a /generate stream chunk was not JSON (a number past a float's range)" in report["error"]["why"]


SPECULATIVE_INFO = {"version": "0.5.23", "model_path": "m", "speculative_algorithm": "EAGLE3",
                    "speculative_num_steps": 3, "speculative_eagle_topk": 1, "speculative_num_draft_tokens": 4,
                    "speculative_draft_model_path": "d", "incremental_streaming_output": False}


@pytest.mark.parametrize("field, value", first_fast(
    ("incremental_streaming_output", "false"),
    ("version", 5),
    ("model_path", None),
    ("speculative_algorithm", 7),
    ("speculative_num_steps", "3"),
    ("speculative_eagle_topk", 2.5),
    ("speculative_num_draft_tokens", HUGE),
    ("speculative_draft_model_path", ["d"]),
    ("model_path", "Qwen\ud800"),
    ("version", "0.5.\udfff"),
), ids=["incremental-text", "version-number", "model-null", "algorithm-number", "steps-text", "topk-float",
        "draft-tokens-huge", "draft-path-list", "model-half-surrogate", "version-half-surrogate"])
def test_a_server_info_field_of_the_wrong_type_is_not_sglang_and_named(field, value):
    # "false" as text read as true made bench join cumulative chunks as if they were deltas; half a
    # surrogate pair in the model path ended the table (not --json) with a UnicodeEncodeError, exit 70.
    info = json.dumps({**SPECULATIVE_INFO, field: value}).encode()
    with NotSGLang({"/server_info": info}) as server:
        result = invoke_bench(ScriptedClock(), "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr
    report = json.loads(result.stdout)
    assert "does not look like SGLang" in report["error"]["what"]
    assert f"'{field}'" in report["error"]["why"]
    assert report["servers"] == {}


def test_a_duplicate_key_counts_as_its_last_value_as_everywhere_in_json():
    info = b'{"version": "0.5.23", "model_path": "m", "version": {"major": 0}}'
    with NotSGLang({"/server_info": info}) as server:
        result = invoke_bench(ScriptedClock(), "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr
    assert "'version'" in json.loads(result.stdout)["error"]["why"]


def test_half_a_surrogate_pair_from_the_server_never_reaches_the_table():
    # JSON can carry it escaped; writing it to stdout raised UnicodeEncodeError: exit 70.
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, model_path="Qwen\ud800") as server:
        result = invoke_bench(clock, "--url", server.url, *ARGS)
    assert result.exit_code == 10, result.stderr
    assert "its /server_info's 'model_path' is not text" in result.stderr
