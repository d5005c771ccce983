"""`bench` against servers started with SGLang's --api-key (bearer token on every route).

The stand-in gates requests like ``decide_request_auth`` in ``srt/utils/auth.py`` (0.5.23):
without the right ``Authorization: Bearer <key>`` it answers 401, so a run that measures
anything proves the key went out on /server_info and /generate alike.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from eagle3_patch.bench.client import SGLangClient
from eagle3_patch.errors import BadInput, BenchFailed

from support.bench_standin import ScriptedClock, StandIn, baseline_script, eagle3_script, generate
from support.cli import bench_with_clock
from support.paths import SRC

KEY = "sk-standin-7f3a9c"
ARGS = ["--bucket", "chat", "--max-new-tokens", "10", "--runs", "2", "--warmup", "1"]


@pytest.fixture
def clock():
    return ScriptedClock()


@pytest.fixture(autouse=True)
def no_inherited_key(monkeypatch):
    monkeypatch.delenv("SGLANG_API_KEY", raising=False)


def run(clock, *args, env=None):
    return CliRunner().invoke(bench_with_clock(clock), [*args], env=env)


def test_api_key_is_sent_and_the_run_is_measured_normally(clock):
    with StandIn(clock, eagle3_script, api_key=KEY) as eagle3:
        result = run(clock, "--url", eagle3.url, "--api-key", KEY, *ARGS, "--json")
    assert result.exit_code == 0, result.output
    overall = json.loads(result.stdout)["summary"]["overall"]
    assert overall["eagle3"]["decode_tok_s"]["median"] == 192.0
    assert len(eagle3.bodies) == 1 + 3 * 2


def test_api_key_is_read_from_the_sglang_api_key_environment_variable(clock):
    with StandIn(clock, eagle3_script, api_key=KEY) as eagle3:
        result = run(clock, "--url", eagle3.url, *ARGS, env={"SGLANG_API_KEY": KEY})
    assert result.exit_code == 0, result.output


def test_baseline_uses_the_api_key_unless_given_its_own(clock):
    with (
        StandIn(clock, eagle3_script, api_key=KEY) as eagle3,
        StandIn(clock, baseline_script, speculative=False, api_key=KEY) as same,
        StandIn(clock, baseline_script, speculative=False, api_key="other") as own,
    ):
        shared = run(clock, "--url", eagle3.url, "--baseline-url", same.url, "--api-key", KEY, *ARGS)
        separate = run(clock, "--url", eagle3.url, "--baseline-url", own.url,
                       "--api-key", KEY, "--baseline-api-key", "other", *ARGS)
    assert shared.exit_code == 0, shared.output
    assert separate.exit_code == 0, separate.output


@pytest.mark.parametrize(
    "key_args, what",
    [([], "requires an API key"), (["--api-key", "wrong"], "rejected the API key given")],
    ids=["missing-key", "wrong-key"],
)
def test_refused_key_fails_with_exit_10_and_names_the_api_key_option(clock, key_args, what):
    with StandIn(clock, eagle3_script, api_key=KEY) as eagle3:
        result = run(clock, "--url", eagle3.url, *key_args, *ARGS)
    assert isinstance(result.exception, BenchFailed)
    assert result.exception.exit_code == 10
    message = result.exception.message
    assert what in message and "HTTP 401" in message
    assert "--api-key KEY" in message and "SGLANG_API_KEY" in message
    assert "does not look like SGLang" not in message
    assert eagle3.bodies == []


def test_forbidden_generate_is_reported_as_a_key_problem_too():
    clock = ScriptedClock()
    forbidden = lambda body: dataclasses.replace(eagle3_script(body), http_status=403)  # noqa: E731
    with StandIn(clock, forbidden) as server:
        with pytest.raises(BenchFailed, match="requires an API key \\(POST /generate answered HTTP 403\\)"):
            generate(SGLangClient(server.url, timeout=5, clock=clock), "Hello", 4, ignore_eos=False)


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point's error handler, so stderr is exactly what a user sees."""
    full_env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1", **env}
    return subprocess.run([sys.executable, "-m", "eagle3_patch", "bench", *args],
                          env=full_env, capture_output=True, text=True, timeout=60)


def test_the_key_never_appears_in_stdout_stderr_or_json():
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, api_key=KEY) as eagle3:
        measured = run_cli("--url", eagle3.url, *ARGS, "--json", SGLANG_API_KEY=KEY)
        wrong = run_cli("--url", eagle3.url, *ARGS, "--json", "--api-key", KEY + "-stale")
        wrong_table = run_cli("--url", eagle3.url, *ARGS, "--api-key", KEY + "-stale")
    assert measured.returncode == 0, measured.stderr
    assert json.loads(measured.stdout)["partial"] is False
    assert (wrong.returncode, wrong_table.returncode) == (10, 10)
    assert "rejected the API key given" in json.loads(wrong.stdout)["error"]["what"]
    assert "--api-key KEY" in wrong_table.stderr
    for done in (measured, wrong, wrong_table):
        assert KEY not in done.stdout and KEY not in done.stderr


@pytest.mark.parametrize("key", ["sk-\n", "sk-\x1b[2J", "\x7f"], ids=["newline", "escape", "delete"])
def test_a_key_no_http_header_can_carry_is_bad_input_never_shown(clock, key):
    # aiohttp refused to send it ("header injection"): exit 70 at the first request.
    with StandIn(clock, eagle3_script) as eagle3:
        result = run(clock, "--url", eagle3.url, "--api-key", key, *ARGS)
    assert isinstance(result.exception, BadInput), result.output
    assert "holds a control character" in result.exception.what and key not in result.exception.message
    assert eagle3.bodies == []
