"""With --json every non-zero exit is one object on stdout: {"error": {"what", "why", "fix"}, "exit_code"}.

Through the CLI's real entry point (``cli.main``), in this process: the exit code and
both streams are exactly what a user sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from eagle3_patch.errors import EXIT_OUTPUT
from eagle3_patch.cli import cli
from eagle3_patch.ui.errorreport import run_reported

from support.bench_standin import ScriptedClock, StandIn, eagle3_script
from support.cli import invoke_bench, invoke_main
from support.ports import closed_port_url


CLOSED_URL = "http://127.0.0.1:1"


def one_error(stdout: str, exit_code: int) -> dict:
    """stdout holds exactly one JSON object (json.loads refuses anything after it), and it is an error."""
    report = json.loads(stdout)
    assert report["exit_code"] == exit_code
    assert set(report["error"]) == {"what", "why", "fix"}
    assert all(isinstance(part, str) for part in report["error"].values())
    assert report["error"]["what"] and report["error"]["why"] and report["error"]["fix"], report["error"]
    return report


USAGE_ERRORS = {
    "unknown-option": ["status", "--json", "--bogus"],
    "unknown-option-before-json": ["status", "--bogus", "--json"],
    "run-without-command": ["run", "--json"],
    "run-json-without-dry-run": ["run", "--json", "--", "python3", "-c", "pass"],
    "bench-bad-concurrency": ["bench", "--json", "--url", CLOSED_URL, "--concurrency", "abc"],
    "bench-bad-concurrency-before-json": ["bench", "--concurrency", "abc", "--url", CLOSED_URL, "--json"],
    "bench-without-url": ["bench", "--json"],
    "serve-path-after-dashes": ["serve", "--json", "--dry-run", "--drafter", "d", "--", "--model-path", "/m"],
    "serve-option-before-dashes": ["serve", "--json", "--dry-run", "--drafter", "d", "--tp", "2"],
    "unknown-command": ["statsu", "--json"],
    "json-before-the-command": ["--json", "status"],
    "missing-option-value": ["bench", "--json", "--url"],
}


@pytest.mark.parametrize("args", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_errors_under_json_are_one_error_object(args):
    done = invoke_main(*args)
    assert done.exit_code == 2, done.stderr
    one_error(done.stdout, 2)
    # A person reading stderr still gets click's usage text.
    assert "Error:" in done.stderr and "Traceback" not in done.stderr


def _refused_command_lines() -> dict[str, tuple[list[str], list[str]]]:
    """What click refuses, for the group and every command: an unknown option, each option without its
    value, each typed option given a word, the command without what it requires. Each as (before
    ``--json``, after it)."""
    lines = {"unknown-option": ([], ["--no-such-option"]), "unknown-command": ([], ["no-such-command"])}
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        options = [p for p in command.params if isinstance(p, click.Option) and not p.is_flag]
        given = [word for p in options if p.required for word in (p.opts[0], CLOSED_URL)]
        if not command.context_settings.get("ignore_unknown_options"):  # run: COMMAND's options
            lines[f"{name}-unknown-option"] = ([name], ["--no-such-option"])
        if any(p.required for p in command.params):
            lines[f"{name}-without-what-it-requires"] = ([name], [])
        for option in options:
            lines[f"{name}-{option.opts[0]}-without-a-value"] = ([name], [option.opts[0]])
            if not isinstance(option.type, (click.types.StringParamType, click.Path)):
                lines[f"{name}-{option.opts[0]}-a-word"] = ([name], [*given, option.opts[0], "a-word"])
    return lines


REFUSED = _refused_command_lines()


def said_in_full(before: list[str], after: list[str]) -> int:
    """Run ``before + after`` with ``--json`` between them and without it: one error object with a what,
    a why and a fix, and the same three on stderr, which a person reads either way. The exit code."""
    as_json = invoke_main(*before, "--json", *after)
    error = one_error(as_json.stdout, as_json.exit_code)["error"]
    assert error["what"] in as_json.stderr and error["why"] in as_json.stderr, as_json.stderr
    # A usage error shows click's own pointer to --help instead of our fix's two lines.
    assert error["fix"] in as_json.stderr or (as_json.exit_code == 2 and "for help." in as_json.stderr)
    as_text = invoke_main(*before, *after)
    assert as_text.exit_code == as_json.exit_code and "Traceback" not in as_text.stderr
    if before:  # --json after the command's name changes what goes to stdout, and nothing else
        assert as_text.stderr == as_json.stderr
    else:  # before it, --json is what the group refuses
        assert "refused its command line before doing anything" in as_text.stderr
    return as_json.exit_code


@pytest.mark.parametrize("before, after", REFUSED.values(), ids=REFUSED.keys())
def test_every_usage_error_of_every_command_says_what_why_and_the_fix(before, after):
    assert said_in_full(before, after) == 2


def test_the_sweep_covers_every_command_and_every_option_that_takes_a_value():
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        for param in cli.get_command(ctx, name).params:
            if isinstance(param, click.Option) and not param.is_flag:
                assert f"{name}-{param.opts[0]}-without-a-value" in REFUSED
    assert len(REFUSED) > 40


OTHER_ERRORS = {
    "no-sglang": (["status"], ["--sglang-dir", "/nonexistent/sglang"], 3),
    "python-not-an-interpreter": (["apply"], ["--python", "/nonexistent/python3"], 3),
    "run-no-sglang": (["run", "--sglang-dir", "/nonexistent/sglang", "--dry-run"], ["--", "python3", "-c", "pass"], 3),
    "bench-bad-url": (["bench"], ["--url", "http://[::1"], 8),
    "bench-nothing-listening": (["bench"], ["--url", CLOSED_URL], 10),
}


@pytest.mark.parametrize("before, after, code", OTHER_ERRORS.values(), ids=OTHER_ERRORS.keys())
def test_other_refusals_say_what_why_and_the_fix_as_text_and_as_json(before, after, code):
    assert said_in_full(before, after) == code


def test_check_says_why_a_file_with_only_a_stray_marker_is_damaged(site):
    # Every hook works, so no hook's problem said why: the "why" was empty.
    s = site("0.5.23")
    s.file().write_bytes(s.read() + b"\n# [EAGLE3-PATCH] left behind by hand\n")
    done = s.invoke("check", "--json")
    assert done.returncode == 1, done.stderr
    assert "stray [EAGLE3-PATCH] comments at lines" in one_error(done.stdout, 1)["error"]["why"]


def test_a_usage_error_object_says_what_click_said_and_where_to_look():
    report = one_error(invoke_main("status", "--json", "--bogus").stdout, 2)
    assert "--bogus" in report["error"]["what"]
    assert "eagle3-patch status --help" in report["error"]["fix"]


def test_usage_errors_without_json_leave_stdout_empty():
    done = invoke_main("status", "--bogus")
    assert done.exit_code == 2 and done.stdout == ""


@pytest.mark.parametrize("args", [
    ["run", "--sglang-dir", "/nonexistent/sglang", "python3", "-c", "pass", "--json"],
    ["run", "--sglang-dir", "/nonexistent/sglang", "--", "python3", "--json"],
], ids=["command-without-dashes", "command-after-dashes"])
def test_json_inside_runs_command_belongs_to_that_command(args):
    done = invoke_main(*args)
    assert done.exit_code == 3, done.stderr
    assert done.stdout == ""


def test_bench_bad_url_under_json_is_one_error_object():
    done = invoke_main("bench", "--json", "--url", "http://[::1")
    assert done.exit_code == 8
    assert "not a usable HTTP URL" in one_error(done.stdout, 8)["error"]["what"]


def test_bench_missing_prompts_file_under_json_is_one_error_object(tmp_path):
    done = invoke_main("bench", "--json", "--url", CLOSED_URL, "--prompts", str(tmp_path / "none.jsonl"))
    assert done.exit_code == 8
    assert "prompts file" in one_error(done.stdout, 8)["error"]["what"]


def test_bench_plot_without_matplotlib_under_json_is_one_error_object(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    done = invoke_main("bench", "--json", "--url", CLOSED_URL, "--plot", str(tmp_path / "x.png"))
    assert done.exit_code == 8
    assert "matplotlib" in one_error(done.stdout, 8)["error"]["what"]


def test_bench_failure_under_json_puts_the_error_object_beside_the_partial_results():
    done = invoke_main("bench", "--json", "--url", closed_port_url())
    assert done.exit_code == 10
    report = one_error(done.stdout, 10)
    assert "Cannot reach the server" in report["error"]["what"]
    assert report["partial"] is True and report["requests"] == [] and report["schema_version"] == 4


def test_an_interrupt_under_json_is_one_error_object(capsys):
    def interrupted():
        raise KeyboardInterrupt

    code = run_reported(interrupted, cli, ["status", "--json"])
    out, err = capsys.readouterr()
    assert code == 130 and one_error(out, 130)["error"]["what"] == "Interrupted."
    assert err == "Interrupted.\n"


def test_bench_plot_failing_after_measuring_is_still_one_object_with_the_figures(tmp_path):
    clock = ScriptedClock()
    too_long = tmp_path / ("x" * 300 + ".png")  # its folder exists, so only writing it fails
    with StandIn(clock, eagle3_script) as eagle3:
        done = invoke_bench(clock, "--url", eagle3.url, "--bucket", "chat", "--max-new-tokens", "10",
                            "--runs", "2", "--warmup", "0", "--json", "--plot", str(too_long))
    assert done.exit_code == 8, done.stderr
    report = one_error(done.stdout, 8)
    assert "Cannot write the plot" in report["error"]["what"]
    assert report["partial"] is False and len(report["requests"]) == 6


# --- output that cannot be written: the outcome still decides the exit code, no traceback ---

def _eagle3_patch(*args: str, stdout) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eagle3_patch", *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=60)


@pytest.fixture
def reader_gone():
    """A pipe whose reading end is closed: every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    yield write_end
    os.close(write_end)


@pytest.mark.parametrize("where", ["full-disk", "reader-gone"])
def test_an_error_whose_json_cannot_be_written_keeps_its_exit_code_and_prints_no_traceback(
        where, reader_gone):
    with open("/dev/full", "w") as full:
        done = _eagle3_patch("status", "--json", "--bogus",
                             stdout=full if where == "full-disk" else reader_gone)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "No such option '--bogus'" in done.stderr


def test_output_on_a_full_disk_is_an_output_error_not_a_bug():
    with open("/dev/full", "w") as full:
        done = _eagle3_patch("--version", stdout=full)
    assert done.returncode == EXIT_OUTPUT, done.stderr
    assert "Traceback" not in done.stderr and "bug" not in done.stderr
    assert "could not write its output" in done.stderr and "No space left on device" in done.stderr
