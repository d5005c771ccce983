"""The disk layer under hostile conditions: kill -9 mid-write, a full disk, a held lock,
unreadable files. Each is produced for real (a killed process, a small tmpfs, a second
process, an unprivileged user), and the CLI is run as a user runs it."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from eagle3_patch.site import backups, install
from eagle3_patch.errors import EXIT_LOCKED, LockTimeout, NotWritable
from eagle3_patch.patch.hooks import MARKER
from eagle3_patch.site.lock import LOCK_NAME, LOCK_TIMEOUT_S, locked

from support.sites import Site
from support.userenv import ensure_user


pytestmark = pytest.mark.slow  # killed processes, a small tmpfs, held locks, unprivileged users

USER = "e3i9b"

# Runs the CLI, but freezes it (so the test can kill -9 it) at its first os.replace
# of a temp file: the moment a crash leaves the debris issue 9 found.
_FREEZE_AT_REPLACE = """
import os, sys, time
def hook(event, args):
    if event == "os.rename" and str(args[0]).endswith(".tmp"):
        print("FROZEN", args[0], flush=True)
        time.sleep(3600)
sys.addaudithook(hook)
from eagle3_patch.cli import main
main(sys.argv[1:])
"""


def _kill_mid_write(s: Site, *args: str) -> Path:
    """kill -9 the CLI between writing a temp file and renaming it; returns the temp file."""
    child = subprocess.Popen([sys.executable, "-c", _FREEZE_AT_REPLACE, *args],
                             stdout=subprocess.PIPE, text=True, env=s.env())
    line = child.stdout.readline()
    child.kill()
    child.wait()
    child.stdout.close()
    assert line.startswith("FROZEN"), line
    return Path(line.split()[1])


def test_killed_apply_leaves_debris_that_status_reports_and_apply_removes(site):
    s = site("0.5.21")
    original = s.read()
    debris = _kill_mid_write(s, "apply")
    assert debris.name.startswith(".qwen3_5.py.eagle3-bak.") and debris.exists()
    assert s.read() == original
    status = json.loads(s.run("status", "--json").stdout)
    assert status["leftover_temp_files"] == [str(debris)]
    text = s.run("status")
    assert text.returncode == 0 and f"rm -f {debris}" in text.stdout
    assert debris.exists(), "status writes nothing"
    applied = s.run("apply")
    assert applied.returncode == 0, applied.stderr
    assert f"removed {debris}" in applied.stdout
    assert not list(s.models.glob(".*.tmp"))
    assert json.loads(s.run("status", "--json").stdout)["leftover_temp_files"] == []


def test_killed_revert_debris_is_reported_on_read_only_install_and_removed_once_writable(site):
    s = site("0.5.21")
    assert s.run("apply").returncode == 0
    patched = s.read()
    debris = _kill_mid_write(s, "revert")
    assert debris.name.startswith(".qwen3_5.py.") and s.read() == patched
    s.file().chmod(0o444)
    noop = s.run("apply", "--json")
    assert noop.returncode == 0, noop.stderr
    assert json.loads(noop.stdout)["leftover_temp_files"] == [str(debris)]
    assert debris.exists()
    s.file().chmod(0o644)
    again = s.run("apply")
    assert again.returncode == 0 and f"removed {debris}" in again.stdout
    assert not debris.exists() and s.read() == patched


def test_debris_beside_a_symlinks_target_is_found_and_removed(site, tmp_path):
    s = site("0.5.21")
    store = tmp_path / "store"
    store.mkdir()
    (store / "qwen3_5.py").write_bytes(s.read())
    original = s.read()
    s.file().unlink()
    s.file().symlink_to(store / "qwen3_5.py")
    assert s.run("apply").returncode == 0
    debris = _kill_mid_write(s, "revert")
    assert debris.parent == store
    status = json.loads(s.run("status", "--json").stdout)
    assert status["leftover_temp_files"] == [str(debris)]
    reverted = s.run("revert")
    assert reverted.returncode == 0 and f"removed {debris}" in reverted.stdout
    assert sorted(p.name for p in store.iterdir()) == ["qwen3_5.py"]
    assert s.file().is_symlink() and s.read() == original


def test_debris_beside_a_link_and_beside_its_target_is_listed_folder_by_folder(site):
    s = site("0.5.21")
    store = s.models.with_name("models.store")  # a sibling whose name extends "models"
    s.link_to_store(store)
    beside_link = s.models / ".qwen3_5.py.abcd1234.tmp"
    beside_target = store / ".qwen3_5.py.efgh5678.tmp"
    beside_link.write_bytes(b"")
    beside_target.write_bytes(b"")
    status = json.loads(s.run("status", "--json").stdout)
    assert status["leftover_temp_files"] == [str(beside_link), str(beside_target)]


def test_temp_files_of_other_names_are_not_ours_to_remove(site):
    s = site("0.5.21")
    foreign = [s.models / ".qwen3_vl.py.abcd1234.tmp", s.models / ".qwen3_5.py.notours.tmp",
               s.models / "qwen3_5.py.abcd1234.tmp"]
    for path in foreign:
        path.write_bytes(b"someone else's\n")
    assert s.run("apply").returncode == 0
    assert all(path.exists() for path in foreign)


# --- a full disk ---------------------------------------------------------------------

@pytest.fixture
def small_disk():
    """A real tmpfs (size limit 4 MiB), unmounted afterwards."""
    mount = Path(tempfile.mkdtemp(prefix="e3i9b-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
        mount.rmdir()


def _leave_free(folder: Path, free: int) -> None:
    """Fill the file system holding ``folder`` until about ``free`` bytes are left."""
    stats = os.statvfs(folder)
    fill = stats.f_bavail * stats.f_frsize - free
    (folder / "filler").write_bytes(b"\0" * fill)


def _our_files(s: Site) -> list[str]:
    return sorted(p.name for p in s.models.iterdir() if p.name.startswith((".qwen", "qwen3_5.py.")))


@pytest.mark.parametrize("fails_at", ["backup", "target"])
def test_full_disk_says_no_space_and_removes_what_it_wrote(small_disk, fails_at):
    s = Site(small_disk / "site", "0.5.21")
    before = {p.name: p.read_bytes() for p in s.models.iterdir()}
    size, text_size = len(s.read()), len(s.read("qwen3_5_text.py"))
    # "backup": not even the first backup fits; "target": all four backup files fit
    # (two backups, two records), the new qwen3_5.py does not.
    _leave_free(small_disk, size // 2 if fails_at == "backup" else size + text_size + 16 * 1024)
    result = s.run("apply")
    assert result.returncode == 6, result.stderr
    failed = s.file("qwen3_5.py.eagle3-bak" if fails_at == "backup" else "qwen3_5.py")
    assert f"Cannot write {failed}: no space left on tmpfs (mounted at {small_disk})" \
        in result.stderr
    assert "read-only" not in result.stderr and "sudo" not in result.stderr
    assert "Traceback" not in result.stderr
    after = {p.name: p.read_bytes() for p in s.models.iterdir() if p.name != LOCK_NAME}
    assert after == before and _our_files(s) == []
    (small_disk / "filler").unlink()
    assert s.run("apply").returncode == 0 and s.run("check").returncode == 0


def test_commit_failing_on_quota_removes_backups_it_created(tmp_path, monkeypatch):
    target = tmp_path / "m.py"
    target.write_bytes(b"a = 1\n")
    real = install.atomic_write

    def quota_on_target(path, data):
        if path == target:
            raise OSError(122, "Disk quota exceeded")  # EDQUOT
        real(path, data)

    monkeypatch.setattr(install, "atomic_write", quota_on_target)
    change = install.FileChange(target, b"a = 1\n", b"a = 2\n", backup=b"a = 1\n",
                                meta=backups.BackupMeta("x", "y", "0", "0"))
    with pytest.raises(NotWritable, match="no space left on"):
        install.commit([change])
    assert [p.name for p in tmp_path.iterdir()] == ["m.py"]


def test_commit_that_cannot_put_a_target_back_says_so_and_keeps_its_backup(tmp_path, monkeypatch):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_bytes(b"a = 1\n")
    second.write_bytes(b"b = 1\n")
    real = install.atomic_write

    def disk_fills_after_first(path, data):
        if path == second or (path == first and data == b"a = 1\n"):
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(install, "atomic_write", disk_fills_after_first)
    meta = backups.BackupMeta("x", "y", "0", "0")
    changes = [install.FileChange(p, p.read_bytes(), new, backup=p.read_bytes(), meta=meta)
               for p, new in ((first, b"a = 2\n"), (second, b"b = 2\n"))]
    with pytest.raises(NotWritable) as failed:
        install.commit(changes)
    assert f"Putting back {first} failed too" in failed.value.message
    assert "nothing was changed" not in failed.value.message
    assert first.read_bytes() == b"a = 2\n" and second.read_bytes() == b"b = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["a.py", "a.py.eagle3-bak", "a.py.eagle3-bak.json", "b.py"]


# --- the lock ------------------------------------------------------------------------

_HOLD_LOCK = """
import sys
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("HELD", flush=True)
    sys.stdin.read()
