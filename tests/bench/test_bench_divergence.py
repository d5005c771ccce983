"""The divergence follow-up against servers that refuse it or answer it badly.

Issue 23, items 3 and 4: the follow-up asks each server for its top logprobs where the greedy
outputs part. It is a diagnostic extra: a refusal, a timeout or a malformed answer (a logprob that
is no finite number included) leaves that divergence unexplained, with the server's answer as
the reason, and the measured run ends normally with its whole report.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from support.bench_standin import ScriptedClock, StandIn, baseline_script, eagle3_script
from support.cli import invoke_bench
from support.marks import first_fast

POSITION = 7  # every chat prompt's outputs part here
ARGS = ["--bucket", "chat", "--max-new-tokens", "10", "--runs", "2", "--warmup", "0"]


def with_tops(script, runner_up):
    """Each position: the server's own token first, ``token + runner_up`` 0.01 nats behind."""
    script.top_logprobs = [[(t, -0.69), (t + runner_up, -0.70)] for t in script.output_ids]
    return script


def eagle3(**probe):
    def respond(body):
        script = with_tops(eagle3_script(body), +1)
        return dataclasses.replace(script, **probe) if body.get("return_logprob") else script
    return respond


def baseline(**probe):
    def respond(body):
        script = baseline_script(body)
        script.output_ids[POSITION] += 1
        script = with_tops(script, -1)
        return dataclasses.replace(script, **probe) if body.get("return_logprob") else script
    return respond


def bench(eagle3_respond, baseline_respond, *extra):
    clock = ScriptedClock()
    with StandIn(clock, eagle3_respond) as e, StandIn(clock, baseline_respond, speculative=False) as b:
        result = invoke_bench(clock, "--url", e.url, "--baseline-url", b.url, *ARGS, *extra)
        probes = [sum(1 for body in server.bodies if body.get("return_logprob")) for server in (e, b)]
    return result, probes


def finished_whole(result):
    """The run's report, checked to be complete: every request measured, nothing partial."""
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["partial"] is False and report["error"] is None
    assert len(report["requests"]) == 2 * 3 * 2
    assert [d["position"] for d in report["divergences"]] == [POSITION] * 3
    return report


def test_servers_that_answer_the_follow_up_explain_every_divergence():
    report = finished_whole(bench(eagle3(), baseline(), "--json")[0])
    assert [d["verdict"] for d in report["divergences"]] == ["near-tie"] * 3


ENTRIES = "'meta_info.output_top_logprobs' is not [logprob, token id, text] entries"


# NaN and Infinity are Python's extensions to JSON: the answer is not JSON at all.
@pytest.mark.parametrize("logprob, said", first_fast(
    (10**400, ENTRIES), ("-0.5", ENTRIES), (True, ENTRIES), (None, ENTRIES),
    (float("nan"), "NaN is not a JSON number"), (float("-inf"), "-Infinity is not a JSON number"),
), ids=["huge-int", "string", "bool", "null", "nan", "minus-infinity"])
def test_a_logprob_that_is_no_finite_number_leaves_the_divergence_unexplained(logprob, said):
    def tops_with(body):
        script = baseline()(body)
        if script.top_logprobs is not None:
            token = script.output_ids[POSITION]
            script.top_logprobs[POSITION] = [(token, logprob), (token - 1, -0.70)]
        return script

    report = finished_whole(bench(eagle3(), tops_with, "--json")[0])
    first = report["divergences"][0]
    assert first["verdict"] == "unexplained"
    assert first["reason"].startswith("the baseline server's top-logprobs request failed") and said in first["reason"]
    assert first["baseline"] is None


REFUSALS = first_fast(
    pytest.param((400, b'{"error": {"message": "return_logprob is disabled on this server"}}'),
                 ["HTTP 400", "return_logprob is disabled on this server"], id="logprobs-disabled"),
    pytest.param((422, b'{"detail": [{"type": "extra_forbidden", "loc": ["body", "top_logprobs_num"]}]}'),
                 ["HTTP 422", "extra_forbidden", "top_logprobs_num"], id="strict-schema"),
    pytest.param((500, b"Internal Server Error"), ["HTTP 500", "Internal Server Error"], id="server-error"),
    pytest.param((403, b'{"error": "Forbidden"}'), ["HTTP 403"], id="forbidden"),
    pytest.param((307, b""), ["HTTP 307"], id="redirect"),
    pytest.param((200, b"<html>It works!</html>"), ["was not JSON"], id="not-json"),
    pytest.param((200, b'{"meta_info": {}}'), ["names no output token ids"], id="no-ids"),
    pytest.param((200, b'{"text": "x"}'), ["no 'meta_info' object"], id="no-meta"),
)


@pytest.mark.parametrize("reply, said", REFUSALS)
def test_a_refused_follow_up_is_unexplained_with_the_servers_answer_and_the_run_finishes(reply, said):
    result, probes = bench(eagle3(), baseline(logprob_reply=reply), "--json")
    report = finished_whole(result)
    first, *rest = report["divergences"]
    assert first["verdict"] == "unexplained" and first["baseline"] is None
    assert "baseline" in first["reason"] and all(words in first["reason"] for words in said), first["reason"]
    # A server that refused once is not asked again: the run does not wait on it twice.
    assert [d["verdict"] for d in rest] == ["unexplained"] * 2
    assert all("an earlier top-logprobs request" in d["reason"] for d in rest)
    assert probes == [1, 1]


def test_a_follow_up_that_outlasts_timeout_is_unexplained_and_the_run_finishes():
    result, probes = bench(eagle3(), baseline(hold_logprob=True), "--json", "--timeout", "0.5")
    first = finished_whole(result)["divergences"][0]
    assert first["verdict"] == "unexplained"
    assert "got no answer within 0.5 s" in first["reason"]
    assert probes == [1, 1]


def test_the_reason_quotes_a_bounded_excerpt_of_a_huge_refusal():
    result, _ = bench(eagle3(), baseline(logprob_reply=(400, b"x" * 2_000_000)), "--json")
    reason = finished_whole(result)["divergences"][0]["reason"]
    assert "HTTP 400" in reason and "xxxx" in reason and len(reason) < 1000


def test_a_refused_follow_up_in_the_table_reads_unexplained_and_exits_0():
    result, _ = bench(eagle3(), baseline(logprob_reply=(400, b'{"error": "no logprobs here"}')))
    assert result.exit_code == 0, result.stderr
    assert "-> UNEXPLAINED:" in result.stdout and "no logprobs here" in result.stdout
    assert not result.stdout.startswith("PARTIAL")
