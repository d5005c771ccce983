"""The serve command as a user drives it (options, `--`, output) and scripts/serve_sglang.sh."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.errors import BadInput
from eagle3_patch.commands import serve as command
from eagle3_patch.serve.dialect import SCHEDULER_FLAG, LaunchDialect
from eagle3_patch.serve.launch import PreparedLaunch
from eagle3_patch.serve.plan import build_plan
from eagle3_patch.serve.validate import DrafterReport

from support.paths import REPO


SCRIPT = REPO / "scripts" / "serve_sglang.sh"
DIALECT = LaunchDialect(SCHEDULER_FLAG, "sglang/srt/server_args.py defines it", True, "environ.py declares it")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Stand in for the engine-backed steps; record what the command asked for."""
    seen: dict = {}

    def prepare_launch(**options: object) -> PreparedLaunch:
        seen["prepare"] = options
        plan = build_plan("/venv/bin/python", str(options["model"]), "/d/compressed", DIALECT,
                          list(options["user_args"]))
        report = DrafterReport(Path("/d/compressed"), "LlamaForCausalLMEagle3", 5120, 248320, 32000,
                               (1, 31, 60), ("hidden size 5120 matches the target (/m/config.json)",))
        return PreparedLaunch(plan, DIALECT, report, "already patched", "SGLang 0.5.12 at /site/sglang")

    monkeypatch.setattr(command, "prepare_launch", prepare_launch)
    monkeypatch.setattr(command, "exec_plan", lambda plan: seen.setdefault("exec", plan))
    return seen


