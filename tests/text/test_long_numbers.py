"""A whole number longer than Python converts (4300 digits), wherever JSON from outside is read:
our own what, why and fix about the file or the server, never CPython's advice to call
sys.set_int_max_str_digits (issue 23, item 10c)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_BAD_INPUT, EXIT_BENCH_FAILED

from support.bench_standin import NotSGLang, ScriptedClock, StandIn, eagle3_script
from support.cli import invoke_bench, invoke_main
from support.hub_standin import StandInHub
from support.releases import install_release
from support.serve_fixtures import (
    HUB_REPO, drafter_config, serve, standin_env, write_drafter, write_header, write_target,
)


NUMBER = "9" * 5000
ADVICE = "int_max_str_digits"
OURS = "whole number of more than 4,300 digits"
HEADER = b'{"d2t": {"dtype": "I64", "shape": [' + NUMBER.encode() + b'], "data_offsets": [0, 8]}}'
ARGS = ["--bucket", "chat", "--max-new-tokens", "8", "--runs", "2", "--warmup", "0"]


def with_number(document: dict, key: str) -> str:
    """``document`` as JSON, with ``key``'s value a 5000-digit number."""
    return json.dumps({**document, key: 0}).replace(f'"{key}": 0', f'"{key}": {NUMBER}')


def assert_ours(*outputs: str) -> None:
    text = "".join(outputs)
    assert ADVICE not in text and "internal error" not in text, text[-2000:]
    assert OURS in text, text[-2000:]


def dry_run(site, tmp_path: Path, drafter: Path, model: Path | None = None):
    model = model or write_target(tmp_path / "model")
    return site("0.5.21").invoke("serve", "--model", str(model), "--drafter", str(drafter), "--dry-run", "--json")


def test_a_drafter_config_number_past_pythons_limit_is_bad_input_in_our_words(site, tmp_path):
    drafter = write_drafter(tmp_path / "drafter")
    (drafter / "config.json").write_text(with_number(drafter_config(), "hidden_size"))
    result = dry_run(site, tmp_path, drafter)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert f"{drafter / 'config.json'} is not readable JSON" in result.stderr
    assert "Re-download the file, or correct that value." in result.stderr
    assert_ours(result.stderr, result.stdout)


@pytest.mark.slow  # read_json, as the drafter's
def test_a_target_config_number_past_pythons_limit_is_bad_input_in_our_words(site, tmp_path):
    model = write_target(tmp_path / "model")
    (model / "config.json").write_text(with_number(json.loads((model / "config.json").read_text()), "vocab_size"))
    result = dry_run(site, tmp_path, write_drafter(tmp_path / "drafter"), model)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert_ours(result.stderr, result.stdout)


@pytest.mark.slow  # one more file read through jsontext
def test_a_safetensors_header_number_past_pythons_limit_is_bad_input_in_our_words(site, tmp_path):
    drafter = write_drafter(tmp_path / "drafter")
    write_header(drafter / "model.safetensors", HEADER)
    result = dry_run(site, tmp_path, drafter)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "safetensors header is not valid JSON" in result.stderr
    assert_ours(result.stderr, result.stdout)


@pytest.mark.slow  # one more file read through jsontext
def test_a_prompts_file_number_past_pythons_limit_is_bad_input_in_our_words(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(with_number({"text": "Hi"}, "id") + "\n")
    result = invoke_main("bench", "--url", "http://127.0.0.1:1", "--prompts", str(prompts))
    assert result.exit_code == EXIT_BAD_INPUT, result.stderr
    assert f"Line 1 of {prompts} is not a usable prompt." in result.stderr
    assert_ours(result.stderr)


@pytest.mark.slow  # the stream chunk's path
def test_a_server_info_number_past_pythons_limit_is_not_sglang_in_our_words():
    info = with_number({"version": "0.5.23", "model_path": "m"}, "context_length").encode()
    with NotSGLang({"/server_info": info}) as server:
        result = invoke_bench(ScriptedClock(), "--url", server.url, *ARGS, "--json")
    assert result.exit_code == EXIT_BENCH_FAILED, result.stderr
    assert "does not look like SGLang" in json.loads(result.stdout)["error"]["what"]
    assert_ours(result.stderr, result.stdout)


def test_a_stream_chunk_number_past_pythons_limit_is_not_sglang_in_our_words():
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script) as server:
        chunk = with_number({"meta_info": {}}, "output_ids")
        with NotSGLang({"/server_info": json.dumps(server.server_info()).encode(),
                        "/generate": f"data: {chunk}\n\n".encode()}) as odd:
            result = invoke_bench(clock, "--url", odd.url, *ARGS, "--json")
    assert result.exit_code == EXIT_BENCH_FAILED, result.stderr
    assert "a /generate stream chunk was not JSON" in json.loads(result.stdout)["error"]["why"]
    assert_ours(result.stderr, result.stdout)


@pytest.mark.slow  # apply, serve twice and status
def test_our_own_records_with_a_number_past_pythons_limit_are_ignored_not_reported(site, private_cache, tmp_path):
    s = site("0.5.21")
    serve = ["serve", "--model", str(write_target(tmp_path / "model")), "--drafter",
             str(write_drafter(tmp_path / "drafter")), "--in-memory", "--dry-run"]
    assert s.invoke(*serve).returncode == 0  # remembers the analysis and the hand-off
    assert s.invoke("apply").returncode == 0
    record = s.file("qwen3_5.py.eagle3-bak.json")
    record.write_text(with_number(json.loads(record.read_text()), "tool_version"))
    memos = [*(private_cache / "eagle3-patch").glob("analysis/*.json"),
             *(private_cache / "eagle3-patch").glob("inmemory/*.json")]
    assert {memo.parent.name for memo in memos} == {"analysis", "inmemory"}
    for memo in memos:
        memo.write_text(with_number({}, "key"))
    status, again = s.invoke("status", "--json"), s.invoke(*serve)
    assert (status.returncode, again.returncode) == (0, 0), status.stderr + again.stderr
    assert json.loads(status.stdout)["state"] == "patched"
    assert ADVICE not in status.stdout + status.stderr + again.stdout + again.stderr


@pytest.mark.slow  # serve as a process against a stand-in Hub
def test_a_hub_header_number_past_pythons_limit_is_bad_input_in_our_words(tmp_path):
    site = tmp_path / "site"
    standin, _, env = standin_env(tmp_path, site, install_release("0.5.12", site))
    env.pop("HF_HUB_OFFLINE")
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    drafter = write_drafter(tmp_path / "repo" / "compressed")
    write_header(drafter / "model.safetensors", HEADER)
    with StandInHub(HUB_REPO, tmp_path / "repo") as hub:
        done = serve(["--python", str(standin), "--model", str(write_target(tmp_path / "target")),
                      "--drafter", "compressed", "--dry-run"], {**env, "HF_ENDPOINT": hub.endpoint})
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert "safetensors header is not valid JSON" in done.stderr  # read as a local header is
    assert_ours(done.stderr)
