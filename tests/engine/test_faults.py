"""Bad input and faults: refused with a clear message, nothing lost or half-written."""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import shlex
import subprocess
import sys

import pytest

from support.cli import invoke_cli
from support.marks import first_fast
from support.releases import install_release, release_file



MODELS = "sglang/srt/models/"


def _snapshot(models):
    return {p.name: p.read_bytes() for p in models.iterdir() if p.is_file()}


def _clean(result):
    assert "Traceback" not in result.stderr + result.stdout
    return result


def test_syntax_broken_target_is_refused_untouched_without_backup(site):
    s = site("0.5.12")
    s.file().write_bytes(s.read() + b"\ndef broken(:\n")
    before = _snapshot(s.models)
    for command in ("apply", "status", "check"):
        result = _clean(s.invoke(command))
        assert result.returncode == 5, (command, result.stderr)
        assert "is not valid Python" in result.stderr and str(s.file()) in result.stderr
    assert _snapshot(s.models) == before


def test_read_only_target_is_refused_untouched(site):
    s = site("0.5.12")
    s.file().chmod(0o444)
    before = _snapshot(s.models)
    result = _clean(s.invoke("apply"))
    assert result.returncode == 6
    assert "read-only" in result.stderr and "owner of that site-packages" in result.stderr
    assert _snapshot(s.models) == before


@pytest.mark.slow
def test_read_only_but_already_patched_apply_is_a_no_op_success(site):
    s = site("0.5.12")
    assert s.invoke("apply").returncode == 0
    s.file().chmod(0o444)
    result = s.invoke("apply")
    assert result.returncode == 0 and "Already patched" in result.stdout


def _upgrade(s, version):
    """What `pip install -U sglang==version` does to the files we care about."""
    for dist in s.root.glob("sglang-*.dist-info"):
        shutil.rmtree(dist)
    install_release(version, s.root)


@pytest.mark.slow
def test_revert_refuses_stale_backup_after_upgrade(site):
    s = site("0.5.12")
    assert s.invoke("apply").returncode == 0
    _upgrade(s, "0.5.13")
    new = release_file("0.5.13", MODELS + "qwen3_5.py")
    assert s.read() == new
    status = json.loads(s.invoke("status", "--json").stdout)
    assert status["sglang_version"] == "0.5.13" and status["state"] == "unpatched"
    assert status["files"][0]["backup"]["stale"] is True
    result = _clean(s.invoke("revert"))
    assert result.returncode == 0 and "Nothing to revert" in result.stdout
    assert "0.5.12" in result.stdout and "another release's file" in result.stdout
    assert s.read() == new
    assert not s.file("qwen3_5.py.eagle3-bak").exists()


@pytest.mark.slow
def test_apply_after_upgrade_patches_new_file_and_refreshes_backup(site):
    s = site("0.5.12")
    assert s.invoke("apply").returncode == 0
    _upgrade(s, "0.5.13")
    new = release_file("0.5.13", MODELS + "qwen3_5.py")
    assert s.invoke("apply").returncode == 0
    assert s.file("qwen3_5.py.eagle3-bak").read_bytes() == new
    meta = json.loads(s.file("qwen3_5.py.eagle3-bak.json").read_text())
    assert meta["sglang_version"] == "0.5.13"
    assert s.invoke("revert").returncode == 0
    assert s.read() == new


