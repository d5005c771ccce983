"""What status, --json and the printed hints say: the truth on disk, machine-readable, pasteable."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from support.cli import invoke_cli
from support.marks import first_fast
from support.releases import install_release, release_file
from support.serve_fixtures import write_drafter, write_target




def _one_json(stdout: str) -> dict:
    """stdout holds exactly one JSON object (json.loads rejects anything after it)."""
    return json.loads(stdout)


@pytest.mark.parametrize("command", first_fast(["apply"], ["revert"], ["status"], ["check"], ["diff"],
                                                ["apply", "--dry-run"]))
def test_json_errors_are_one_object_on_stdout(site, command):
    s = site("0.5.21")
    s.file().write_bytes(s.read() + b"\ndef broken(:\n")
    result = s.invoke(*command, "--json")
    report = _one_json(result.stdout)
    assert result.returncode == report["exit_code"] == 5
    assert set(report["error"]) == {"what", "why", "fix"}
    assert str(s.file()) in report["error"]["what"]


def test_check_json_prints_one_object_with_the_state_and_the_error(site):
    s = site("0.5.21")
    result = s.invoke("check", "--json")
    report = _one_json(result.stdout)
    assert result.returncode == report["exit_code"] == 1
    assert report["state"] == "unpatched" and report["capture_works"] is False
    assert report["error"]["fix"] == "Patch it: eagle3-patch apply"
    assert s.invoke("apply").returncode == 0
    ok = s.invoke("check", "--json")
    assert ok.returncode == 0 and _one_json(ok.stdout)["capture_works"] is True


def test_check_json_on_an_unsupported_release_is_one_error_object(site):
    s = site("0.5.10")
    result = s.invoke("check", "--json")
    assert result.returncode == 4 and _one_json(result.stdout)["exit_code"] == 4


def test_serve_dry_run_json_errors_are_one_object(site, tmp_path):
    s = site("0.5.10")
    drafter = write_drafter(tmp_path / "drafter")
    model = write_target(tmp_path / "model")
    result = s.invoke("serve", "--model", str(model), "--drafter", str(drafter), "--dry-run", "--json")
    report = _one_json(result.stdout)
    assert result.returncode == report["exit_code"] == 4
    assert "cannot serve Qwen3.5/3.6" in report["error"]["what"]


def test_hints_repeat_sglang_dir_and_name_pip_through_the_interpreter(site, tmp_path):
    s = site("0.5.21")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # this interpreter alone would find no SGLang
    check = invoke_cli("check", "--sglang-dir", str(s.package), env=env)
    assert check.returncode == 1
    assert f"Patch it: eagle3-patch apply --sglang-dir {s.package}\n" in check.stderr
    old = site("0.5.10")
    refused = old.invoke("apply", "--python", sys.executable)
    assert refused.returncode == 4
    assert (f"{shlex.quote(sys.executable)} -m pip install -U 'sglang>=0.5.11' && "
            f"eagle3-patch apply --python {shlex.quote(sys.executable)}") in refused.stderr


@pytest.mark.slow
def test_status_says_when_the_backup_is_missing(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    s.file("qwen3_5.py.eagle3-bak").unlink()
    report = json.loads(s.invoke("status", "--json").stdout)["files"][0]["backup"]
    assert report["backup"] == "missing" and report["metadata"] == "ok"
    assert "the backup file is missing" in s.invoke("status").stdout


@pytest.mark.parametrize("record", ["{truncated", "[" * 100_000 + "]" * 100_000, "[]", "null"],
                         ids=["truncated", "nested-past-the-recursion-limit", "a-list", "null"])
@pytest.mark.slow
def test_corrupt_backup_record_is_said_and_revert_does_not_blame_the_user(site, record):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    s.file("qwen3_5.py.eagle3-bak.json").write_text(record)
    assert s.invoke("apply").returncode == 0
    report = json.loads(s.invoke("status", "--json").stdout)["files"][0]["backup"]
    assert report["backup"] == "present" and report["metadata"] == "corrupt"
    assert "is corrupt" in s.invoke("status").stdout
    result = s.invoke("revert")
    assert result.returncode == 0 and "changed after eagle3-patch wrote it" not in result.stdout
    assert s.read() == release_file("0.5.21", "sglang/srt/models/qwen3_5.py")
    assert not s.file("qwen3_5.py.eagle3-bak.json").exists()


def _pip_uninstall(s):
    """What `pip uninstall sglang` does: remove every file its RECORD lists, then empty folders."""
    record = next(s.root.glob("sglang-*.dist-info/RECORD"))
    for line in record.read_text().splitlines():
        (s.root / line.split(",")[0]).unlink(missing_ok=True)
    for folder in sorted((p for p in s.root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()


def test_after_pip_uninstall_status_names_our_leftovers_and_revert_removes_them(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    _pip_uninstall(s)
    left = sorted(p.name for p in s.models.iterdir())
    assert left == [".eagle3-patch.lock", "qwen3_5.py.eagle3-bak", "qwen3_5.py.eagle3-bak.json",
                    "qwen3_5_text.py.eagle3-bak", "qwen3_5_text.py.eagle3-bak.json"]
    status = s.invoke("status")
    assert status.returncode == 0
    assert "SGLang is no longer installed" in status.stdout and "--from-backup" not in status.stdout
    assert f"Remove them with: eagle3-patch revert --sglang-dir {s.package}" in status.stdout
    assert len(json.loads(s.invoke("status", "--json").stdout)["after_uninstall"]) == 5
    for command in ("apply", "check"):
        refused = s.invoke(command)
        assert refused.returncode == 3 and "SGLang is no longer installed" in refused.stderr
    revert = s.invoke("revert", "--sglang-dir", str(s.package))
    assert revert.returncode == 0, revert.stderr
    assert not s.package.exists()


def test_an_sglang_checkout_in_the_working_folder_is_not_an_uninstalled_sglang(tmp_path):
    # SGLang's repository holds its package in python/sglang; from the checkout's parent, Python
    # takes the repository's root folder for a namespace package "sglang". That folder was walked
    # whole as "our files left after uninstall", and revert deleted the backups of the
    # checkout's own, patched installation.
    installed = install_release("0.5.21", tmp_path / "sglang" / "python")
    env = {**os.environ, "PYTHONPATH": str(installed.parent)}
    assert invoke_cli("apply", env=env).returncode == 0
    ours = sorted((installed / "srt" / "models").glob("*.eagle3-bak*"))
    env.pop("PYTHONPATH")
    status, revert = invoke_cli("status", env=env, cwd=tmp_path), invoke_cli("revert", env=env, cwd=tmp_path)
    assert status.returncode == revert.returncode == 0, status.stderr + revert.stderr
    assert "no longer installed" not in status.stdout and "Nothing to revert" in revert.stdout
    assert len(ours) == 4 and sorted((installed / "srt" / "models").glob("*.eagle3-bak*")) == ours


@pytest.mark.slow
def test_our_files_left_after_uninstall_are_listed_folder_by_folder(site):
    # A copy of the models folder made before patching ("models.orig") holds our
    # files too: each folder's files together, the folder before its longer-named
    # sibling, as in every listing by path.
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    copy = s.models.with_name("models.orig")
    copy.mkdir()
    for name in (".eagle3-patch.lock", "qwen3_5.py.eagle3-bak", "qwen3_5.py.eagle3-bak.json"):
        (copy / name).write_bytes((s.models / name).read_bytes())
    _pip_uninstall(s)
    listed = json.loads(s.invoke("status", "--json").stdout)["after_uninstall"]
    assert [p.rsplit("/", 2)[-2] for p in listed] == ["models"] * 5 + ["models.orig"] * 3
    assert listed == sorted(listed, key=lambda p: p.split("/"))


@pytest.mark.slow
def test_removing_leftovers_removes_only_our_files(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    _pip_uninstall(s)
    (s.models / "notes.txt").write_text("mine")
    assert "no longer installed" in s.invoke("status").stdout
    assert s.invoke("revert").returncode == 0
    assert [p.name for p in s.models.iterdir()] == ["notes.txt"]
    assert (s.models / "notes.txt").read_text() == "mine"





@pytest.mark.slow
def test_with_sglang_dir_in_a_venv_pip_is_named_through_that_venvs_python(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_dir = next(venv.glob("lib/python*/site-packages"))
    package = install_release("0.5.10", site_dir)
    result = invoke_cli("apply", "--sglang-dir", str(package), env=dict(os.environ))
    assert result.returncode == 4
    assert (f"{venv / 'bin' / 'python'} -m pip install -U 'sglang>=0.5.11' && "
            f"eagle3-patch apply --sglang-dir {package}") in result.stderr
