"""One rule decides what is secret in anything printed: argv values and URL user-info.

The rule itself as before/after pairs; then every place that prints an argv or a URL,
driven through the CLI as a user runs it.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import sys
import zipfile

import pytest

from eagle3_patch.text.masking import MASK, masked_argv, masked_text, masked_url, shown

from support.bench_standin import ScriptedClock, StandIn, eagle3_script
from support.cli import invoke_bench, invoke_main
from support.deadline import within
from support.marks import first_fast
from support.releases import RELEASES, wheel_path



@pytest.mark.parametrize(("argv", "shown"), [
    (["--api-key", "k"], ["--api-key", MASK]),
    (["--api-key=k"], [f"--api-key={MASK}"]),
    (["--my_token", "t"], ["--my_token", MASK]),
    (["--token", "t"], ["--token", MASK]),
    (["--hf-token=t"], [f"--hf-token={MASK}"]),
    (["--ssl-keyfile-password", "p"], ["--ssl-keyfile-password", MASK]),
    (["--ssl-keyfile-password=p"], [f"--ssl-keyfile-password={MASK}"]),
    (["--password", "p", "--client-secret=s"], ["--password", MASK, f"--client-secret={MASK}"]),
    (["--DB-PASSWORD", "p"], ["--DB-PASSWORD", MASK]),
    # Abbreviations SGLang's argparse expands to its secret flags.
    (["--admin-api-k", "k"], ["--admin-api-k", MASK]),
    (["--ssl-keyfile-pass", "p"], ["--ssl-keyfile-pass", MASK]),
    (["--ssl-keyfile-=p"], [f"--ssl-keyfile-={MASK}"]),
    # Look-alikes whose last word is not a secret stay visible.
    (["--ssl-keyfile", "f", "--keys", "3"], ["--ssl-keyfile", "f", "--keys", "3"]),
    (["--max-total-tokens", "8", "--tokenizer-path", "t"], ["--max-total-tokens", "8", "--tokenizer-path", "t"]),
    (["--secret-dir", "d", "--password-file=f"], ["--secret-dir", "d", "--password-file=f"]),
    (["--api-key"], ["--api-key"]),
    (["--port", "--api-key", "k", "--tp", "2"], ["--port", "--api-key", MASK, "--tp", "2"]),
    (["python", "-c", "--api-key"], ["python", "-c", "--api-key"]),
    (["--url", "http://u:pw@h:1"], ["--url", f"http://{MASK}@h:1"]),
])
def test_masked_argv(argv, shown):
    assert masked_argv(argv) == shown


RUN_TOGETHER = ["--apikey", "--hftoken", "--authtoken", "--accesstoken", "--secretkey", "--apiKey",
                "--HFToken", "--openai_apikey", "--dbpassword", "--clientsecret", "--x-sessiontoken",
                "--privatekey", "--passkey", "--access-secretkey", "--db-passwd"]
LOOKALIKES = ["--monkey", "--turkey", "--donkey", "--hockey", "--jockey", "--whiskey", "--hotkey",
              "--keyboard", "--tokenizer-path", "--tokens", "--max-total-tokens", "--skip-tokenizer-init",
              "--keys", "--keyfile", "--tokenize", "--secretary", "--passwords-file", "--betoken"]


@pytest.mark.parametrize("flag", RUN_TOGETHER)
def test_a_secret_word_run_together_with_the_word_before_it_is_masked(flag):
    assert masked_argv([flag, "v", f"{flag}=v"]) == [flag, MASK, f"{flag}={MASK}"]
    assert masked_url(f"http://h/p?{flag.lstrip('-')}=v") == f"http://h/p?{flag.lstrip('-')}={MASK}"


@pytest.mark.parametrize("flag", LOOKALIKES)
def test_a_word_that_merely_ends_or_starts_like_a_secret_word_stays_visible(flag):
    assert masked_argv([flag, "v", f"{flag}=v"]) == [flag, "v", f"{flag}=v"]


# What each release's server parser defines that is secret; every other flag's value is shown.
SGLANG_SECRET_FLAGS = {"--api-key", "--admin-api-key", "--ssl-keyfile-password"}
# Up to 0.5.13 server_args.py spells each flag out; later releases declare dataclass fields
# (`api_key: A[...]`, the flag "--api-key") and mark those that are not flags `no_cli=True`.
_FIELD = re.compile(r"^    (\w+): A\[", re.M)


def _server_flags(version: str) -> set[str]:
    with zipfile.ZipFile(wheel_path(version)) as wheel:
        sources = [wheel.read(name).decode() for name in wheel.namelist()
                   if name == "sglang/srt/server_args.py" or name.startswith("sglang/srt/arg_groups/")]
    flags = {flag for text in sources for flag in re.findall(r"""["'](--[A-Za-z][\w-]*)["']""", text)}
    for text in sources:
        starts = list(_FIELD.finditer(text))
        for field, after in itertools.pairwise([*starts, None]):
            if "no_cli=True" not in text[field.end():after.start() if after else len(text)]:
                flags.add("--" + field[1].replace("_", "-"))
    return flags


@pytest.mark.parametrize("version", first_fast(*RELEASES), ids=RELEASES)
def test_of_sglangs_real_server_flags_exactly_the_secret_ones_are_masked(version):
    flags = _server_flags(version)
    assert len(flags) > 300 and {"--api-key", "--max-total-tokens", "--tokenizer-path"} <= flags
    masked = {flag for flag in flags if masked_argv([flag, "v"])[1] == MASK}
    assert masked == SGLANG_SECRET_FLAGS & flags


@pytest.mark.parametrize("version", first_fast(*RELEASES))
def test_every_abbreviation_sglang_reads_as_a_secret_flag_is_masked(version):
    # argparse takes any prefix that names one flag alone: "--ap KEY" is --api-key.
    flags = _server_flags(version)
    for secret in SGLANG_SECRET_FLAGS & flags:
        for end in range(3, len(secret)):
            prefix = secret[:end]
            if [flag for flag in flags if flag.startswith(prefix)] == [secret] and prefix not in flags:
                assert masked_argv([prefix, "v"]) == [prefix, MASK], prefix
                assert masked_argv([f"{prefix}=v"]) == [f"{prefix}={MASK}"], prefix


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:pass@host:1/x", f"http://{MASK}@host:1/x"),
    ("http://tok@host", f"http://{MASK}@host"),
    ("https://u:p@ss@host:2", f"https://{MASK}@host:2"),
    ("http://u:pw@[::1", f"http://{MASK}@[::1"),
    ("http://127.0.0.1:30000", "http://127.0.0.1:30000"),
    ("http://h/a@b", "http://h/a@b"),
    ("https://h/p?api_key=s&n=1&hf_token=t", f"https://h/p?api_key={MASK}&n=1&hf_token={MASK}"),
    ("not a url", "not a url"),
    ("user:pass@host:1", f"{MASK}@host:1"),  # no scheme: still what a client would send as credentials
    ("//user:pass@host:1/x@y", f"//{MASK}@host:1/x@y"),
    ("host:1/x@y", "host:1/x@y"),
])
def test_masked_url(url, shown):
    assert masked_url(url) == shown


