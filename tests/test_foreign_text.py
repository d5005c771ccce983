"""Text from outside (a server's answers, a file's values, a long argument) never hangs the tool:
every message quotes a bounded excerpt of it, saying how long it was (issue 23, item 1)."""

from __future__ import annotations

import dataclasses
import json

from bench_standin import ScriptedClock, StandIn, eagle3_script
from conftest import invoke_bench, invoke_main
from deadline import within
from serve_fixtures import drafter_config, write_drafter, write_target

# 1.5 MB of letters: masking's URL pattern took about an hour on it.
LONG = "A" * 1_500_000
SAID = "1,500,000 characters"
ARGS = ["--bucket", "chat", "--max-new-tokens", "8", "--runs", "2", "--warmup", "0"]
# What a message may grow to around a bounded excerpt: far below the megabytes quoted.
BOUND = 8_000


def scripted(**changes):
    return lambda body: dataclasses.replace(eagle3_script(body), **changes)


def test_a_server_error_message_of_megabytes_ends_bench_with_an_excerpt():
    clock = ScriptedClock()
    with StandIn(clock, scripted(chunk_fields={"error": {"message": LONG}})) as server, within(30):
        result = invoke_bench(clock, "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr[:BOUND]
    error = json.loads(result.stdout)["error"]
    assert "reported an error during generation" in error["what"] and SAID in error["why"]
    assert len(result.stderr) < BOUND and len(json.dumps(error)) < BOUND


def test_a_drafter_config_string_of_megabytes_ends_serve_dry_run_with_an_excerpt(site, tmp_path):
    s = site("0.5.21")
    drafter = write_drafter(tmp_path / "drafter", config=drafter_config(architectures=LONG))
    model = write_target(tmp_path / "model")
    with within(30):
        result = s.invoke("serve", "--model", str(model), "--drafter", str(drafter), "--dry-run")
    assert result.returncode == 8, result.stderr[:BOUND]
    # The value is quoted as JSON, so a string reads as one: its quotes are counted.
    assert "field `architectures`" in result.stderr and "1,500,002 characters" in result.stderr
    assert len(result.stderr) < BOUND


def test_a_repeated_prompt_id_of_megabytes_is_refused_with_an_excerpt(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    line = json.dumps({"id": LONG, "text": "Hi"})
    prompts.write_text(f"{line}\n{line}\n")
    with within(30):
        result = invoke_main("bench", "--url", "http://127.0.0.1:1", "--prompts", str(prompts))
    assert result.exit_code == 8, result.stderr[:BOUND]
    assert "repeats the prompt id" in result.stderr and SAID in result.stderr
    assert len(result.stderr) < BOUND


def test_an_unknown_bucket_of_megabytes_is_refused_with_an_excerpt():
    with within(30):
        result = invoke_main("bench", "--url", "http://127.0.0.1:1", "--bucket", LONG)
    assert result.exit_code == 8, result.stderr[:BOUND]
    assert "No prompts in bucket(s)" in result.stderr and SAID in result.stderr
    assert len(result.stderr) < BOUND


# Patterns read SGLang's own files too; \s in a multi-line pattern spanned a whole blank run
# from each of its lines.
BLANK_RUN = "\n" * 1_500_000


def test_a_version_file_with_a_long_blank_run_is_read_in_time(site):
    s = site("0.5.21")
    version_py = s.package / "_version.py"
    version_py.write_text(BLANK_RUN + version_py.read_text())
    with within(30):
        result = s.invoke("status", "--json")
    assert json.loads(result.stdout)["sglang_version"] == "0.5.21", result.stderr


def test_sglang_argument_sources_with_a_long_blank_run_are_read_in_time(site, tmp_path):
    s = site("0.5.21")
    for source in (s.package / "srt" / "server_args.py", s.package / "srt" / "environ.py"):
        source.write_text(BLANK_RUN + source.read_text())
    drafter, model = write_drafter(tmp_path / "drafter"), write_target(tmp_path / "model")
    with within(30):
        result = s.invoke("serve", "--model", str(model), "--drafter", str(drafter), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "defines --mamba-radix-cache-strategy" in result.stdout
    assert "sglang/srt/environ.py does not declare SGLANG_ENABLE_SPEC_V2" in result.stdout
