"""Text from outside (a server's answers, a file's values, a long argument) never hangs the tool:
every message quotes a bounded excerpt of it, saying how long it was (issue 23, item 1)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from support.bench_standin import ScriptedClock, StandIn, eagle3_script
from support.cli import invoke_bench, invoke_main
from support.deadline import within
from support.marks import first_fast
from support.printable import assert_printable
from support.serve_fixtures import drafter_config, write_drafter, write_target



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


@pytest.mark.slow  # the same path as the bucket's: BadInput quoting a value from bench's inputs
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


# Issue 23, item 6: what a server can make a terminal do, were its words printed raw.
SET_TITLE, CLEAR_SCREEN = "\x1b]0;title\x07", "\x1b[2J"
HOSTILE = f"{SET_TITLE}{CLEAR_SCREEN}"


def test_server_info_texts_are_printed_escaped_and_kept_in_json():
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, model_path=f"Qwen{SET_TITLE}", version=f"0.5{CLEAR_SCREEN}") as server:
        table = invoke_bench(clock, "--url", server.url, *ARGS)
        as_json = invoke_bench(clock, "--url", server.url, *ARGS, "--json")
    assert (table.exit_code, as_json.exit_code) == (0, 0), table.stderr + as_json.stderr
    assert_printable(table.stdout, table.stderr, as_json.stderr)
    assert "Qwen\\x1b]0;title\\x07" in table.stdout and "SGLang 0.5\\x1b[2J" in table.stdout
    info = json.loads(as_json.stdout)["servers"]["eagle3"]
    assert (info["model_path"], info["version"]) == (f"Qwen{SET_TITLE}", f"0.5{CLEAR_SCREEN}")


ESCAPED = "\\x1b]0;title\\x07\\x1b[2J"
# A message is quoted as it reads; an error without one, as its JSON.
STREAM_FAILURES = {
    "error-message": ({"chunk_fields": {"error": {"message": HOSTILE}}}, ESCAPED),
    "error-object": ({"chunk_fields": {"error": {"code": HOSTILE}}}, "\\u001b]0;title\\u0007\\u001b[2J"),
    "abort-message": ({"meta_fields": {"finish_reason": {"type": "abort", "message": HOSTILE}}}, ESCAPED),
}


@pytest.mark.parametrize(("changes", "quoted"), first_fast(*(pytest.param(*case, id=name)
                                                             for name, case in STREAM_FAILURES.items())))
def test_what_a_failing_stream_says_is_printed_escaped(changes, quoted):
    clock = ScriptedClock()
    with StandIn(clock, scripted(**changes)) as server:
        text = invoke_bench(clock, "--url", server.url, *ARGS)
        as_json = invoke_bench(clock, "--url", server.url, *ARGS, "--json")
    assert text.exit_code == as_json.exit_code == 10, text.stderr
    assert_printable(text.stdout, text.stderr, as_json.stderr)
    assert quoted in text.stderr and quoted in json.loads(as_json.stdout)["error"]["why"]


def test_prompt_ids_and_buckets_from_a_prompts_file_are_printed_escaped(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": f"id{SET_TITLE}", "bucket": f"b{CLEAR_SCREEN}", "text": "Hi there"}) + "\n")
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script) as server:
        result = invoke_bench(clock, "--url", server.url, "--prompts", str(prompts), *ARGS[2:])
    assert result.exit_code == 0, result.stderr
    assert_printable(result.stdout, result.stderr)
    assert "id\\x1b]0;title\\x07" in result.stdout and "b\\x1b[2J" in result.stdout


def test_what_a_python_that_does_not_answer_printed_is_quoted_escaped(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nprintf '{SET_TITLE}{CLEAR_SCREEN}\\302\\233 bidi \\342\\200\\256\\n' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = invoke_main("status", "--python", str(fake))
    assert result.exit_code == 3, result.stderr
    assert_printable(result.stderr)
    assert "\\x1b]0;title\\x07\\x1b[2J\\x9b bidi \\u202e" in result.stderr


# Issue 23, item 7: a drafter config's lists were quoted whole (7 MB and 818 KB error objects).
HUGE_CONFIGS = {
    "aux-layer-ids": drafter_config(eagle_config={"eagle_aux_hidden_state_layer_ids": list(range(60_000))}),
    "architectures": drafter_config(architectures=["LlamaForCausalLM"] * 1_000_000),
}


@pytest.mark.parametrize("config", first_fast(*(pytest.param(c, id=name) for name, c in HUGE_CONFIGS.items())))
def test_a_drafter_error_object_quotes_a_bounded_excerpt_of_a_huge_value(config, site, tmp_path):
    s = site("0.5.21")
    drafter = write_drafter(tmp_path / "drafter", config=config)
    model = write_target(tmp_path / "model")
    result = s.invoke("serve", "--model", str(model), "--drafter", str(drafter), "--dry-run", "--json")
    assert result.returncode == 8, result.stderr[:BOUND]
    error = json.loads(result.stdout)["error"]
    assert "characters left out" in error["why"]
    assert len(result.stdout) < BOUND and len(result.stderr) < BOUND


HUGE_SERVER_INFO = {
    "model-path": {"model_path": "m" * 1_500_000},
    "version-list": {"version": ["0.5.23"] * 1_000_000},
    "steps-list": {"speculative_num_steps": [3] * 1_000_000},
}


@pytest.mark.parametrize("fields", first_fast(*(pytest.param(f, id=name) for name, f in HUGE_SERVER_INFO.items())))
def test_a_server_info_of_megabytes_is_not_sglang_with_a_bounded_report(fields):
    clock = ScriptedClock()
    standin = StandIn(clock, eagle3_script)
    standin.server_info = lambda: {**StandIn.server_info(standin), **fields}
    with standin as server:
        result = invoke_bench(clock, "--url", server.url, *ARGS, "--json")
    assert result.exit_code == 10, result.stderr[:BOUND]
    report = json.loads(result.stdout)
    assert "does not look like SGLang" in report["error"]["what"] and next(iter(fields)) in report["error"]["why"]
    assert len(result.stdout) < BOUND and len(result.stderr) < BOUND


# Attacks on the fixes above, with what they were not written for.
TOO_LONG = "a" * 5000  # past NAME_MAX and PATH_MAX: stat itself refuses it (ENAMETOOLONG)


@pytest.mark.parametrize("option", first_fast("--drafter", "--model", "--drafter-repo"))
def test_a_path_serve_cannot_look_at_is_bad_input_not_a_bug(option, site, tmp_path):
    s = site("0.5.21")
    paths = {"--model": str(write_target(tmp_path / "model")), "--drafter": str(write_drafter(tmp_path / "drafter"))}
    if option == "--drafter-repo":
        paths["--drafter"] = "compressed"
    args = [arg for name, value in {**paths, option: TOO_LONG}.items() for arg in (name, value)]
    result = s.invoke("serve", *args, "--dry-run")
    assert result.returncode == 8, result.stderr[-BOUND:]
    assert "Cannot look at" in result.stderr and "File name too long" in result.stderr
    assert len(result.stderr) < BOUND


@pytest.mark.slow  # imports matplotlib
def test_a_plot_path_bench_cannot_look_at_is_bad_input_not_a_bug():
    result = invoke_main("bench", "--url", "http://127.0.0.1:1", "--plot", f"{TOO_LONG}/chart.png")
    assert result.exit_code == 8, result.stderr[-BOUND:]
    assert "Cannot write the plot" in result.stderr and "File name too long" in result.stderr


ODD = {"c1-csi": "\x9b2J", "nul": "\x00", "delete": "\x7f", "line-separator": "\u2028",
       "bidi-override": "\u202e", "lone-surrogate": "\ud800", "zero-width": "\u200b"}


@pytest.mark.parametrize("odd", first_fast(*(pytest.param(odd, id=name) for name, odd in ODD.items())))
def test_odd_characters_from_a_server_are_escaped_in_text_and_kept_in_json(odd):
    # Half a surrogate pair is no text: /server_info refuses it as not SGLang's
    # (test_bench_hostile_values), so there only the abort message carries it.
    info_odd = "" if "\ud800" <= odd <= "\udfff" else odd
    clock = ScriptedClock()
    failing = scripted(meta_fields={"finish_reason": {"type": "abort", "message": f"abort{odd}"}})
    with StandIn(clock, eagle3_script, model_path=f"m{info_odd}", version=f"v{info_odd}") as server, \
            StandIn(clock, failing) as aborting:
        table = invoke_bench(clock, "--url", server.url, *ARGS)
        as_json = invoke_bench(clock, "--url", server.url, *ARGS, "--json")
        aborted = invoke_bench(clock, "--url", aborting.url, *ARGS, "--json")
    assert (table.exit_code, as_json.exit_code, aborted.exit_code) == (0, 0, 10), table.stderr + aborted.stderr
    assert_printable(table.stdout, table.stderr, as_json.stdout, as_json.stderr, aborted.stdout, aborted.stderr)
    assert json.loads(as_json.stdout)["servers"]["eagle3"]["model_path"] == f"m{info_odd}"
    escaped = repr(odd)[1:-1]
    assert f"m{repr(info_odd)[1:-1]}" in table.stdout
    assert f"abort{escaped}" in json.loads(aborted.stdout)["error"]["why"]


@pytest.mark.parametrize("odd", first_fast(*(pytest.param(odd, id=name) for name, odd in ODD.items())))
def test_odd_characters_from_files_are_escaped_in_every_message(odd, tmp_path, site):
    prompts = tmp_path / "prompts.jsonl"
    line = json.dumps({"id": f"id{odd}", "bucket": f"b{odd}", "text": "Hi there"})
    prompts.write_text(f"{line}\n{line}\n")
    repeated = invoke_main("bench", "--url", "http://127.0.0.1:1", "--prompts", str(prompts))
    unknown = invoke_main("bench", "--url", "http://127.0.0.1:1", "--bucket", f"x{odd}")
    drafter = write_drafter(tmp_path / "drafter", config=drafter_config(architectures=[f"Llama{odd}"]))
    refused = site("0.5.21").invoke("serve", "--model", str(write_target(tmp_path / "model")),
                                    "--drafter", str(drafter), "--dry-run", "--json")
    assert (repeated.exit_code, unknown.exit_code, refused.returncode) == (8, 8, 8), refused.stderr
    assert_printable(repeated.stderr, unknown.stderr, refused.stdout, refused.stderr)
    assert f"id{repr(odd)[1:-1]}" in repeated.stderr and f"x{repr(odd)[1:-1]}" in unknown.stderr
    assert json.loads(refused.stdout)["exit_code"] == 8


# Options of megabytes reach click's own messages (usage errors) and the URL check; each ends at
# once with a bounded message.
LONG_OPTIONS = {
    "max-new-tokens": ["--max-new-tokens", LONG],
    "timeout-digits": ["--timeout", "1" * 1_500_000],
    "url": ["--url", "http://" + LONG],
    "url-port": ["--url", "http://h:" + "1" * 1_500_000],
    "no-such-option": ["--" + LONG],
}


@pytest.mark.parametrize("args", first_fast(*(pytest.param(args, id=name) for name, args in LONG_OPTIONS.items())))
def test_an_option_of_megabytes_is_refused_at_once_with_a_bounded_message(args):
    with within(30):
        result = invoke_main("bench", "--url", "http://127.0.0.1:1", *args, "--json")
    assert result.exit_code in (2, 8), result.stderr[-BOUND:]
    assert len(result.stderr) < BOUND and len(result.stdout) < BOUND
    assert "characters left out" in result.stderr and json.loads(result.stdout)["exit_code"] == result.exit_code


@pytest.mark.parametrize("timeout", first_fast("inf", "1e400", "nan", "0", "-1"))
def test_a_timeout_that_is_no_finite_number_of_seconds_is_a_usage_error(timeout):
    result = invoke_main("bench", "--url", "http://127.0.0.1:1", "--timeout", timeout)
    assert result.exit_code == 2, result.stderr
    assert "is not a finite number of seconds above 0" in result.stderr


@pytest.mark.parametrize("host", first_fast(pytest.param("a" * 64, id="label-past-63"),
                                            pytest.param("a..b", id="empty-label"),
                                            pytest.param(".a", id="leading-dot")))
def test_a_host_no_resolver_can_look_up_is_bad_input_not_a_bug(host):
    result = invoke_main("bench", "--url", f"http://{host}:30000")
    assert result.exit_code == 8, result.stderr
    assert "is not one a resolver can look up" in result.stderr


def test_what_a_models_code_raises_is_quoted_escaped_and_bounded_by_status(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    text = s.read()
    ours = text.index(b"def set_eagle3_layers_to_capture", text.index(b"[EAGLE3-PATCH]"))
    body = text.index(b":\n", ours) + 2
    indent = text[body:body + 20][:len(text[body:body + 20]) - len(text[body:body + 20].lstrip())]
    s.file().write_bytes(text[:body] + indent + b"raise ValueError('\\x1b]0;title\\x07' + 'A' * 20_000)\n"
                         + text[body:])
    status, as_json = s.invoke("status"), s.invoke("status", "--json")
    assert status.returncode == as_json.returncode == 0, status.stderr
    assert_printable(status.stdout, status.stderr)
    # ValueError's name and the escape sequence are counted with the message.
    assert "raised ValueError: \\x1b]0;title\\x07AAA" in status.stdout and "20,022 characters" in status.stdout
    assert len(status.stdout) < BOUND and len(as_json.stdout) < BOUND
    details = [h["detail"] for f in json.loads(as_json.stdout)["files"] for h in f["hooks"]]
    assert any("20,022 characters" in detail for detail in details)


@pytest.mark.slow  # imports matplotlib
@pytest.mark.parametrize("concurrency", [[], ["--concurrency", "1,2"]], ids=["per-bucket", "under-load"])
def test_a_chart_shows_what_a_server_and_a_prompts_file_wrote_as_text(concurrency, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"bucket": "$x^{$", "text": "Hi there"}) + "\n")
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script, model_path="$\\frac{$", version=f"0.5{SET_TITLE}") as server:
        result = invoke_bench(clock, "--url", server.url, "--prompts", str(prompts), *ARGS[2:], *concurrency,
                              "--plot", str(tmp_path / "chart.png"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "chart.png").stat().st_size > 0


def test_a_backup_record_edited_to_carry_escape_sequences_is_corrupt_not_quoted(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    record = s.file("qwen3_5.py.eagle3-bak.json")
    record.write_text(json.dumps({**json.loads(record.read_text()), "sglang_version": f"0.5.20{SET_TITLE}"}))
    status = s.invoke("status")
    assert status.returncode == 0, status.stderr
    assert_printable(status.stdout, status.stderr)
    assert f"its record {record} is corrupt" in status.stdout
