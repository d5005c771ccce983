"""serve execs an interpreter that imports the very SGLang it checked and patched, or refuses (exit 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_NOT_FOUND

from support.cli import invoke_cli
from support.marks import first_fast
from support.releases import install_release
from support.serve_fixtures import base_env, serve, standin_env, tree_digest, write_drafter, write_target



@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    model, drafter = write_target(tmp_path / "Qwen3.6-27B"), write_drafter(tmp_path / "compressed")
    return ["--model", str(model), "--drafter", str(drafter)]


@pytest.mark.parametrize("mode", first_fast(["--dry-run"], ["--dry-run", "--json"], []),
                         ids=["dry-run", "json", "launch"])
def test_python_and_sglang_dir_naming_different_sglangs_is_refused_before_patching(
    mode: list[str], tmp_path: Path, inputs: list[str]
) -> None:
    theirs = install_release("0.5.12", tmp_path / "site-a")  # what --python imports
    other = install_release("0.5.12", tmp_path / "site-b")   # what --sglang-dir names
    standin, record, env = standin_env(tmp_path, tmp_path / "site-a", theirs)
    untouched = (tree_digest(tmp_path / "site-a"), tree_digest(tmp_path / "site-b"))

    done = invoke_cli("serve", "--python", str(standin), "--sglang-dir", str(other), *inputs, *mode, env=env)

    assert done.returncode == EXIT_NOT_FOUND, done.stderr
    assert "This interpreter does not import that SGLang" in done.stderr
    assert str(standin) in done.stderr and str(theirs) in done.stderr and str(other) in done.stderr
    if "--json" in mode:  # the error as one JSON object, for a machine
        assert json.loads(done.stdout)["exit_code"] == EXIT_NOT_FOUND
    else:
        assert done.stdout == ""
    assert not record.exists()
    assert (tree_digest(tmp_path / "site-a"), tree_digest(tmp_path / "site-b")) == untouched


def test_python_and_sglang_dir_naming_the_same_sglang_launch_it(tmp_path: Path, inputs: list[str]) -> None:
    package = install_release("0.5.12", tmp_path / "site")
    standin, record, env = standin_env(tmp_path, tmp_path / "site", package)

    done = serve(["--python", str(standin), "--sglang-dir", str(package), *inputs], env)

    assert done.returncode == 0, done.stderr
    recorded = json.loads(record.read_text())
    assert recorded["argv"][0] == str(standin) and recorded["patched"]


def test_sglang_dir_in_a_venv_runs_that_venvs_python(tmp_path: Path, inputs: list[str]) -> None:
    # eagle3-patch in its own (pipx-like) environment, SGLang in another venv: serve must exec
    # the venv's interpreter, not its own (which does not import SGLang at all).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site_packages = next(venv.glob("lib/python3*/site-packages"))
    package = install_release("0.5.20", site_packages)

    done = invoke_cli("serve", "--sglang-dir", str(package), *inputs, "--dry-run", "--json", env=base_env())

    assert done.returncode == 0, done.stderr
    interpreter = json.loads(done.stdout)["argv"][0]
    assert Path(interpreter).parent == venv / "bin"
    asked = subprocess.run([interpreter, "-c", "import importlib.util as u; print(u.find_spec('sglang').origin)"],
                           capture_output=True, text=True, timeout=60)
    assert Path(asked.stdout.strip()).resolve() == (package / "__init__.py").resolve()


def test_sglang_dir_outside_any_environment_and_not_imported_is_refused(tmp_path: Path, inputs: list[str]) -> None:
    package = install_release("0.5.12", tmp_path / "loose")

    done = invoke_cli("serve", "--sglang-dir", str(package), *inputs, "--dry-run", env=base_env())

    assert done.returncode == EXIT_NOT_FOUND, done.stderr
    assert f"{sys.executable} imports no SGLang at all, not {package}" in done.stderr


def test_without_options_the_sglang_found_is_the_one_python_m_would_import(tmp_path: Path,
                                                                          inputs: list[str]) -> None:
    # `python -m sglang.launch_server` puts the current directory first: an sglang checkout
    # there wins over site-packages, so that is the one serve must check and patch.
    installed = install_release("0.5.12", tmp_path / "site")
    checkout = install_release("0.5.20", tmp_path / "checkout")

    done = invoke_cli("serve", *inputs, "--dry-run", env=base_env(PYTHONPATH=str(installed.parent)),
                      cwd=checkout.parent)

    assert done.returncode == 0, done.stderr
    assert f"SGLang 0.5.20 at {checkout}" in done.stdout


@pytest.mark.parametrize("case", first_fast("checkout-in-cwd", "site-packages", "environment-changed"))
def test_this_interpreter_answers_in_process_exactly_as_a_child_would(tmp_path: Path, case: str) -> None:
    # Started as a console script (sys.path[0] is the script's folder, not the
    # current directory), the in-process answer must equal the subprocess's; an
    # environment changed since start (the child sees the change) too.
    installed = install_release("0.5.12", tmp_path / "site")
    checkout = install_release("0.5.20", tmp_path / "checkout")
    script = tmp_path / "bin" / "answers.py"
    script.parent.mkdir()
    changed = case == "environment-changed"
    script.write_text(
        "import json, os, sys\n"
        "from eagle3_patch.site import locate\n"
        + (f"os.environ['PYTHONPATH'] = {str(checkout.parent)!r}\n" if changed else "")
        + "print(json.dumps([str(locate.imported_by(sys.executable)),\n"
        "                  str(locate.ask_interpreter(sys.executable)), 'sglang' in sys.modules]))\n")
    cwd = checkout.parent if case == "checkout-in-cwd" else tmp_path

    done = subprocess.run([sys.executable, str(script)], env=base_env(PYTHONPATH=str(installed.parent)),
                          cwd=cwd, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    in_process, child, imported = json.loads(done.stdout)
    assert in_process == child == str(installed if case == "site-packages" else checkout)
    assert not imported