@pytest.mark.slow  # six processes at once: what the lock is for
def test_concurrent_applies_leave_exactly_one_correct_patch(site):
    s, reference = site("0.5.21"), site("0.5.21")
    assert reference.invoke("apply").returncode == 0
    procs = [subprocess.Popen([sys.executable, "-m", "eagle3_patch", "apply"], env=s.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    outputs = [p.communicate(timeout=120) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    assert all(code == 0 for code, _, _ in results), results
    outcomes = sorted(out.splitlines()[0] for _, out, _ in results)
    assert sum(o.startswith("Patched") for o in outcomes) == 1, outcomes
    for name in ("qwen3_5.py", "qwen3_5_text.py"):
        assert s.read(name) == reference.read(name)
        assert s.file(name + ".eagle3-bak").read_bytes() == release_file("0.5.21", MODELS + name)


@pytest.mark.slow  # four processes applying and reverting at once
def test_concurrent_applies_and_reverts_all_succeed_and_leave_a_consistent_install(site):
    # revert now deletes the lock file as its last act under the lock: a waiter on the deleted
    # file must take the new one, so no two processes ever decide and write at once.
    s, reference = site("0.5.21"), site("0.5.21")
    assert reference.invoke("apply").returncode == 0
    loop = (f"for i in 1 2 3; do {shlex.quote(sys.executable)} -m eagle3_patch apply >/dev/null || exit $?; "
            f"{shlex.quote(sys.executable)} -m eagle3_patch revert >/dev/null || exit $?; done")
    procs = [subprocess.Popen(["sh", "-c", loop], env=s.env(), stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    state = json.loads(s.invoke("status", "--json").stdout)["state"]
    assert state in ("patched", "unpatched")
    for name in ("qwen3_5.py", "qwen3_5_text.py"):
        shipped = release_file("0.5.21", MODELS + name)
        assert s.read(name) == (reference.read(name) if state == "patched" else shipped)
    ours = sorted(p.name for p in s.models.iterdir() if p.name.startswith(".") or "eagle3" in p.name)
    if state == "unpatched":  # the last writer reverted: nothing of ours, the lock file included
        assert ours == [], ours


def _apply_and_damage(s, old: bytes, new: bytes):
    assert s.invoke("apply").returncode == 0
    clean = s.read()
    s.file().write_bytes(clean.replace(old, new, 1))
    return clean


@pytest.mark.slow
def test_edited_hook_is_damaged_check_fails_and_apply_repairs(site):
    s = site("0.5.12")
    clean = _apply_and_damage(s, b"layers_to_capture = [val + 1 for val in layer_ids]",
                             b"layers_to_capture = [val for val in layer_ids]")
    check = _clean(s.invoke("check"))
    assert check.returncode == 1 and "damaged" in check.stdout + check.stderr
    assert json.loads(s.invoke("status", "--json").stdout)["state"] == "damaged"
    repaired = s.invoke("apply")
    assert repaired.returncode == 0 and "Repaired" in repaired.stdout
    assert s.read() == clean
    backup = json.loads(s.invoke("status", "--json").stdout)["files"][0]["backup"]
    assert backup["modified_since_patch"] is False and backup["stale"] is False
    assert s.invoke("revert").returncode == 0
    assert s.read() == release_file("0.5.12", MODELS + "qwen3_5.py")


@pytest.mark.slow
def test_deleted_hook_with_marker_left_is_damaged_and_repaired(site):
    s = site("0.5.12")
    assert s.invoke("apply").returncode == 0
    clean = s.read()
    text = clean.decode()
    start = text.index("    def set_eagle3_layers_to_capture(self, layers_to_capture")
    end = text.index("setattr(self.layers[layer_id], \"_is_layer_to_capture\", True)\n", start)
    end += len("setattr(self.layers[layer_id], \"_is_layer_to_capture\", True)\n")
    s.file().write_text(text[:start] + "    pass\n" + text[end:])
    status = json.loads(s.invoke("status", "--json").stdout)
    assert status["state"] == "damaged"
    assert s.invoke("check").returncode == 1
    assert s.invoke("apply").returncode == 0
    assert json.loads(s.invoke("status", "--json").stdout)["state"] == "patched"


@pytest.mark.slow
def test_revert_keeps_user_edits_outside_our_methods(site):
    s = site("0.5.12")
    assert s.invoke("apply").returncode == 0
    s.file().write_bytes(s.read() + b"\n# a local edit\n")
    result = _clean(s.invoke("revert"))
    assert result.returncode == 0 and "changed after eagle3-patch wrote it" in result.stdout
    assert s.read() == release_file("0.5.12", MODELS + "qwen3_5.py") + b"\n# a local edit\n"


def test_no_sglang_names_interpreter_and_how_to_point_elsewhere(tmp_path):
    result = _clean(invoke_cli("status", env={**os.environ, "PYTHONPATH": str(tmp_path)}))
    assert result.returncode == 3
    assert f"No SGLang found for {sys.executable}" in result.stderr
    assert "--python" in result.stderr and "--sglang-dir" in result.stderr


def test_python_option_finds_sglang_of_that_interpreter(site, tmp_path):
    s = site("0.5.12")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # this process sees no SGLang
    standin = tmp_path / "python"
    standin.write_text(f"#!/bin/sh\nPYTHONPATH={s.root} exec {sys.executable} \"$@\"\n")
    standin.chmod(0o755)
    result = invoke_cli("apply", "--python", str(standin), env=env)
    assert result.returncode == 0, result.stderr
    assert b"[EAGLE3-PATCH]" in s.read()


def test_python_option_with_bad_interpreter_is_a_clear_error(site):
    s = site("0.5.12")
    result = _clean(s.invoke("status", "--python", "/nonexistent/python"))
    assert result.returncode == 3 and "Cannot start the interpreter /nonexistent/python: no such file." in result.stderr


def test_sglang_dir_option_works_without_the_package_on_path(site, tmp_path):
    s = site("0.5.12")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    ok = invoke_cli("status", "--json", "--sglang-dir", str(s.package), env=env)
    assert ok.returncode == 0 and json.loads(ok.stdout)["sglang_version"] == "0.5.12"
    bad = _clean(invoke_cli("status", "--sglang-dir", str(tmp_path), env=env))
    assert bad.returncode == 3 and "not an SGLang package folder" in bad.stderr


@pytest.mark.slow
def test_unchecked_hash_bytecode_is_dropped_so_python_loads_the_patch(site):
    s = site("0.5.12")
    pyc = py_compile.compile(str(s.file()), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    assert os.path.exists(pyc)
    assert s.invoke("apply").returncode == 0
    assert not os.path.exists(pyc)


@pytest.mark.parametrize("command", first_fast(["diff"], ["apply", "--dry-run"]))
def test_diff_and_dry_run_show_the_change_and_write_nothing(site, command):
    s = site("0.5.21")
    before = _snapshot(s.models)
    result = s.invoke(*command)
    assert result.returncode == 0
    assert "+++ b/sglang/srt/models/qwen3_5.py" in result.stdout
    assert "+    # [EAGLE3-PATCH]" in result.stdout
    assert "+++ b/sglang/srt/models/qwen3_5_text.py" in result.stdout
    assert _snapshot(s.models) == before
