"""Each command reads the installation once; apply and revert read it once more, under the lock.

Counted in this process while the CLI runs (``Site.invoke``), at the operating system's
door: every ``os.open``, ``open``, ``os.listdir`` and ``os.scandir`` is seen, whichever
module makes it. Counted per command: the opens of each model file and of each backup
path, the listings of the models folder (where a killed write's temp files are looked
for), the listings of eagle3-patch's own package (one per ``usercache.code_identity``
computed) and the reads of each cache entry (analysis memo, hand-off memo).
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import json
import os
import sys

import pytest

import eagle3_patch
from eagle3_patch.site.lock import LOCK_NAME

from support.marks import first_fast
from support.serve_fixtures import write_drafter, write_target


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
    more under the lock, where ``under_lock``); our code's identity computed ``code`` times;
    each of the ``memo`` entries read once."""
    times = 2 if under_lock else 1
    return {**dict.fromkeys((*MODEL_FILES, *BACKUPS, "models folder listed"), times),
            **({"code identity": code} if code else {}), **{f"{cache} memo": 1 for cache in memo}}


def run(site, *args: str) -> Reads:
    with counted(site) as reads:
        done = site.invoke(*args)
    assert done.returncode in (0, 1), done.stderr
    return reads


@pytest.fixture
def unpatched(site):
    """A 0.5.21 site whose analysis is remembered (a memo that is never written is never read)."""
    s = site("0.5.21")
    assert s.invoke("status").returncode == 0
    return s


@pytest.fixture
def patched(site):
    s = site("0.5.21")
    assert s.invoke("apply").returncode == 0
    return s


@pytest.mark.parametrize("command", first_fast(["status"], ["check"], ["diff"], ["apply"], ["apply", "--dry-run"]))
def test_a_command_that_writes_nothing_reads_the_installation_once(patched, command):
    assert run(patched, *command).counts() == once()


@pytest.mark.parametrize("command", first_fast(["revert"], ["status"], ["check"], ["diff"]))
def test_a_command_that_writes_nothing_to_an_unpatched_installation_reads_it_once(unpatched, command):
    assert run(unpatched, *command).counts() == once()


def test_a_writing_apply_reads_once_then_once_more_under_the_lock_and_reports_from_what_it_wrote(unpatched):
    reads = run(unpatched, "apply")
    # And the commit copies each backup path it replaces, under the lock, to put it back
    # should a later write fail (install._write_backup).
    assert reads.counts() == {**once(under_lock=True), **dict.fromkeys(BACKUPS, 3)}
    assert all(reads.seen[name] == [False, True] for name in MODEL_FILES)
    assert all(reads.seen[name] == [False, True, True] for name in BACKUPS)


@pytest.mark.slow
def test_apply_without_the_cache_computes_no_key_and_reads_no_memo(unpatched):
    reads = run(unpatched, "apply", "--no-cache")
    assert reads.counts() == {**once(under_lock=True, memo=(), code=0), **dict.fromkeys(BACKUPS, 3)}


@pytest.mark.parametrize("flags", first_fast([], ["--from-backup"]))
def test_a_writing_revert_reads_once_then_once_more_under_the_lock(patched, flags):
    reads = run(patched, "revert", *flags)
    # Plain revert judges the files it found (every class must be judgeable before ours is
    # removed) and then the files it left: the memo is asked once for each.
    assert reads.counts() == {**once(under_lock=True), "analysis memo": 1 if flags else 2}
    assert all(reads.seen[name] == [False, True] for name in (*MODEL_FILES, *BACKUPS))


@pytest.mark.parametrize("warm", first_fast(pytest.param(False, id="first"), pytest.param(True, id="repeated")))
def test_run_hashes_the_files_it_read_for_its_key(unpatched, warm):
    command = ("run", "--dry-run", "--", sys.executable, "-c", "pass")
    if warm:
        run(unpatched, *command)
    # The first run finds no hand-off memo (its folder is not made yet) and analyses; a
    # repeated one answers from the hand-off memo alone.
    assert run(unpatched, *command).counts() == once(memo=("inmemory",) if warm else ("analysis",))


@pytest.mark.slow
@pytest.mark.parametrize("in_memory", [True, False], ids=["in memory", "patched on disk"])
def test_serve_dry_run_reads_the_installation_once(site, tmp_path, in_memory):
    s = site("0.5.21")
    assert s.invoke("status" if in_memory else "apply").returncode == 0
    model, drafter = write_target(tmp_path / "model"), write_drafter(tmp_path / "drafter")
    flags = ["--in-memory"] if in_memory else []
    reads = run(s, "serve", *flags, "--model", str(model), "--drafter", str(drafter), "--dry-run")
    assert reads.counts() == once()


# --- what a writing command reports is what it wrote ---------------------------------

def _damage_a_hook(s) -> None:
    assert s.invoke("apply").returncode == 0
    s.file().write_bytes(s.read().replace(b"layers_to_capture = [val + 1 for val in layer_ids]",
                                          b"layers_to_capture = [val for val in layer_ids]", 1))


SETUPS = {  # how the site is made ready, and the command that then writes
    "apply, a killed write's temp file beside": (
        lambda s: (s.models / ".qwen3_5.py.abcd1234.tmp").write_bytes(b""), ["apply"]),
    "apply repairing, its backup kept": (_damage_a_hook, ["apply"]),
    "revert": (lambda s: s.invoke("apply"), ["revert"]),
    "revert --from-backup of a deleted file": (lambda s: (s.invoke("apply"), s.file().unlink()),
                                               ["revert", "--from-backup"]),
}
# What status --json says of the disk (not what the command did: action, outcome, changed, notes).
ON_DISK = ("state", "reason", "files", "after_uninstall", "leftover_temp_files")


@pytest.mark.parametrize("setup", first_fast(*SETUPS))
def test_a_writing_command_reports_what_a_fresh_status_then_reads(site, setup):
    s = site("0.5.21")
    prepare, command = SETUPS[setup]
    prepare(s)
    done = s.invoke(*command, "--json")
    reported = json.loads(done.stdout)
    assert done.returncode == 0 and reported["changed"], done.stderr
    fresh = json.loads(s.invoke("status", "--json", "--no-cache").stdout)
    assert {key: reported[key] for key in ON_DISK} == {key: fresh[key] for key in ON_DISK}