def test_masked_text_hides_user_info_of_every_url_in_a_message():
    text = "Cannot reach 'http://u:pw@[::1' or http://a:b@h:1/x.\nTry http://h:2."
    assert masked_text(text) == f"Cannot reach 'http://{MASK}@[::1' or http://{MASK}@h:1/x.\nTry http://h:2."


SECRETS = ("sk-one", "hf-two", "pw-three")


def test_run_exec_line_masks_secret_flags(site):
    s = site("0.5.21")
    done = s.run("run", "--", sys.executable, "-c", "pass",
                 "--api-key", "sk-one", "--hf-token=hf-two", "--ssl-keyfile-password", "pw-three")
    assert done.returncode == 0, done.stderr
    exec_line = next(line for line in done.stderr.splitlines() if "exec:" in line)
    assert f"--api-key '{MASK}' '--hf-token={MASK}' --ssl-keyfile-password '{MASK}'" in exec_line
    assert not any(secret in done.stderr + done.stdout for secret in SECRETS)


def test_run_refusal_message_masks_the_command_it_quotes(site):
    s = site("0.5.21")
    done = invoke_main("run", "--sglang-dir", str(s.package), "--", "python3", "-I", "-c", "pass",
                       "--api-key", "sk-one")
    assert done.exit_code == 8, done.stderr
    assert "-I" in done.stderr and "sk-one" not in done.stderr


PASSWORD = "pw-7c1e"


