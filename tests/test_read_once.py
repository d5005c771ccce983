"""Each command reads the installation once; apply and revert read it once more, under the lock.

Counted in this process while the CLI runs (``Site.invoke``), at the operating system's
door: every ``os.open``, ``open``, ``os.listdir`` and ``os.scandir`` is seen, whichever
module makes it. Counted per command: the opens of each model file and of each backup
path, the listings of the models folder (where a killed write's temp files are looked
for), the listings of eagle3-patch's own package (``usercache.code_identity``: one per key
computed) and the reads of each cache entry (analysis memo, hand-off memo).
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import os
import sys

import pytest

import eagle3_patch
from eagle3_patch.lock import LOCK_NAME
from serve_fixtures import write_drafter, write_target

MODEL_FILES = ("qwen3_5.py", "qwen3_5_text.py", "qwen3_vl.py")  # 0.5.21 ships all three
BACKUPS = tuple(f"{name}{suffix}" for name in MODEL_FILES[:2] for suffix in (".eagle3-bak", ".eagle3-bak.json"))
PACKAGE = os.path.dirname(os.path.abspath(eagle3_patch.__file__))
CACHES = ("analysis", "inmemory")


class Reads:
    """What one command read, each read noted with whether the lock was held then."""

    def __init__(self) -> None:
        self.seen: dict[str, list[bool]] = collections.defaultdict(list)
        self.lock_fds: set[int] = set()

    def note(self, what: str) -> None:
        self.seen[what].append(bool(self.lock_fds))

    def counts(self) -> dict[str, int]:
        return {what: len(when) for what, when in sorted(self.seen.items())}


@contextlib.contextmanager
def counted(site):
    """The reads of ``site``'s installation, its backups and our caches made inside the block."""
    reads = Reads()
    models = os.fspath(site.models)
    real = {name: getattr(os, name) for name in ("open", "close", "listdir", "scandir")}
    real_open = builtins.open

    def file_opened(path, flags: int) -> None:
        if isinstance(path, int) or flags & os.O_CREAT:
            return
        folder, name = os.path.split(os.fsdecode(path))
        if folder == models and name in (*MODEL_FILES, *BACKUPS):
            reads.note(name)

    def os_open(path, flags, *args, dir_fd=None, **kwargs):
        if dir_fd is not None:
            folder = os.readlink(f"/proc/self/fd/{dir_fd}")
            if os.path.basename(folder) in CACHES and not flags & (os.O_CREAT | os.O_DIRECTORY):
                reads.note(f"{os.path.basename(folder)} memo")
        else:
            file_opened(path, flags)
        fd = real["open"](path, flags, *args, dir_fd=dir_fd, **kwargs)
        if os.fsdecode(path) == os.path.join(models, LOCK_NAME):
            reads.lock_fds.add(fd)
        return fd

    def os_close(fd):
        reads.lock_fds.discard(fd)
        return real["close"](fd)

    def opened(file, mode="r", *args, **kwargs):
        if "r" in mode and "+" not in mode:
            file_opened(file, 0)
        return real_open(file, mode, *args, **kwargs)

    def listed(path, *, how):
        folder = os.fsdecode(path) if not isinstance(path, int) else None
        if folder == models:
            reads.note("models folder listed")
        elif folder == PACKAGE:
            reads.note("code identity")
        return real[how](path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "open", os_open)
        patch.setattr(os, "close", os_close)
        patch.setattr(builtins, "open", opened)
        patch.setattr(os, "listdir", lambda path=".": listed(path, how="listdir"))
        patch.setattr(os, "scandir", lambda path=".": listed(path, how="scandir"))
        yield reads


def once(*, under_lock: bool = False, memo: tuple[str, ...] = ("analysis",), code: int = 1) -> dict[str, int]:
    """Each model file and backup path opened once and the models folder listed once (each once
    more under the lock, where ``under_lock``); ``code`` keys' worth of our code, each of the
    ``memo`` entries read once."""
    times = 2 if under_lock else 1
    return {**dict.fromkeys((*MODEL_FILES, *BACKUPS, "models folder listed"), times),
            **({"code identity": code} if code else {}), **{f"{cache} memo": 1 for cache in memo}}


def run(site, *args: str) -> Reads:
    with counted(site) as reads:
        done = site.invoke(*args)
    assert done.returncode in (0, 1), done.stderr
    return reads


@pytest.fixture
def patched(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    return s


@pytest.mark.parametrize("command", [["status"], ["check"], ["diff"], ["apply"], ["apply", "--dry-run"]])
def test_a_command_that_writes_nothing_reads_the_installation_once(patched, command):
    assert run(patched, *command).counts() == once()


@pytest.mark.parametrize("command", [["status"], ["check"], ["diff"], ["revert"]])
def test_a_command_that_writes_nothing_to_an_unpatched_installation_reads_it_once(site, command):
    assert run(site("0.5.21"), *command).counts() == once()


def test_a_writing_apply_reads_once_then_once_more_under_the_lock_and_reports_from_what_it_wrote(site):
    reads = run(site("0.5.21"), "apply")
    assert reads.counts() == once(under_lock=True)
    assert all(reads.seen[name] == [False, True] for name in MODEL_FILES)


def test_apply_without_the_cache_computes_no_key_and_reads_no_memo(site):
    assert run(site("0.5.21"), "apply", "--no-cache").counts() == once(under_lock=True, memo=(), code=0)


@pytest.mark.parametrize("flags", [[], ["--from-backup"]])
def test_a_writing_revert_reads_once_then_once_more_under_the_lock(patched, flags):
    reads = run(patched, "revert", *flags)
    assert reads.counts() == once(under_lock=True)
    assert all(reads.seen[name] == [False, True] for name in MODEL_FILES)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_run_hashes_the_files_it_read_for_its_key(site, warm):
    s = site("0.5.21")
    command = ("run", "--dry-run", "--", sys.executable, "-c", "pass")
    if warm:
        run(s, *command)
    # A warm hand-off answers from its own memo: no analysis, so no analysis memo either.
    assert run(s, *command).counts() == once(memo=("inmemory",) if warm else CACHES)


def test_serve_in_memory_reads_the_installation_once(site, tmp_path):
    s = site("0.5.21")
    model, drafter = write_target(tmp_path / "model"), write_drafter(tmp_path / "drafter")
    reads = run(s, "serve", "--in-memory", "--model", str(model), "--drafter", str(drafter), "--dry-run")
    assert reads.counts() == once(memo=CACHES)