def test_everything_after_double_dash_goes_to_sglang(calls: dict) -> None:
    result = CliRunner().invoke(
        command.serve, ["--drafter", "compressed", "--dry-run", "--json", "--", "--tp", "2", "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    assert calls["prepare"]["user_args"] == ("--tp", "2", "--dry-run")
    assert calls["prepare"]["model"] == "Qwen/Qwen3.6-27B"
    assert calls["prepare"]["drafter_repo"] == "Ex0bit/Qwen3.6-27B-PRISM-EAGLE3"
    assert (calls["prepare"]["apply"], calls["prepare"]["dry_run"]) == (True, True)


def test_dry_run_json_is_argv_and_our_env_only(calls: dict) -> None:
    result = CliRunner().invoke(command.serve, ["--drafter", "x", "--dry-run", "--json", "--", "--port", "31000"])

    shown = json.loads(result.output)
    assert set(shown) == {"argv", "env"}
    assert shown["argv"][0] == "/venv/bin/python" and shown["argv"][-2:] == ["--port", "31000"]
    assert shown["env"] == {"SGLANG_ENABLE_SPEC_V2": "1"}
    assert "exec" not in calls


def test_dry_run_text_ends_with_the_copy_pasteable_command(calls: dict) -> None:
    result = CliRunner().invoke(command.serve, ["--drafter", "x", "--dry-run"])

    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("SGLANG_ENABLE_SPEC_V2=1 /venv/bin/python -m sglang.launch_server ")
    assert all(line.startswith("#") for line in lines[:-1])
    assert "# EAGLE-3 capture: already patched" in lines
    assert any("environ.py declares it" in line for line in lines)


def test_launch_hands_the_plan_to_exec(calls: dict) -> None:
    result = CliRunner().invoke(command.serve, ["--drafter", "x", "--no-apply", "--", "--tp", "2"])

    assert result.exit_code == 0, result.output
    assert calls["prepare"]["apply"] is False
    assert calls["exec"].argv[-2:] == ["--tp", "2"]
    assert "exec: SGLANG_ENABLE_SPEC_V2=1 /venv/bin/python -m sglang.launch_server" in result.stderr


def test_json_without_dry_run_is_a_usage_error(calls: dict) -> None:
    result = CliRunner().invoke(command.serve, ["--drafter", "x", "--json"])

    assert result.exit_code == 2 and "--dry-run" in result.output
    assert "prepare" not in calls


def test_errors_reach_the_top_level_handler_uncaught(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: object) -> None:
        raise BadInput("Drafter check failed", "why", "fix")

    monkeypatch.setattr(command, "prepare_launch", refuse)

    result = CliRunner().invoke(command.serve, ["--drafter", "x", "--dry-run"])

    assert isinstance(result.exception, BadInput)


def test_drafter_is_required() -> None:
    result = CliRunner().invoke(command.serve, ["--dry-run"])

    assert result.exit_code == 2 and "--drafter" in result.output


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in `eagle3-patch` executable that records its argv."""
    record = tmp_path / "argv.json"
    fake = tmp_path / "eagle3-patch"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    fake.chmod(0o755)
    return fake, record


def run_script(fake: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"MODEL", "DRAFTER", "DRAFTER_REPO", "PYTHON"}}
    return subprocess.run([str(SCRIPT), *args], env={**clean, "EAGLE3_PATCH": str(fake), **env},
                          capture_output=True, text=True, timeout=30)


def test_script_is_executable_and_uses_the_defaults(recorder: tuple[Path, Path]) -> None:
    fake, record = recorder

    done = run_script(fake, {})

    assert SCRIPT.stat().st_mode & stat.S_IXUSR
    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text()) == [
        "serve", "--model", "Qwen/Qwen3.6-27B", "--drafter", "compressed", "--",
    ]


def test_script_quotes_every_variable_and_passes_args_through(recorder: tuple[Path, Path], tmp_path: Path) -> None:
    fake, record = recorder
    env = {"MODEL": str(tmp_path / "Qwen3.6 27B *"), "DRAFTER": "./my drafter", "DRAFTER_REPO": "/repos/a b",
           "PYTHON": "/opt/my venv/bin/python"}

    done = run_script(fake, env, "--tp", "2", "--api-key", "k e y*")

    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text()) == [
        "serve", "--model", env["MODEL"], "--drafter", "./my drafter", "--drafter-repo", "/repos/a b",
        "--python", "/opt/my venv/bin/python", "--", "--tp", "2", "--api-key", "k e y*",
    ]


def test_script_own_flags_go_to_serve_and_everything_else_after_dashes(recorder: tuple[Path, Path]) -> None:
    fake, record = recorder

    done = run_script(fake, {}, "--tp", "2", "--dry-run", "--port", "31000", "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text()) == [
        "serve", "--model", "Qwen/Qwen3.6-27B", "--drafter", "compressed", "--dry-run", "--json",
        "--", "--tp", "2", "--port", "31000",
    ]


def test_script_dashes_end_its_own_flags(recorder: tuple[Path, Path]) -> None:
    fake, record = recorder

    done = run_script(fake, {}, "--dry-run", "--", "--json", "--tp", "2")

    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text())[-5:] == ["--dry-run", "--", "--json", "--tp", "2"]


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_script_help_says_where_sglang_args_go_and_launches_nothing(recorder: tuple[Path, Path], flag: str) -> None:
    fake, record = recorder

    done = run_script(fake, {}, "--tp", "2", flag)

    assert done.returncode == 0 and not record.exists()
    assert "exactly --dry-run, --json and -h/--help" in done.stdout and "after `--`" in done.stdout


def _without_eagle3_patch(tmp_path: Path, python: Path) -> dict[str, str]:
    """Environment where PATH holds no eagle3-patch and $PYTHON is ``python``."""
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    for tool in ("bash", "env"):
        (bin_dir / tool).symlink_to(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip())
    clean = {k: v for k, v in os.environ.items() if k not in {"MODEL", "DRAFTER", "DRAFTER_REPO", "EAGLE3_PATCH"}}
    return {**clean, "PATH": str(bin_dir), "PYTHON": str(python)}


def test_script_falls_back_to_python_m_eagle3_patch(tmp_path: Path) -> None:
    record = tmp_path / "argv.json"
    python = tmp_path / "python"
    python.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"if sys.argv[1:3] == ['-m', 'eagle3_patch']:\n"
                      f"    json.dump(sys.argv[1:], open({str(record)!r}, 'w')); sys.exit(0)\n"
                      f"os.execv({sys.executable!r}, [{sys.executable!r}, *sys.argv[1:]])\n")
    python.chmod(0o755)

    done = subprocess.run([str(SCRIPT), "--dry-run", "--tp", "2"], env=_without_eagle3_patch(tmp_path, python),
                          capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text()) == [
        "-m", "eagle3_patch", "serve", "--model", "Qwen/Qwen3.6-27B", "--drafter", "compressed",
        "--python", str(python), "--dry-run", "--", "--tp", "2",
    ]


def test_script_without_eagle3_patch_says_how_to_install_it(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 1\n")
    python.chmod(0o755)

    done = subprocess.run([str(SCRIPT), "--dry-run"], env=_without_eagle3_patch(tmp_path, python),
                          capture_output=True, text=True, timeout=30)

    assert done.returncode == 127
    assert "eagle3-patch is not installed" in done.stderr and "pipx install ." in done.stderr
    assert "command not found" not in done.stderr