def test_bench_never_repeats_a_url_password_in_text_or_json():
    clock = ScriptedClock()
    args = ["--bucket", "chat", "--max-new-tokens", "10", "--runs", "2", "--warmup", "1"]
    with StandIn(clock, eagle3_script) as eagle3:
        url = eagle3.url.replace("http://", f"http://bench:{PASSWORD}@")
        table = invoke_bench(clock, "--url", url, *args)
        as_json = invoke_bench(clock, "--url", url, *args, "--json")
    assert (table.exit_code, as_json.exit_code) == (0, 0), table.stderr + as_json.stderr
    shown = eagle3.url.replace("http://", f"http://{MASK}@")
    assert shown in table.stdout
    assert json.loads(as_json.stdout)["servers"]["eagle3"]["url"] == shown
    for done in (table, as_json):
        assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize(("url", "code"), [
    (f"http://u:{PASSWORD}@[::1", 8),
    (f"http://u:{PASSWORD}@127.0.0.1:0", 8),
    (f"ftp://u:{PASSWORD}@127.0.0.1:1", 8),
    (f"http://u:{PASSWORD}@127.0.0.1:1", 10),
    (f"u:{PASSWORD}@127.0.0.1:1", 8),
    (f"//u:{PASSWORD}@127.0.0.1:1", 8),
])
@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["text", "json"])
def test_bench_errors_never_repeat_a_url_password(url, code, as_json):
    done = invoke_main("bench", "--url", url, *as_json)
    assert done.exit_code == code, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert "***@" in done.stderr


@pytest.mark.parametrize("user_info", [f"u:{PASSWORD}", f":{PASSWORD}", PASSWORD])
def test_bench_url_credentials_and_api_key_together_are_bad_input_not_a_crash(user_info):
    done = invoke_main("bench", "--url", f"http://{user_info}@127.0.0.1:1", "--api-key", "sk-one")
    assert done.exit_code == 8, done.stderr
    assert PASSWORD not in done.stderr and "sk-one" not in done.stderr


# Issue 23: masking read a run of letters once per letter (1.5 MB took about an hour). Each text
# here is megabytes of what made one of its patterns go back over the input again and again.
HOSTILE_RUNS = {
    "letters": "A" * 1_500_000,
    "scheme-characters": "a1+.-" * 300_000,
    "query-marks": "http://h/" + "?" * 1_500_000,
    "query-names": "http://h/?" + "k" * 1_500_000,
    "authority": "http://" + "a:" * 750_000,
    "schemes": "a://" * 375_000,
    "whitespace": " \n" * 750_000,
}


@pytest.mark.parametrize("text", first_fast(*(pytest.param(text, id=name) for name, text in HOSTILE_RUNS.items())))
def test_masking_is_linear_on_any_text(text):
    with within(20):
        masked_text(text)
        masked_url(text)
        masked_argv([text, "--" + text, "v", f"--{text}=v"])


_URL_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


def test_the_linear_url_pattern_finds_the_urls_the_quadratic_one_found():
    rng = random.Random(23)
    for _ in range(20_000):
        text = "".join(rng.choice("aZ1+.-:/@? \n") for _ in range(rng.randrange(24)))
        assert masked_text(text) == _URL_BEFORE.sub(lambda m: masked_url(m.group(0)), text), repr(text)


@pytest.mark.parametrize(("text", "shown_as"), [
    ("plain words", "plain words"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("\x1b[2J", "\\x1b[2J"),
    ("csi\x9b2J", "csi\\x9b2J"),
    ("nul\x00 del\x7f", "nul\\x00 del\\x7f"),
    ("two\nlines\r\n", "two\\nlines\\r\\n"),
    ("tab\there", "tab\\there"),
    ("line\u2028paragraph\u2029", "line\\u2028paragraph\\u2029"),
    ("bidi \u202eevil\u202c \u2066x\u2069", "bidi \\u202eevil\\u202c \\u2066x\\u2069"),
    ("lone \ud800", "lone \\ud800"),
    ("café Qwen/模型", "café Qwen/模型"),
    ("http://u:pw@h:1/x", f"http://{MASK}@h:1/x"),
])
def test_shown_escapes_what_a_terminal_would_act_on(text, shown_as):
    assert shown(text) == shown_as


def test_shown_keeps_a_messages_own_newlines_and_escapes_the_rest():
    assert shown("what\nwhy \x1b[2J\r", lines=True) == "what\nwhy \\x1b[2J\\r"


def test_shown_quotes_both_ends_of_long_text_and_says_how_long_it_was():
    text = "start " + "x" * 10_000 + " end"
    excerpt = shown(text, limit=100)
    assert excerpt.startswith("start xxx") and excerpt.endswith("xxx end")
    assert "[...9,910 of 10,010 characters left out...]" in excerpt
    assert len(excerpt) < 200


def test_a_url_cut_by_an_excerpt_still_hides_its_password():
    secret = "pw-" + "s" * 5_000
    for text in (f"see http://user:{secret}@host/x", "x" * 10_000 + f" http://user:{secret}@host/x"):
        excerpt = shown(text, limit=60)
        assert "sss" not in excerpt and "user" not in excerpt, excerpt
