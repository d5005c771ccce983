"""Every file eagle3-patch reads inside an SGLang installation is read within a bound.

A model file, METADATA, RECORD, version.py or server_args.py that is a link to /dev/zero,
a FIFO no one writes, or a file of gigabytes: never a hang, never unbounded memory, never
exit 70. Through the CLI as a process, each under a deadline far below what a hang takes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_BAD_TARGET, EXIT_INTERNAL
from eagle3_patch.site.filebytes import MAX_FILE_BYTES, NotAFile, read_bytes

from support.marks import first_fast
from support.serve_fixtures import write_drafter, write_sharded, write_target


DEADLINE = 30


def _zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _huge(path: Path) -> None:
    with path.open("r+b") as handle:  # sparse: gigabytes to read, nothing on the disk
        handle.truncate(4 << 30)


KINDS = {"dev-zero": _zero, "fifo": _fifo, "huge": _huge}
# Files of the installation's own that some command reads, relative to site-packages.
IN_SGLANG = {
    "model-file": "sglang/srt/models/qwen3_5.py",
    "metadata": "sglang-0.5.21.dist-info/METADATA",
    "record": "sglang-0.5.21.dist-info/RECORD",
    "version-py": "sglang/version.py",
    "server-args": "sglang/srt/server_args.py",
}
COMMANDS = {
    "status": ["status", "--json", "--no-cache"],
    "apply-dry-run": ["apply", "--dry-run", "--no-cache"],
    "revert-from-backup": ["revert", "--from-backup"],
    "run-dry-run": ["run", "--dry-run", "--no-cache", "--", sys.executable, "-c", "pass"],
}


def _cli(site, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "eagle3_patch", *args], capture_output=True, text=True,
                              env=site.env(), timeout=DEADLINE, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"eagle3-patch {' '.join(args)} still reading after {DEADLINE} s")


@pytest.mark.slow  # 60 CLI processes: CI runs them, the local loop has the helper's own tests below
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("where", IN_SGLANG.values(), ids=IN_SGLANG.keys())
@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_a_file_that_never_ends_is_refused_or_passed_over_never_read_without_bound(site, kind, where,
                                                                                   command):
    s = site("0.5.21")
    kind(s.root / where)
    done = _cli(s, *command)
    assert done.returncode != EXIT_INTERNAL and "Traceback" not in done.stderr, done.stderr
    if where == IN_SGLANG["model-file"]:
        assert done.returncode == EXIT_BAD_TARGET, done.stderr
        assert "qwen3_5.py" in done.stderr and "is not a model file: it is " in done.stderr \
            or f"larger than {MAX_FILE_BYTES >> 20} MiB" in done.stderr


def test_serve_dry_run_over_a_server_args_that_never_ends_is_not_a_hang(site, tmp_path):
    s = site("0.5.21")
    _fifo(s.root / IN_SGLANG["server-args"])
    done = _cli(s, "serve", "--dry-run", "--model", str(write_target(tmp_path / "target")),
                "--drafter", str(write_drafter(tmp_path / "drafter")))
    assert done.returncode != EXIT_INTERNAL and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("kind", first_fast(*KINDS.values()), ids=KINDS.keys())
def test_serve_over_a_drafter_config_that_never_ends_is_bad_input(site, tmp_path, kind):
    s = site("0.5.21")
    drafter = write_drafter(tmp_path / "drafter")
    kind(drafter / "config.json")
    done = _cli(s, "serve", "--dry-run", "--model", str(write_target(tmp_path / "target")),
                "--drafter", str(drafter))
    assert done.returncode == 8, done.stderr
    assert "config.json" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("kind", [*KINDS.values(), "socket", "folder"],
                         ids=[*KINDS.keys(), "socket", "folder"])
def test_the_read_helper_refuses_what_is_no_regular_file_or_too_large(tmp_path, kind):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    if kind == "socket":
        path.unlink()
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
    elif kind == "folder":
        path.unlink()
        path.mkdir()
    else:
        kind(path)
    with pytest.raises(NotAFile, match="a named pipe|a character device|a socket|a folder|larger than"):
        read_bytes(str(path))


def test_the_read_helper_reads_a_regular_file_up_to_its_bound(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a" * 1000)
    assert read_bytes(str(path), limit=1000) == b"a" * 1000
    with pytest.raises(NotAFile, match="larger than"):
        read_bytes(str(path), limit=999)


def _socket(path: Path) -> None:
    path.unlink()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # the name stays after the socket is closed


@pytest.mark.parametrize("sharded", first_fast(False, True), ids=["single", "shard"])
@pytest.mark.parametrize("kind", first_fast(_fifo, _zero, _socket), ids=["fifo", "dev-zero", "socket"])
def test_serve_over_drafter_weights_that_never_end_is_bad_input(site, tmp_path, kind, sharded):
    s = site("0.5.21")
    drafter = (write_sharded if sharded else write_drafter)(tmp_path / "drafter")
    weights = drafter / ("model-00001-of-00002.safetensors" if sharded else "model.safetensors")
    kind(weights)  # (weights of any size are fine: serve reads only their header)
    done = _cli(s, "serve", "--dry-run", "--model", str(write_target(tmp_path / "target")),
                "--drafter", str(drafter))
    assert done.returncode == 8, done.stderr
    assert weights.name in done.stderr and "Traceback" not in done.stderr


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("role", first_fast("drafter", "target"))
@pytest.mark.parametrize(("kind", "shown"), first_fast((_fifo, "a named pipe"), (_zero, "a character device"),
                                                        (_socket, "a socket"), (_folder, "a folder")),
                         ids=["fifo", "dev-zero", "socket", "folder"])
def test_a_config_json_that_is_no_file_is_named_for_what_it_is(site, tmp_path, role, kind, shown):
    # It is there: "has no config.json" sent the user looking for a file that exists.
    s = site("0.5.21")
    folders = {"drafter": write_drafter(tmp_path / "drafter"), "target": write_target(tmp_path / "target")}
    kind(folders[role] / "config.json")
    done = _cli(s, "serve", "--dry-run", "--model", str(folders["target"]), "--drafter", str(folders["drafter"]))
    assert done.returncode == 8, done.stderr
    assert "config.json cannot be read" in done.stderr and f"It is {shown}" in done.stderr, done.stderr
