"""The analysis memo: used only when nothing it depends on changed, never trusted otherwise.

A planted memo whose analysis says ``FROM-MEMO`` shows, in the CLI's own
output, whether a run used the memo or analysed the files afresh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import eagle3_patch

from support.cli import invoke_cli
from support.marks import first_fast
from support.memos import PLANTED, fresh, memo_path, patched, status_json, trusted
from support.releases import release_file
from support.serve_fixtures import tree_digest


def _damaged(s):
    s.file().write_bytes(s.read().replace(b"self.model.set_eagle3_layers_to_capture(layers_to_capture)\n",
                                          b"pass\n"))


@pytest.mark.parametrize("version, prepare, state", first_fast(
    ("0.5.21", "apply", "patched"),
    ("0.5.12", None, "unpatched"),
    ("0.5.23", None, "native"),
    ("0.5.10", None, "unsupported"),
    ("0.5.21", _damaged, "damaged"),
), ids=["patched", "unpatched", "native", "unsupported", "damaged"])
def test_status_json_is_byte_identical_on_hit_and_miss(site, private_cache, version, prepare, state):
    s = site(version)
    if prepare == "apply":
        assert s.invoke("apply").returncode == 0
    elif prepare:
        s.invoke("apply")
        prepare(s)
    shutil.rmtree(private_cache, ignore_errors=True)
    without = fresh(s, "status", "--json")
    assert not (private_cache / "eagle3-patch").exists()  # --no-cache writes nothing
    miss, report = status_json(s)
    memo = memo_path(private_cache)
    written = memo.stat()
    hit, _ = status_json(s)
    assert without == miss == hit
    assert report["state"] == state
    assert (memo.stat().st_ino, memo.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def _one_byte(name):
    """Edit one byte of ``name``: in our injected wrapper hook where there is one."""
    def edit(s):
        data = bytearray(s.read(name))
        at = data.rfind(b"[2, num_layers // 2")
        if at < 0:  # qwen3_vl.py: no hook of ours, a comment's byte
            at = data.find(b"# ") + 1
            data[at:at + 1] = b"#"
        else:
            data[at + 1:at + 2] = b"3"
        s.file(name).write_bytes(bytes(data))
    return edit


def _remove_text(s):
    s.file("qwen3_5_text.py").unlink()


def _retag_python(s, cache):
    memo = json.loads(memo_path(cache).read_text())
    memo["key"]["python"] = "cpython-3.10"
    memo_path(cache).write_text(json.dumps(memo))


@pytest.mark.parametrize("change, state", first_fast(
    (_one_byte("qwen3_5.py"), "damaged"),
    (_one_byte("qwen3_5_text.py"), "damaged"),
    (_one_byte("qwen3_vl.py"), "patched"),
    (_remove_text, "patched"),
), ids=["edit-qwen3_5", "edit-qwen3_5_text", "edit-qwen3_vl", "remove-qwen3_5_text"])
def test_stale_memo_is_never_used_after_a_model_file_changes(site, private_cache, change, state):
    s = patched(site)
    trusted(s, private_cache)
    change(s)
    out, report = status_json(s)
    assert PLANTED not in out
    assert out == fresh(s, "status", "--json")
    assert report["state"] == state
    assert PLANTED not in s.invoke("status").stdout  # and the memo now holds the new analysis


@pytest.mark.slow
def test_stale_memo_is_never_used_after_qwen3_5_text_appears(site, private_cache):
    s = patched(site)
    text = s.read("qwen3_5_text.py")
    s.file("qwen3_5_text.py").unlink()
    trusted(s, private_cache)
    s.file("qwen3_5_text.py").write_bytes(release_file("0.5.21", "sglang/srt/models/qwen3_5_text.py"))
    out, report = status_json(s)
    assert PLANTED not in out and out == fresh(s, "status", "--json")
    assert report["state"] == "unpatched"
    assert [f["file"] for f in report["files"]] == ["qwen3_5.py", "qwen3_5_text.py"]
    s.file("qwen3_5_text.py").write_bytes(text)
    assert status_json(s)[1]["state"] == "patched"


@pytest.mark.slow
def test_memo_of_another_python_is_not_used(site, private_cache):
    s = patched(site)
    trusted(s, private_cache)
    _retag_python(s, private_cache)
    out, _ = status_json(s)
    assert PLANTED not in out and out == fresh(s, "status", "--json")


def _package_copy(tmp_path: Path, edit) -> Path:
    """This eagle3-patch, copied and edited: what another version or build of it would be."""
    root = tmp_path / "other-build"
    shutil.copytree(Path(eagle3_patch.__file__).parent, root / "eagle3_patch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    edit(root / "eagle3_patch")
    return root


@pytest.mark.slow  # another build of eagle3-patch: a process that imports that copy
@pytest.mark.parametrize("edit", [
    lambda pkg: (pkg / "__init__.py").write_text('__version__ = "0.1.1"\n'),
    lambda pkg: (pkg / "patch" / "probe.py").write_text((pkg / "patch" / "probe.py").read_text() + "# edited\n"),
    # The same size: only the modification time tells (as it tells Python to recompile).
    lambda pkg: (pkg / "patch" / "probe.py").write_text((pkg / "patch" / "probe.py").read_text().replace("\n", " ", 1)),
], ids=["tool-version", "analysis-code", "analysis-code-same-size"])
def test_memo_of_another_eagle3_patch_build_is_not_used(site, private_cache, tmp_path, edit):
    s = patched(site)
    s.file().write_bytes(_damaged_text(s.read()))
    trusted(s, private_cache)
    other = _package_copy(tmp_path, edit)
    env = {**s.env(), "PYTHONPATH": os.pathsep.join([str(other), str(s.root)])}
    result = subprocess.run([sys.executable, "-m", "eagle3_patch", "status"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert PLANTED not in result.stdout and "state: damaged" in result.stdout


def _damaged_text(data: bytes) -> bytes:
    at = data.rfind(b"[2, num_layers // 2")
    return data[:at + 1] + b"3" + data[at + 2:]


@pytest.mark.parametrize("option", first_fast("EAGLE3_PATCH_NO_CACHE=1", "--no-cache"))
@pytest.mark.parametrize("command", first_fast("status", "check", "apply"))
def test_no_cache_neither_reads_nor_writes_the_memo(site, private_cache, option, command):
    s = patched(site)
    trusted(s, private_cache)
    before = memo_path(private_cache).read_bytes()
    if option.startswith("--"):
        result = s.invoke(command, "--json", option)
    else:
        name, value = option.split("=")
        result = s.invoke(command, "--json", **{name: value})
    assert result.returncode == 0 and PLANTED not in result.stdout
    assert memo_path(private_cache).read_bytes() == before


@pytest.mark.slow
def test_memo_lives_in_the_cache_folder_and_nothing_is_written_beside_sglang(site, private_cache):
    s = patched(site)
    before = tree_digest(s.root)
    for command in ("status", "check", "apply", "diff"):
        s.invoke(command)
    assert tree_digest(s.root) == before
    assert memo_path(private_cache).parent == private_cache / "eagle3-patch" / "analysis"


@pytest.mark.slow
def test_home_cache_is_used_when_xdg_cache_home_is_unset_or_relative(site, tmp_path):
    s = patched(site)
    home = tmp_path / "home"
    home.mkdir()
    s.invoke("status", HOME=str(home), XDG_CACHE_HOME="relative/cache")
    assert memo_path(home / ".cache").is_file()
    assert not (s.root / "relative").exists() and not Path("relative").exists()


@pytest.mark.parametrize("version, damage", [("0.5.12", False), ("0.5.21", False), ("0.5.21", True)],
                         ids=["0.5.12", "0.5.21", "0.5.21-repair"])
@pytest.mark.slow
def test_apply_remembers_the_analysis_of_what_it_wrote(site, private_cache, version, damage):
    s = site(version)
    if damage:
        s.invoke("apply")
        _damaged(s)
    applied = s.invoke("apply")
    assert applied.returncode == 0, applied.stderr
    memo = memo_path(private_cache)
    written = memo.stat()
    hit, report = status_json(s)
    assert report["state"] == "patched"
    assert hit == fresh(s, "status", "--json")
    assert (memo.stat().st_ino, memo.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_relative_home_is_no_cache_and_writes_nothing_in_the_working_folder(site, tmp_path):
    s = patched(site)
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    env = {k: v for k, v in s.env().items() if k != "XDG_CACHE_HOME"}
    result = invoke_cli("status", "--json", env={**env, "HOME": "relative-home"}, cwd=workdir)
    assert result.returncode == 0 and json.loads(result.stdout)["state"] == "patched"
    assert list(workdir.iterdir()) == []
