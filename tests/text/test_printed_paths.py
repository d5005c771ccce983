"""Paths and arguments of the user's environment (a site folder, a model or drafter folder, an
argument after `--`) can hold what a terminal acts on, or bytes that are not UTF-8: what is printed
of them is escaped, commands stay pasteable, and an output that cannot encode a character gets its
escape instead of a crash."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys

import pytest

from click.testing import CliRunner

from eagle3_patch.cli import main
from eagle3_patch.text.shellwords import join
from eagle3_patch.errors import LockTimeout
from eagle3_patch.site.lock import LOCK_NAME, locked

from support.bench_standin import ScriptedClock, StandIn, eagle3_script
from support.cli import invoke_bench
from support.printable import assert_printable
from support.serve_fixtures import write_drafter, write_target



# An OSC that sets the terminal's title, a bidirectional override, and a byte that is not UTF-8
# (os.fsdecode keeps it as a lone surrogate, which no UTF-8 output can encode).
ODD = "odd\x1b]0;title\x07\u202e\udcff"
ODD_SHOWN = "odd\\x1b]0;title\\x07\\u202e\\udcff"


def test_status_apply_and_revert_print_an_odd_site_folder_escaped(site, tmp_path):
    s = site("0.5.21")
    odd = tmp_path / ODD
    s.root.rename(odd)
    folder = ["--sglang-dir", str(odd / "sglang")]
    results = [s.invoke(command, *folder) for command in ("status", "apply", "status", "revert")]
    assert [r.returncode for r in results] == [0, 0, 0, 0], results[-1].stderr
    assert_printable(*(r.stdout + r.stderr for r in results))
    assert f"SGLang 0.5.21 at {tmp_path}/{ODD_SHOWN}/sglang" in results[0].stdout
    assert f"wrote {tmp_path}/{ODD_SHOWN}/sglang/srt/models/qwen3_5.py" in results[1].stdout


def shell_words(line: str) -> list[str]:
    """The argv bash makes of ``line``."""
    done = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], capture_output=True, check=True)
    return [word.decode("utf-8", "surrogateescape") for word in done.stdout.split(b"\0")[:-1]]


def test_serve_dry_run_prints_odd_paths_escaped_and_a_command_bash_reads_back(site, tmp_path):
    s = site("0.5.21")
    model, drafter = write_target(tmp_path / ODD / "model"), write_drafter(tmp_path / ODD / "drafter")
    args = ["serve", "--model", str(model), "--drafter", str(drafter), "--dry-run", "--",
            "--served-model-name", f"name{ODD}"]
    text, as_json = s.invoke(*args), s.invoke(*args[:6], "--json", *args[6:])
    assert (text.returncode, as_json.returncode) == (0, 0), text.stderr + as_json.stderr
    assert_printable(text.stdout, text.stderr)
    assert f"# drafter: {tmp_path}/{ODD_SHOWN}/drafter" in text.stdout
    # The last line is the command itself: run by bash, it is the very argv --json gives.
    assert shell_words(text.stdout.splitlines()[-1]) == json.loads(as_json.stdout)["argv"]


def test_run_dry_run_prints_an_odd_argument_escaped_and_pasteable(site):
    s = site("0.5.21")
    command = [sys.executable, "-c", "pass", ODD]
    result = s.invoke("run", "--dry-run", "--", *command)
    assert result.returncode == 0, result.stderr
    assert_printable(result.stdout, result.stderr)
    assert shell_words(result.stdout.splitlines()[-1])[-len(command):] == command


def test_an_output_that_cannot_encode_a_character_gets_its_escape_not_a_crash(site, tmp_path):
    s = site("0.5.21")
    s.root.rename(tmp_path / "€")
    # A Latin-1 locale's stdout, strict as Python opens it: "€" is not in Latin-1.
    with CliRunner(charset="latin-1").isolation() as (out, err, _):
        try:
            main(["status", "--sglang-dir", str(tmp_path / "€" / "sglang")])
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.stdout.flush()
    assert code == 0, err.getvalue().decode("latin-1")
    assert f"at {tmp_path}/\\u20ac/sglang" in out.getvalue().decode("latin-1")


def test_a_shown_shell_word_is_read_back_by_bash_as_the_word_itself():
    words = ["plain", "it's", "a b", "", ODD, "tab\there", "nel\x85", "\\x1b", "$'x'", "smile\U0001F600\x7f"]
    shown = join(words)
    assert shown.isprintable()
    assert shell_words(shown) == words


def test_bench_prints_an_odd_prompts_path_escaped(tmp_path):
    prompts = tmp_path / ODD / "prompts.jsonl"
    prompts.parent.mkdir()
    prompts.write_text(json.dumps({"text": "Hi there"}) + "\n")
    clock = ScriptedClock()
    with StandIn(clock, eagle3_script) as server:
        result = invoke_bench(clock, "--url", server.url, "--prompts", str(prompts), "--max-new-tokens", "8",
                              "--runs", "2", "--warmup", "0")
    assert result.exit_code == 0, result.stderr
    assert_printable(result.stdout, result.stderr)
    assert f"prompts: {tmp_path}/{ODD_SHOWN}/prompts.jsonl" in result.stdout


def test_the_notice_of_a_held_lock_prints_an_odd_folder_escaped(tmp_path, capsys):
    folder = tmp_path / ODD
    folder.mkdir()
    held = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    now = [0.0]

    def clock():  # a hundred seconds pass between two attempts: one notice, then the timeout
        now[0] += 100
        return now[0]

    try:
        with pytest.raises(LockTimeout), locked(folder, clock=clock):
            pytest.fail("acquired a lock another holder has")
    finally:
        os.close(held)
    said = capsys.readouterr().err
    assert "waiting for another eagle3-patch process" in said
    assert_printable(said)
