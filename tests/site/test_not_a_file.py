"""Something other than a file where SGLang keeps a model file: every command says so the same way.

The one reader of an installation (``snapshot.read_snapshot``) says it, before anything is
written: status and apply used to call the release unsupported and advise an upgrade, revert
to blame permissions ("chmod a+r"), and a named pipe made revert wait forever.
"""

from __future__ import annotations

import os

import pytest

from support.cli import invoke_main
from support.marks import first_fast



COMMANDS = [("status",), ("check",), ("apply",), ("revert",), ("revert", "--from-backup")]


def _models(s) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in s.models.iterdir() if p.is_file()}


@pytest.mark.parametrize("name", first_fast("qwen3_5.py", "qwen3_vl.py"))
@pytest.mark.parametrize("command", first_fast(*((c,) for c in COMMANDS)), ids=" ".join)
def test_a_folder_in_place_of_a_model_file_is_said_and_nothing_changes(site, command, name):
    s = site("0.5.21")
    assert invoke_main("apply", "--sglang-dir", str(s.package)).exit_code == 0
    s.file(name).unlink()
    s.file(name).mkdir()
    before = _models(s)
    done = invoke_main(*command, "--sglang-dir", str(s.package))
    assert done.exit_code == 5, done
    assert f"{s.file(name)} is not a model file: it is a folder." in done.stderr
    assert "pip install --force-reinstall --no-deps sglang==" in done.stderr
    assert "chmod" not in done.stderr and "Upgrade" not in done.stderr
    assert _models(s) == before and s.file(name).is_dir()


@pytest.mark.parametrize("command", first_fast(*((c,) for c in COMMANDS)), ids=" ".join)
def test_a_named_pipe_in_place_of_a_model_file_is_said_not_waited_on(site, command):
    s = site("0.5.21")
    assert invoke_main("apply", "--sglang-dir", str(s.package)).exit_code == 0
    s.file().unlink()
    os.mkfifo(s.file())
    done = invoke_main(*command, "--sglang-dir", str(s.package))
    assert done.exit_code == 5, done
    assert f"{s.file()} is not a model file: it is a named pipe." in done.stderr
