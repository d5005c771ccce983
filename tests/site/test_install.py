"""The disk layer: all-or-nothing commits, atomic replace, modes kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eagle3_patch.site import backups, install
from eagle3_patch.errors import NotWritable

from support import realenv
from support.paths import TESTS



def _files(tmp_path):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_bytes(b"a = 1\n")
    second.write_bytes(b"b = 1\n")
    return first, second


def _change(path, new):
    meta = backups.BackupMeta("x", "y", "0", "0")
    return install.FileChange(path, path.read_bytes(), new, backup=path.read_bytes(), meta=meta)


def test_commit_rolls_back_earlier_files_when_a_later_write_fails(tmp_path, monkeypatch):
    first, second = _files(tmp_path)
    real = install.atomic_write

    def failing(path, data):
        if path == second:
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(install, "atomic_write", failing)
    with pytest.raises(NotWritable, match="No space left on device"):
        install.commit([_change(first, b"a = 2\n"), _change(second, b"b = 2\n")])
    assert first.read_bytes() == b"a = 1\n" and second.read_bytes() == b"b = 1\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_write_keeps_mode_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "m.py"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    install.atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in tmp_path.iterdir()] == ["m.py"]


def test_failed_replace_leaves_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "m.py"
    target.write_bytes(b"old\n")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        install.atomic_write(target, b"new\n")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.py"]


def test_backup_and_its_record_are_written_before_the_target(tmp_path):
    first, _ = _files(tmp_path)
    install.commit([_change(first, b"a = 2\n")])
    assert backups.read_backup(first).data == b"a = 1\n"
    assert backups.read_backup(first).meta == backups.BackupMeta("x", "y", "0", "0")
    assert first.read_bytes() == b"a = 2\n"


@pytest.mark.slow  # the lock guards the real-SGLang venv, which only slow tests use
def test_real_venv_models_lock_excludes_a_second_run(tmp_path, monkeypatch):
    # Two pytest runs sharing the cached real-SGLang venv must not patch it at once.
    monkeypatch.setenv("EAGLE3_PATCH_TEST_CACHE", str(tmp_path))
    other = ("import sys\n"
             "from support import realenv\n"
             "from filelock import Timeout\n"
             "try:\n"
             "    realenv.models_lock(timeout=0.2).acquire()\n"
             "except Timeout:\n"
             "    sys.exit(3)\n")
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    with realenv.models_lock(timeout=5):
        held = subprocess.run([sys.executable, "-c", other], env=env, timeout=60)
    free = subprocess.run([sys.executable, "-c", other], env=env, timeout=60)
    assert (held.returncode, free.returncode) == (3, 0)
