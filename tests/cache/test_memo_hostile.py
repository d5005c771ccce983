"""A corrupt, hostile or unwritable memo never crashes a command and never decides its answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import click
import pytest

import eagle3_patch
from eagle3_patch.engine.apply import apply
from eagle3_patch.engine.status import status as status_of
from eagle3_patch.ui import render
from eagle3_patch.site.locate import locate_sglang

from support import userenv
from support.memos import PLANTED, fresh, memo_path, patched, plant, status_json, trusted
from support.sites import Site

pytestmark = pytest.mark.slow  # the memo attacked from the file system and by unprivileged users

USER = "e3i11"  # an unprivileged account of our own, for permission tests run as root


def _used_fresh(s) -> dict:
    """status answers exactly as a fresh analysis does, and says nothing planted."""
    out, report = status_json(s)
    assert PLANTED not in out
    assert out == fresh(s, "status", "--json")
    return report


def _valid_memo(cache: Path) -> None:
    memo = json.loads(memo_path(cache).read_text())
    assert memo["analysis"]["state"] == "patched" and PLANTED not in json.dumps(memo)


def _in_process(site, private_cache):
    """Patched 0.5.21 and its trusted memo; status in this process (the loader is under test)."""
    install = locate_sglang(sglang_dir=site("0.5.21").package)
    apply(install)

    def status(cache: bool = True) -> dict:
        return render.to_json(status_of(install, cache=cache))

    status()
    plant(private_cache)
    assert PLANTED in json.dumps(status())
    return status


def test_truncated_memo_is_a_miss_and_is_rewritten(site, private_cache):
    s = patched(site)
    trusted(s, private_cache)
    memo = memo_path(private_cache)
    memo.write_bytes(memo.read_bytes()[: memo.stat().st_size // 2])
    _used_fresh(s)
    _valid_memo(private_cache)


def _files(memo, value):
    memo["analysis"]["files"] = value


def _hook_field(field, value):
    def change(memo):
        memo["analysis"]["files"][0]["hooks"][0][field] = value
    return change


def _file_field(field, value):
    def change(memo):
        memo["analysis"]["files"][0][field] = value
    return change


@pytest.mark.parametrize("change", [
    lambda memo: memo.update(analysis=None),
    lambda memo: memo.update(analysis=[]),
    lambda memo: memo["analysis"].update(state=1),
    lambda memo: memo["analysis"].update(state="fine"),
    lambda memo: memo["analysis"].update(reason=["x"]),
    lambda memo: _files(memo, "qwen3_5.py"),
    lambda memo: _files(memo, {"qwen3_5.py": {}}),
    lambda memo: _files(memo, [None]),
    _hook_field("state", "bogus"),
    _hook_field("state", ["patched"]),
    _hook_field("cls", "NoSuchClass"),
    _hook_field("file", {"a": 1}),
    _hook_field("detail", 5),
    _file_field("orphan_markers", [True]),
    _file_field("orphan_markers", "12"),
    _file_field("path", "/etc/passwd"),
    _file_field("name", "../../etc/passwd"),
    _file_field("state", None),
    _file_field("hooks", [[]]),
    lambda memo: memo["analysis"].update(state="native"),
    lambda memo: memo["analysis"].update(state="unsupported"),
    _file_field("state", "native"),
    lambda memo: memo["analysis"]["files"][0]["hooks"].pop(),
    lambda memo: memo["analysis"]["files"][0]["hooks"].append(memo["analysis"]["files"][0]["hooks"][0]),
    lambda memo: memo["analysis"]["files"].pop(),
    lambda memo: memo["analysis"]["files"].append(memo["analysis"]["files"][0]),
    lambda memo: memo["analysis"].update(files=[]),
    lambda memo: memo["analysis"].update(reason="unsupported, says the memo"),
], ids=["analysis-null", "analysis-list", "state-int", "state-unknown", "reason-list",
        "files-string", "files-dict", "file-null", "hook-state-unknown", "hook-state-list",
        "hook-class-unknown", "hook-file-dict", "hook-detail-int", "markers-bool",
        "markers-string", "path-elsewhere", "name-elsewhere", "file-state-null", "hook-list",
        # well formed, but not what the analysis of these files could say
        "state-not-the-files'", "state-unsupported-with-files", "file-state-not-its-hooks'",
        "hook-dropped", "hook-twice", "file-dropped", "file-twice", "no-files", "reason-when-supported"])
def test_memo_with_wrong_types_or_values_is_a_miss(site, private_cache, change):
    status = _in_process(site, private_cache)
    plant(private_cache, change)
    assert status() == status(cache=False)
    _valid_memo(private_cache)


@pytest.mark.parametrize("content", [
    b"", b"null", b"[]", b'"memo"', b"\xff\xfe not json", b"[" * 200_000 + b"]" * 200_000,
    b'{"key": {}, "analysis": {}}',
], ids=["empty", "null", "list", "string", "binary", "deep", "other-key"])
def test_memo_that_is_not_a_memo_is_a_miss(site, private_cache, content):
    status = _in_process(site, private_cache)
    memo_path(private_cache).write_bytes(content)
    assert status() == status(cache=False)
    _valid_memo(private_cache)


def test_memo_that_is_not_a_memo_is_a_miss_for_the_cli(site, private_cache):
    s = patched(site)
    trusted(s, private_cache)
    memo_path(private_cache).write_bytes(b"\xff\xfe" + b"[" * 100_000)
    _used_fresh(s)
    _valid_memo(private_cache)


def test_symlinked_memo_is_not_followed_for_reading_or_writing(site, private_cache, tmp_path):
    s = patched(site)
    trusted(s, private_cache)
    memo = memo_path(private_cache)
    elsewhere = tmp_path / "planted.json"
    shutil.move(memo, elsewhere)
    memo.symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    _used_fresh(s)
    assert elsewhere.read_bytes() == before  # the link's target was not written through
    assert not memo.is_symlink()
    _valid_memo(private_cache)


def test_symlinked_memo_folder_is_not_trusted(site, private_cache, tmp_path):
    s = patched(site)
    trusted(s, private_cache)
    folder = memo_path(private_cache).parent
    elsewhere = tmp_path / "planted-folder"
    shutil.move(folder, elsewhere)
    folder.symlink_to(elsewhere)
    _used_fresh(s)


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666], ids=["group", "others", "everyone"])
def test_memo_others_can_write_is_not_trusted(site, private_cache, mode):
    s = patched(site)
    trusted(s, private_cache)
    memo_path(private_cache).chmod(mode)
    _used_fresh(s)


def test_memo_folder_others_can_write_is_not_trusted(site, private_cache):
    s = patched(site)
    trusted(s, private_cache)
    memo_path(private_cache).parent.chmod(0o777)
    _used_fresh(s)


def _uid(user: str) -> int:
    return userenv.ensure_user(user).pw_uid


@pytest.fixture
def other_user():
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    return _uid(USER)


def test_memo_written_by_another_user_is_not_trusted(site, private_cache, other_user):
    s = patched(site)
    trusted(s, private_cache)
    os.chown(memo_path(private_cache), other_user, other_user)
    _used_fresh(s)


def test_someone_elses_cache_folder_is_left_alone(site, private_cache, other_user):
    # e.g. sudo keeping the user's HOME: root must not fill the user's cache with root's files.
    s = patched(site)
    shutil.rmtree(private_cache)  # apply's memo
    private_cache.mkdir()
    os.chown(private_cache, other_user, other_user)
    _used_fresh(s)
    assert list(private_cache.iterdir()) == []


def test_memo_in_a_fifo_does_not_hang(site, private_cache):
    s = patched(site)
    trusted(s, private_cache)
    memo = memo_path(private_cache)
    memo.unlink()
    os.mkfifo(memo, 0o600)
    _used_fresh(s)


def test_oversized_memo_is_not_read(site, private_cache):
    s = patched(site)
    trusted(s, private_cache)
    memo = memo_path(private_cache)
    memo.write_bytes(memo.read_bytes() + b" " * (2 << 20))
    _used_fresh(s)
    _valid_memo(private_cache)


def test_concurrent_runs_on_a_cold_cache_agree_and_leave_one_valid_memo(site, private_cache):
    s = patched(site)
    expected = fresh(s, "status", "--json")
    outputs: list[str] = []

    def run():
        outputs.append(s.run("status", "--json").stdout)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outputs == [expected] * 6
    _valid_memo(private_cache)
    assert [p.name for p in memo_path(private_cache).parent.iterdir()] == [memo_path(private_cache).name]


@pytest.fixture
def tiny_full_disk(tmp_path):
    """A 64 KB tmpfs, filled up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: full
            pass
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_cache_is_a_miss_and_leaves_no_temp_file(site, tiny_full_disk):
    s = patched(site)
    result = s.run("status", "--json", XDG_CACHE_HOME=str(tiny_full_disk))
    assert result.returncode == 0 and result.stdout == fresh(s, "status", "--json")
    left = [p.name for p in tiny_full_disk.rglob("*") if p.is_file()]
    assert left == ["filler"]


