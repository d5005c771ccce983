"""A symbolic link that leads nowhere, where eagle3-patch reads or writes a file of an installation.

A dangling or looping link in place of a model file was taken for "no such file": status and
apply called the release unsupported and advised an upgrade (qwen3_5.py), patched and said check
0 although SGLang cannot import qwen3_5.py (qwen3_vl.py), or quietly left out the text-only
classes (qwen3_5_text.py). Every command now names the link and where it points (exit 5), as for
a folder or a pipe there. Our backup and its record are files of ours: never read or written
through a link, which could put the backup's bytes anywhere the link points.
"""

from __future__ import annotations

import json
import os

import pytest

from support.marks import first_fast



COMMANDS = [("status",), ("check",), ("apply",), ("diff",), ("revert",), ("revert", "--from-backup")]


def _models(s) -> dict[str, bytes | str]:
    return {p.name: os.readlink(p) if p.is_symlink() else p.read_bytes() for p in s.models.iterdir()
            if p.name != ".eagle3-patch.lock"}


def _dangle(path, tmp_path) -> str:
    target = str(tmp_path / "gone" / path.name)
    path.unlink()
    path.symlink_to(target)
    return target


def _loop(path, tmp_path) -> str:
    path.unlink()
    path.symlink_to(path.name)
    return path.name


BREAKS = {"dangling": (_dangle, "a broken symbolic link"), "looping": (_loop, "a symbolic link that loops")}


@pytest.mark.parametrize("name", first_fast("qwen3_5.py", "qwen3_vl.py", "qwen3_5_text.py"))
@pytest.mark.parametrize("kind", first_fast(*BREAKS))
@pytest.mark.parametrize("command", first_fast(*((c,) for c in COMMANDS)), ids=" ".join)
def test_a_broken_link_in_place_of_a_model_file_is_named_with_where_it_points(site, tmp_path, name, kind,
                                                                                command):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    make, said = BREAKS[kind]
    target = make(s.file(name), tmp_path)
    before = _models(s)

    done = s.invoke(*command)

    assert done.returncode == 5, (done.stdout, done.stderr)
    assert f"{s.file(name)} is {said}" in done.stderr and target in done.stderr, done.stderr
    assert "Upgrade" not in done.stderr and "Traceback" not in done.stderr
    assert _models(s) == before


def test_a_broken_link_in_place_of_an_unpatched_qwen3_5_py_is_not_called_unsupported(site, tmp_path):
    s = site("0.5.21")
    target = _dangle(s.file(), tmp_path)
    done = s.invoke("status", "--json")
    assert done.returncode == 5, done.stdout
    error = json.loads(done.stdout)["error"]
    assert "unsupported" not in done.stdout and target in error["what"]
    assert "ln -sfn" in error["fix"] and "pip install --force-reinstall --no-deps sglang==" in error["fix"]


@pytest.mark.parametrize("suffix", first_fast(".eagle3-bak", ".eagle3-bak.json"))
def test_apply_never_writes_its_backup_through_a_link_planted_in_its_place(site, tmp_path, suffix):
    s = site("0.5.21")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim"
    victim.write_bytes(b"not yours")
    planted = s.models / f"qwen3_5.py{suffix}"
    planted.symlink_to(victim)

    assert s.invoke("apply").returncode == 0
    assert victim.read_bytes() == b"not yours" and os.listdir(elsewhere) == ["victim"]
    assert not planted.is_symlink() and b"[EAGLE3-PATCH]" in s.read()
    assert s.invoke("revert").returncode == 0 and b"[EAGLE3-PATCH]" not in s.read()
    assert victim.read_bytes() == b"not yours" and os.listdir(elsewhere) == ["victim"]


@pytest.mark.parametrize("kind", first_fast("dangling", "to-a-file"))
def test_a_link_in_place_of_our_backup_is_reported_as_one_and_never_restored(site, tmp_path, kind):
    s = site("0.5.21")
    shipped = s.read()
    assert s.invoke("apply").returncode == 0
    backup = s.models / "qwen3_5.py.eagle3-bak"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "to-a-file":  # even the shipped bytes: what a link names is not our backup
        (elsewhere / "copy").write_bytes(shipped)
    backup.unlink()
    backup.symlink_to(elsewhere / "copy")

    status = json.loads(s.invoke("status", "--json").stdout)
    assert status["files"][0]["backup"]["backup"] == "symlink", status["files"][0]["backup"]
    assert "backup file is a symbolic link" in s.invoke("status").stdout

    restored = s.invoke("revert", "--from-backup")
    assert restored.returncode == 11 and "symbolic link" in restored.stderr, restored.stderr
    assert b"[EAGLE3-PATCH]" in s.read() and backup.is_symlink()
