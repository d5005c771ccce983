"""`eagle3-patch serve` end to end, as a user runs it, on real releases (needs the patch engine).

The SGLang interpreter is serve_fixtures' stand-in script (records what it was
launched with, see ``standin_env``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from eagle3_patch.errors import EXIT_UNSUPPORTED
from eagle3_patch.serve.dialect import RADIX_FLAG, SCHEDULER_FLAG, SPEC_V2_ENV

from support.cli import invoke_cli
from support.marks import first_fast
from support.releases import RELEASES, UNSUPPORTED, install_release
from support.serve_fixtures import base_env, serve, standin_env, tree_digest, write_drafter, write_target


# serve's refusals and dry runs run in this process; a launch execs, so it runs as a process.
# One release stands for the matrix in the fast loop; CI plans for every release.
PLANNED = ["0.5.12", *(version for version in RELEASES if version != "0.5.12")]


def expected(version: str) -> tuple[str, dict[str, str]]:
    if Version(version) < Version("0.5.14"):
        return SCHEDULER_FLAG, {SPEC_V2_ENV: "1"}
    return RADIX_FLAG, {}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return write_target(tmp_path / "Qwen3.6-27B"), write_drafter(tmp_path / "compressed")


@pytest.mark.slow  # serve as a process: it execs the stand-in interpreter
@pytest.mark.parametrize("version", ["0.5.12", "0.5.20"])
def test_handoff_runs_exactly_the_dry_run_plan_after_patching(
    version: str, tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    site = tmp_path / "site"
    package_dir = install_release(version, site)
    model, drafter = inputs
    standin, record, env = standin_env(tmp_path, site, package_dir)
    env["STANDIN_EXIT"] = "7"
    args = ["--python", str(standin), "--model", str(model), "--drafter", str(drafter)]
    untouched = tree_digest(site)

    dry = serve([*args, "--dry-run", "--json", "--", "--tp", "2", "--port", "31000"], env)

    assert dry.returncode == 0, dry.stderr
    assert tree_digest(site) == untouched and not record.exists()
    plan = json.loads(dry.stdout)

    launch = subprocess.Popen([sys.executable, "-m", "eagle3_patch", "serve", *args,
                               "--", "--tp", "2", "--port", "31000"], env=env)
    assert launch.wait(timeout=120) == 7  # SGLang's exit code is ours

    recorded = json.loads(record.read_text())
    assert recorded["argv"] == plan["argv"] and plan["argv"][0] == str(standin)
    assert recorded["pid"] == launch.pid  # exec, not a child
    assert recorded["patched"], "qwen3_5.py must be patched before SGLang starts"
    flag, our_env = expected(version)
    assert plan["env"] == our_env
    assert {k: recorded["env"].get(k) for k in (SPEC_V2_ENV, *our_env)} == {SPEC_V2_ENV: our_env.get(SPEC_V2_ENV)}
    assert plan["argv"][plan["argv"].index(flag) + 1] == "extra_buffer"


@pytest.mark.parametrize("version", first_fast(*PLANNED), ids=PLANNED)
def test_dry_run_plan_per_release_writes_nothing(version: str, tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    site = tmp_path / "site"
    package_dir = install_release(version, site)
    model, drafter = inputs
    untouched = tree_digest(site)

    # This interpreter imports that SGLang (PYTHONPATH), so serve may exec it.
    done = invoke_cli("serve", "--sglang-dir", str(package_dir), "--model", str(model), "--drafter", str(drafter),
                      "--dry-run", "--json", env=base_env(PYTHONPATH=str(site)))

    assert tree_digest(site) == untouched
    if version in UNSUPPORTED:
        assert done.returncode == EXIT_UNSUPPORTED, done.stderr
        return
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    flag, our_env = expected(version)
    assert plan["env"] == our_env
    assert plan["argv"][:3] == [sys.executable, "-m", "sglang.launch_server"]
    assert plan["argv"][plan["argv"].index(flag) + 1] == "extra_buffer"
    assert plan["argv"][plan["argv"].index("--speculative-draft-model-path") + 1] == str(drafter)


def test_bad_drafter_fails_before_anything_is_written(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    site = tmp_path / "site"
    package_dir = install_release("0.5.12", site)
    model, _ = inputs
    wrong = write_drafter(tmp_path / "wrong", "compressed")
    config = json.loads((wrong / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps({**config, "hidden_size": 4096}))
    untouched = tree_digest(site)

    done = invoke_cli("serve", "--sglang-dir", str(package_dir), "--model", str(model), "--drafter", str(wrong),
                      env=base_env(PYTHONPATH=str(site)))

    assert done.returncode == 8, done.stderr  # EXIT_BAD_INPUT
    assert "`hidden_size`" in done.stderr and "Found 4096; expected 5120" in done.stderr
    assert tree_digest(site) == untouched


def test_no_apply_refuses_a_broken_release_and_launches_nothing(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    site = tmp_path / "site"
    package_dir = install_release("0.5.12", site)
    standin, record, env = standin_env(tmp_path, site, package_dir)
    model, drafter = inputs
    untouched = tree_digest(site)

    done = invoke_cli("serve", "--no-apply", "--python", str(standin), "--model", str(model), "--drafter", str(drafter),
                      env=env)

    assert done.returncode == 1, done.stderr
    assert "EAGLE-3 capture does not work" in done.stderr and "eagle3-patch apply --python" in done.stderr
    assert "Traceback" not in done.stderr
    assert tree_digest(site) == untouched and not record.exists()


@pytest.mark.slow  # serve as a process: it execs the stand-in interpreter
def test_no_apply_launches_a_native_release_without_writing(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    site = tmp_path / "site"
    package_dir = install_release("0.5.22", site)
    standin, record, env = standin_env(tmp_path, site, package_dir)
    model, drafter = inputs
    untouched = tree_digest(site)

    done = serve(["--no-apply", "--python", str(standin), "--model", str(model), "--drafter", str(drafter)], env)

    assert done.returncode == 0, done.stderr
    assert "needs no patch" in done.stderr
    assert json.loads(record.read_text())["argv"][1:3] == ["-m", "sglang.launch_server"]
    assert tree_digest(site) == untouched


def test_unsupported_release_is_refused_with_the_same_message_as_apply(tmp_path: Path,
                                                                        inputs: tuple[Path, Path]) -> None:
    site = tmp_path / "site"
    package_dir = install_release("0.5.10", site)
    standin, record, env = standin_env(tmp_path, site, package_dir)
    model, drafter = inputs

    launched = invoke_cli("serve", "--python", str(standin), "--model", str(model), "--drafter", str(drafter), env=env)
    applied = invoke_cli("apply", "--python", str(standin), env=env)

    assert launched.returncode == applied.returncode == EXIT_UNSUPPORTED
    assert launched.stderr == applied.stderr and "0.5.11" in launched.stderr
    assert not record.exists()
