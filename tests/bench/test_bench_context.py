"""`bench` reads each server's context length before the first request and skips, with a note,
the prompts that cannot fit it, instead of ending the run when the server refuses one.

Issue 17, G: against a server started with a short --context-length, four requests ran and then
the whole run ended (exit 10, "The input (2135 tokens) is longer than the model's context length").
The stand-in counts one token per word, reserves EAGLE's draft slots (4 at the chain config) and
refuses a request that does not fit exactly as SGLang's TokenizerManager does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.errors import BadInput

from support.bench_standin import ScriptedClock, StandIn, baseline_script, eagle3_script
from support.cli import bench_with_clock

ARGS = ["--max-new-tokens", "8", "--runs", "2", "--warmup", "1"]


def prompts_file(tmp_path: Path, **words: int) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": pid, "text": " ".join(["w"] * n)}) + "\n" for pid, n in words.items()))
    return path


def run(clock, *args):
    return CliRunner().invoke(bench_with_clock(clock), [*args])


def test_a_prompt_longer_than_the_context_is_skipped_up_front_with_a_note(tmp_path: Path) -> None:
    # Context 64: 40 words + 4 reserved + 8 new fit; 60 words do not (72 > 64).
    prompts = prompts_file(tmp_path, short=10, medium=40, long=60)
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, context_length=64) as eagle3:
        result = run(clock, "--url", eagle3.url, "--prompts", str(prompts), *ARGS, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {r["prompt_id"] for r in report["requests"]} == {"short", "medium"}
    assert all(len(body["text"].split()) < 60 for body in eagle3.bodies)
    note = next(n for n in report["notes"] if "cannot fit" in n)
    assert f"{eagle3.url}" in note and "context length of 64 tokens" in note and "long (60 tokens)" in note
    assert "--max-new-tokens 8" in note
    # Said before the first request, not only in the report at the end.
    assert result.stderr.index("cannot fit") < result.stderr.index("warm-up")


def test_the_context_of_the_baseline_counts_too(tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path, short=10, long=40)
    clock = ScriptedClock()
    with (
        StandIn(clock, eagle3_script) as eagle3,
        StandIn(clock, baseline_script, speculative=False, context_length=32, context_length_flag=32) as baseline,
    ):
        result = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, "--prompts", str(prompts),
                     *ARGS, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {r["prompt_id"] for r in report["requests"]} == {"short"}
    assert any(baseline.url in n and "long (40 tokens)" in n for n in report["notes"])


def test_when_no_prompt_fits_the_run_is_refused_before_the_first_request(tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path, a=60, b=70)
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, context_length=64) as eagle3:
        result = run(clock, "--url", eagle3.url, "--prompts", str(prompts), *ARGS)

    assert isinstance(result.exception, BadInput), result.output
    assert result.exception.exit_code == 8
    assert "No prompt fits the context length of 64 tokens" in result.exception.what
    assert eagle3.bodies == []


def test_the_built_in_prompts_against_a_short_context_run_to_the_end() -> None:
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, context_length=300, context_length_flag=300) as eagle3:
        result = run(clock, "--url", eagle3.url, *ARGS, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["requests"] and any("cannot fit" in n for n in report["notes"])


@pytest.mark.parametrize("route", ["/v1/tokenize", "/v1/models"])
def test_a_server_that_cannot_say_its_context_is_measured_with_a_note(route: str, tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path, short=10)
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, missing_routes=(route,)) as eagle3:
        result = run(clock, "--url", eagle3.url, "--prompts", str(prompts), *ARGS, "--json")

    assert result.exit_code == 0, result.output
    assert any("not checked against" in n for n in json.loads(result.stdout)["notes"])