"""


def test_waiting_apply_says_once_that_another_process_holds_the_lock(site):
    s = site("0.5.21")
    lock = s.models / LOCK_NAME
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(lock)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "HELD"
    apply = subprocess.Popen([sys.executable, "-m", "eagle3_patch", "apply"], env=s.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = apply.stderr.readline()
    assert "waiting for another eagle3-patch process" in first and str(lock) in first
    holder.stdin.close()
    holder.wait()
    holder.stdout.close()
    out, rest = apply.communicate(timeout=120)
    assert apply.returncode == 0 and "Patched" in out
    assert "waiting" not in rest


def test_a_lock_held_by_a_killed_process_is_free_at_once(site):
    s = site("0.5.21")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(s.models / LOCK_NAME)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "HELD"
    holder.kill()  # SIGKILL: no finally, no atexit; the kernel drops the lock with the process
    holder.wait()
    holder.stdout.close()
    holder.stdin.close()
    result = s.run("apply")
    assert result.returncode == 0 and "waiting" not in result.stderr, result.stderr


def test_a_lock_held_past_the_timeout_fails_with_exit_7_after_one_notice(tmp_path):
    held = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)  # another open file: as good as another process
    now = [0.0]

    def clock():  # ten seconds pass between two attempts
        now[0] += 10
        return now[0]

    told = []
    try:
        with pytest.raises(LockTimeout) as raised:
            with locked(tmp_path, tell_waiting=told.append, clock=clock):
                pytest.fail("acquired a lock another holder has")
    finally:
        os.close(held)
    assert raised.value.exit_code == EXIT_LOCKED
    assert f"held {tmp_path / LOCK_NAME} for {LOCK_TIMEOUT_S} s" in raised.value.what
    assert told == [str(tmp_path / LOCK_NAME)]
    with locked(tmp_path):  # free again once its holder lets go
        pass


def test_a_waiter_on_a_lock_file_its_holder_removed_takes_the_new_one_so_two_never_hold_it(tmp_path):
    # revert deletes the lock file as its last act under the lock; a process already waiting
    # on that file must not count the orphan it then acquires as the lock.
    path = tmp_path / LOCK_NAME
    waiting, inside = threading.Event(), {}

    def clock():  # the second reading is past the notice: the waiter says so at its first miss
        clock.calls += 1
        return 0.0 if clock.calls == 1 else 3.0
    clock.calls = 0

    def waiter():
        with locked(tmp_path, tell_waiting=lambda _: waiting.set(), clock=clock):
            inside["exists"] = path.exists()
            probe = os.open(path, os.O_RDWR)
            try:  # a third process opening the path now must find it held
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                inside["third_got_it"] = True
                fcntl.flock(probe, fcntl.LOCK_UN)
            except BlockingIOError:
                inside["third_got_it"] = False
            finally:
                os.close(probe)

    with locked(tmp_path) as held:
        second = threading.Thread(target=waiter)
        second.start()
        assert waiting.wait(10), "the second locker never waited"
        held.remove_when_done()
    second.join(10)
    assert inside == {"exists": True, "third_got_it": False}


def test_a_symlink_planted_as_the_lock_is_refused_and_nothing_is_created_through_it(site, tmp_path):
    # Whoever can write the models folder could make root create (O_CREAT) a file
    # anywhere; the lock is only ever taken on a file of its own, as filelock did.
    s = site("0.5.21")
    original = s.read()
    lock = s.models / LOCK_NAME
    named = tmp_path / "elsewhere.lock"
    lock.symlink_to(named)
    result = s.run("apply")
    assert result.returncode == 6, result.stderr
    assert f"Cannot write {lock}" in result.stderr and "Traceback" not in result.stderr
    assert f"rm {lock}" in result.stderr  # the way out, not "run it as the owner"
    assert not named.exists() and lock.is_symlink()
    assert s.read() == original and not s.file().with_name("qwen3_5.py.eagle3-bak").exists()


def test_an_error_inside_the_locked_block_is_not_blamed_on_the_lock(tmp_path):
    with pytest.raises(PermissionError, match="inside"):
        with locked(tmp_path):
            raise PermissionError(13, "raised inside the locked block")


# --- an unprivileged user ------------------------------------------------------------

@pytest.mark.parametrize("command", ["status", "apply", "check", "revert"])
def test_unreadable_model_file_is_a_clear_error_not_a_bug(user_env, user_site, command):
    user_site.file().chmod(0o000)
    result = user_site.as_user(user_env, USER, command)
    assert result.returncode == 5, result.stderr
    assert f"Cannot read {user_site.file()}" in result.stderr
    assert "a bug" not in result.stderr and "Traceback" not in result.stderr
    assert f"chmod a+r {user_site.file()}" in result.stderr


def _applied_in_a_shared_install(s: Site) -> None:
    """Root applies, under umask 0, to models every user may write: a shared install."""
    s.models.chmod(0o777)
    for path in s.models.glob("qwen3*.py"):
        path.chmod(0o666)
    applied = subprocess.run([sys.executable, "-m", "eagle3_patch", "apply"], env=s.env(),
                             capture_output=True, text=True, timeout=120, umask=0)
    assert applied.returncode == 0, applied.stderr


def test_revert_reads_everything_before_it_writes_a_file_it_cannot_read_leaves_all_as_it_was(
        user_env, user_site):
    # revert used to write first and fail afterwards, reading the state to report:
    # exit 5 with the file already reverted.
    _applied_in_a_shared_install(user_site)
    base = user_site.file("qwen3_vl.py")
    base.chmod(0o000)
    before = {p.name: p.read_bytes() for p in user_site.models.iterdir() if p.is_file()}
    result = user_site.as_user(user_env, USER, "revert")
    assert result.returncode == 5, result.stderr
    assert f"Cannot read {base}: Permission denied." in result.stderr
    assert f"chmod a+r {base}" in result.stderr
    assert {p.name: p.read_bytes() for p in user_site.models.iterdir() if p.is_file()} == before


def test_unreadable_models_folder_is_a_clear_error_not_a_bug(user_env, user_site):
    user_site.models.chmod(0o000)
    try:
        result = user_site.as_user(user_env, USER, "status")
    finally:
        user_site.models.chmod(0o755)
    assert result.returncode == 5, result.stderr
    assert f"Cannot read {user_site.models}" in result.stderr
    assert f"chmod a+rx {user_site.models}" in result.stderr and "a bug" not in result.stderr


def test_a_lock_made_under_a_permissive_umask_lets_another_user_revert(user_env, user_site):
    # A shared install (a venv every runtime UID may write, a group-writable
    # site-packages with umask 002): the lock file is created like every other
    # file, by the umask, so the next user of the install can take it too.
    _applied_in_a_shared_install(user_site)
    reverted = user_site.as_user(user_env, USER, "revert")
    assert reverted.returncode == 0, reverted.stderr
    assert MARKER.encode() not in user_site.read()


def test_sglang_dir_this_user_may_not_search_is_a_clear_error_not_a_bug(user_env, user_site):
    # Readable but not searchable (a `chmod -R 644`): it is SGLang's folder, not "no
    # SGLang package folder"; the same exit 5 as when PYTHONPATH selects it.
    user_site.package.chmod(0o644)
    try:
        result = user_site.as_user(user_env, USER, "status", "--sglang-dir", str(user_site.package))
    finally:
        user_site.package.chmod(0o755)
    assert result.returncode == 5, result.stderr
    assert f"Cannot read {user_site.package}: Permission denied" in result.stderr
    assert f"chmod a+rx {user_site.package}" in result.stderr
    assert "a bug" not in result.stderr and "not an SGLang package folder" not in result.stderr


def test_a_lock_of_another_user_in_a_sticky_models_folder_is_refused(user_env, user_site):
    # In a sticky folder only a file's owner may remove it: that user could delete
    # the lock while we hold it and let a third process lock a new one beside us.
    me, other = ensure_user(USER), ensure_user("e3i9c")
    user_site.models.chmod(0o1777)
    for path in user_site.models.glob("qwen3*.py"):
        os.chown(path, me.pw_uid, me.pw_gid)
    lock = user_site.models / LOCK_NAME
    lock.write_bytes(b"")
    os.chown(lock, other.pw_uid, other.pw_gid)
    lock.chmod(0o666)
    original = user_site.read()
    try:
        result = user_site.as_user(user_env, USER, "apply")
    finally:
        user_site.models.chmod(0o755)
    assert result.returncode == 6, result.stderr
    assert f"Cannot write {lock}" in result.stderr and f"uid {other.pw_uid}" in result.stderr
    assert user_site.read() == original
