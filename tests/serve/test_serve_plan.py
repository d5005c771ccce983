"""The launch plan: the validated chain config, then the user's flags, theirs winning."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import zipfile

import pytest

from eagle3_patch.serve.dialect import RADIX_FLAG, SCHEDULER_FLAG, LaunchDialect
from eagle3_patch.serve.plan import FLAG_ALIASES, SHORTEST_PREFIX, build_plan, flag_value

from support import realenv
from support.releases import RELEASES, wheel_path


PY, MODEL, DRAFTER = "/opt/venv/bin/python", "Qwen/Qwen3.6-27B", "/models/eagle3/compressed"
OLD = LaunchDialect(SCHEDULER_FLAG, "sglang/srt/server_args.py defines it", True, "environ.py declares it")
NEW = LaunchDialect(RADIX_FLAG, "sglang/srt/arg_groups/fields/exec_.py defines it", False, "not declared")


def plan(user_args: list[str], dialect: LaunchDialect = NEW) -> list[str]:
    return build_plan(PY, MODEL, DRAFTER, dialect, user_args).argv


def value_of(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_plan_is_the_validated_chain_config() -> None:
    assert plan([]) == [
        PY, "-m", "sglang.launch_server",
        "--model-path", MODEL,
        "--speculative-algorithm", "EAGLE3",
        "--speculative-draft-model-path", DRAFTER,
        "--speculative-num-steps", "3",
        "--speculative-eagle-topk", "1",
        "--speculative-num-draft-tokens", "4",
        RADIX_FLAG, "extra_buffer",
        "--mm-attention-backend", "sdpa",
        "--dtype", "bfloat16",
        "--trust-remote-code",
    ]


def test_env_holds_only_the_variables_the_dialect_adds() -> None:
    assert build_plan(PY, MODEL, DRAFTER, OLD, []).env == {"SGLANG_ENABLE_SPEC_V2": "1"}
    assert build_plan(PY, MODEL, DRAFTER, NEW, []).env == {}


def test_no_host_is_set_so_sglang_keeps_its_loopback_default() -> None:
    assert "--host" not in plan([])


def test_user_args_follow_ours_unchanged() -> None:
    user = ["--tp", "2", "--nnodes", "2", "--node-rank", "0", "--dist-init-addr", "10.0.0.1:5000",
            "--api-key", "s3cret key", "--host", "0.0.0.0", "--port", "31000", "--dp", "2"]

    argv = plan(user)

    assert argv[-len(user):] == user
    assert argv[: -len(user)] == plan([])


@pytest.mark.parametrize(
    ("user", "flag", "value"),
    [
        (["--speculative-num-steps", "5"], "--speculative-num-steps", "5"),
        (["--speculative-num-steps=5"], "--speculative-num-steps", None),
        (["--dtype", "float16"], "--dtype", "float16"),
        (["--mm-attention-backend=fa3"], "--mm-attention-backend", None),
        (["--speculative-eagle-topk", "4", "--speculative-num-draft-tokens", "8"], "--speculative-eagle-topk", "4"),
        (["--model-path", "/other/model"], "--model-path", "/other/model"),
        ([RADIX_FLAG, "no_buffer"], RADIX_FLAG, "no_buffer"),
    ],
    ids=["space", "equals", "dtype", "equals-backend", "tree", "model-path", "strategy"],
)
def test_user_value_wins_and_the_flag_appears_once(user: list[str], flag: str, value: str | None) -> None:
    argv = plan(user)

    named = [arg for arg in argv if arg.split("=", 1)[0] == flag]
    assert named == ([user[0]] if value is None else [flag])
    if value is not None:
        assert value_of(argv, flag) == value
    assert argv[-len(user):] == user


def test_boolean_flag_the_user_repeats_appears_once() -> None:
    argv = plan(["--trust-remote-code", "--tp", "2"])

    assert argv.count("--trust-remote-code") == 1
    assert argv[-3:] == ["--trust-remote-code", "--tp", "2"]


@pytest.mark.parametrize(
    ("dialect", "user_flag"),
    [(NEW, SCHEDULER_FLAG), (OLD, RADIX_FLAG), (NEW, f"{SCHEDULER_FLAG}=no_buffer")],
    ids=["old-spelling-on-new-sglang", "new-spelling-on-old-sglang", "old-spelling-equals"],
)
def test_strategy_under_either_spelling_replaces_ours(dialect: LaunchDialect, user_flag: str) -> None:
    user = [user_flag] if "=" in user_flag else [user_flag, "no_buffer"]

    argv = plan(user, dialect)

    assert "extra_buffer" not in argv
    assert [a for a in argv if a.split("=")[0] in (RADIX_FLAG, SCHEDULER_FLAG)] == [user_flag]


@pytest.mark.parametrize(
    ("alias", "ours"),
    [("--model", "--model-path"), ("--speculative-draft-model", "--speculative-draft-model-path")],
)
def test_sglang_aliases_of_our_flags_override_them(alias: str, ours: str) -> None:
    argv = plan([alias, "/mine"])

    assert ours not in argv
    assert value_of(argv, alias) == "/mine"


def test_shell_command_is_copy_pasteable() -> None:
    odd = build_plan("/opt/my venv/bin/python", "./Qwen3.6 27B", "/d/it's", OLD, ["--served-model-name", "a b;c"])

    words = shlex.split(odd.shell_command())

    assert words == ["SGLANG_ENABLE_SPEC_V2=1", *odd.argv]
    assert odd.to_json() == {"argv": odd.argv, "env": {"SGLANG_ENABLE_SPEC_V2": "1"}}


@pytest.mark.parametrize(("user_args", "value"), [
    (["--revision", "v2"], "v2"),
    (["--revisio", "v2"], "v2"),
    (["--rev=v2"], "v2"),
    (["--revision", "v1", "--revis", "v2"], "v2"),
    (["--re", "v2"], None),  # ambiguous (--reasoning-parser, ...): SGLang refuses it itself
    (["--speculative-draft-model-revision", "v2"], None),
    (["--revisions", "v2"], None),
], ids=["full", "abbreviated", "abbreviated-equals", "last-wins", "ambiguous", "other-flag", "longer"])
def test_flag_value_reads_the_abbreviations_sglang_expands(user_args: list[str], value: str | None) -> None:
    assert flag_value(user_args, "--revision") == value


def release_flags(version: str) -> set[str]:
    """Every long option SGLang ``version``'s launch_server parser defines: the literal names given
    to add_argument (0.5.9-0.5.13) and those generated from annotated ServerArgs fields (0.5.14 on)."""
    flags: set[str] = set()
    with zipfile.ZipFile(wheel_path(version)) as wheel:
        for name in wheel.namelist():
            if name == "sglang/srt/server_args.py" or (name.startswith("sglang/srt/arg_groups/")
                                                       and name.endswith(".py")):
                text = wheel.read(name).decode("utf-8")
                flags |= set(re.findall(r"[\"'](--[a-z][a-z0-9-]*)[\"']", text))
                flags |= {"--" + field.replace("_", "-")
                          for field in re.findall(r"^\s+([a-z][a-z0-9_]*)\s*:\s*A\[", text, re.MULTILINE)}
    return flags


@pytest.mark.slow
@pytest.mark.parametrize("version", RELEASES)
def test_each_shortest_prefix_is_unambiguous_and_one_shorter_is_not_in_every_release(version: str) -> None:
    flags = release_flags(version)
    for flag, length in SHORTEST_PREFIX.items():
        assert flag in flags, flag
        others = flags - {flag, *FLAG_ALIASES.get(flag, ())}
        assert not [f for f in others if f.startswith(flag[:length])], flag
        # One character less is ambiguous, so SGLang itself refuses it: no shorter spelling to read.
        assert [f for f in others if f.startswith(flag[:length - 1])], flag


# SGLang 0.5.12's own parser: what it reads each spelling as (argparse, allow_abbrev).
REAL_PARSE = """
import argparse, json, sys
from sglang.srt.server_args import ServerArgs
parser = argparse.ArgumentParser()
ServerArgs.add_cli_args(parser)
args = parser.parse_args(["--model-path", "m", *sys.argv[1:]])
print(json.dumps({"revision": args.revision, "model_path": args.model_path,
                  "draft": args.speculative_draft_model_path}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("spelling", [["--revisio", "v2"], ["--rev=v2"], ["--model-pat", "v2"],
                                      ["--speculative-draft-model-p", "v2"], ["--revisions", "v2"]])
def test_names_flag_reads_each_spelling_as_sglangs_own_parser_does(spelling: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([str(realenv.ensure_real_venv()), "-c", REAL_PARSE, *spelling],
                          capture_output=True, text=True, timeout=300, env=env)
    parsed = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    ours = {flag: flag_value(spelling, flag)
            for flag in ("--revision", "--model-path", "--speculative-draft-model-path")}
    if parsed is None:  # SGLang refuses the spelling: then it names none of our flags either
        assert "unrecognized arguments" in done.stderr or "ambiguous" in done.stderr, done.stderr
        assert set(ours.values()) == {None}
    else:
        assert ours["--revision"] == parsed["revision"]
        assert ours["--speculative-draft-model-path"] == parsed["draft"]
        assert (ours["--model-path"] or "m") == parsed["model_path"]