@pytest.fixture
def readable_site():
    """A site every user can read (pytest's tmp folders are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="e3i11-memo-"))
    root.chmod(0o755)
    try:
        yield Site(root / "site", "0.5.21")
    finally:
        shutil.rmtree(root)


class _AsUser:
    """USER's side of a test: the interpreter that runs eagle3-patch, and argv run as USER.

    As root, USER through setpriv in the session's user_env (see userenv): this checkout
    and its venv may live where USER cannot reach, so eagle3-patch and click come from
    their read-only mounts there. Without root, whoever runs the tests, with this interpreter.
    """

    def __init__(self, user_env: userenv.UserEnv | None) -> None:
        self.user_env = user_env
        self.python = sys.executable if user_env is None else str(user_env.python)

    def __call__(self, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
        if self.user_env is None:
            return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        return self.user_env.run(USER, *argv, env=self.user_env.pythonpath(env), capture_output=True,
                                 text=True, timeout=120)


@pytest.fixture
def as_user(request) -> _AsUser:
    return _AsUser(request.getfixturevalue("user_env") if os.geteuid() == 0 else None)


def test_unwritable_cache_is_no_cache_for_an_unprivileged_user(readable_site, tmp_path, as_user):
    s = readable_site
    assert s.run("apply").returncode == 0
    cache = Path(tempfile.mkdtemp(prefix="e3i11-cache-"))
    cache.chmod(0o755)  # root's, readable, not writable by the user
    code = [str(Path(eagle3_patch.__file__).parent.parent), str(Path(click.__file__).parent.parent)]
    try:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([*code, str(s.root)])}
        python = as_user.python
        # Each twice: a second run would read whatever the first managed to write.
        runs = [as_user([python, "-m", "eagle3_patch", "status", "--json"], {**env, **where})
                for where in ({"XDG_CACHE_HOME": str(cache)}, {"HOME": "/nonexistent"})
                for _ in range(2)]
        nocache = as_user([python, "-m", "eagle3_patch", "status", "--json", "--no-cache"], env)
        for run in runs:
            assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
            assert run.stdout == nocache.stdout
        assert json.loads(nocache.stdout)["state"] == "patched"
        assert list(cache.iterdir()) == []
    finally:
        shutil.rmtree(cache)


def test_stale_memo_in_a_read_only_cache_is_not_used_by_an_unprivileged_user(readable_site, as_user):
    s = readable_site
    assert s.run("apply").returncode == 0
    cache = Path(tempfile.mkdtemp(prefix="e3i11-cache-"))
    code = [str(Path(eagle3_patch.__file__).parent.parent), str(Path(click.__file__).parent.parent)]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([*code, str(s.root)]),
           "XDG_CACHE_HOME": str(cache)}
    try:
        if os.geteuid() == 0:
            os.chown(cache, _uid(USER), _uid(USER))
        python = as_user.python
        status = [python, "-m", "eagle3_patch", "status", "--json"]
        assert as_user(status, env).returncode == 0
        memo = memo_path(cache)
        s.file().write_bytes(s.read().replace(b"[2, num_layers // 2", b"[3, num_layers // 2", 1))
        memo.chmod(0o400)
        memo.parent.chmod(0o500)
        before = memo.read_bytes()
        stale = as_user(status, env)
        assert stale.returncode == 0 and "Traceback" not in stale.stderr, stale.stderr
        assert stale.stdout == as_user([*status, "--no-cache"], env).stdout
        assert json.loads(stale.stdout)["state"] == "damaged"
        assert memo.read_bytes() == before
    finally:
        for folder in cache.rglob("analysis"):
            folder.chmod(0o700)
        shutil.rmtree(cache)


def _other_python(env: dict[str, str]) -> str | None:
    """An interpreter of another minor version that runs this eagle3-patch, if there is one."""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = [shutil.which(f"python3.{n}") for n in range(10, 15)]
    found += [str(p) for p in Path(sys.base_prefix).parent.glob("3.*/bin/python3")]
    for python in filter(None, found):
        probe = subprocess.run([python, "-c", "import sys, click, eagle3_patch; "
                                "print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, env=env, timeout=60)
        if probe.returncode == 0 and probe.stdout.strip() != mine:
            return python
    return None


def test_memo_of_a_real_other_python_is_not_used_and_vice_versa(site, private_cache):
    s = patched(site)
    code = [str(Path(eagle3_patch.__file__).parent.parent), str(Path(click.__file__).parent.parent)]
    env = {**s.env(), "PYTHONPATH": os.pathsep.join([*code, str(s.root)])}
    other = _other_python(env)
    if other is None:
        pytest.skip("no Python of another minor version on this machine")
    trusted(s, private_cache)
    theirs = subprocess.run([other, "-m", "eagle3_patch", "status"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert theirs.returncode == 0 and "state: patched" in theirs.stdout, theirs.stderr
    assert PLANTED not in theirs.stdout
    plant(private_cache)  # now the other Python's memo, planted
    assert PLANTED not in s.run("status").stdout
