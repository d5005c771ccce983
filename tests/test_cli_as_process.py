"""Every command as a user runs it, a process: the smoke tests behind the in-process fast loop.

Each proves, on one installation, that ``Site.invoke`` (what most CLI tests use) prints and
exits byte for byte as ``python -m eagle3_patch`` does. What only a process can show (exec,
signals, other users, a killed write, concurrent runs) is tested where its command is.
"""

from __future__ import annotations

import sys

import pytest

from support.serve_fixtures import write_drafter, write_target
from support.sites import as_process, in_process


pytestmark = pytest.mark.slow  # the CLI as a process: 0.1-1 s a run


def test_apply_diff_and_revert_as_a_process_agree_with_in_process_runs(site):
    s = site("0.5.21")
    # Each pair starts from the same files: the process's apply is reverted before ours runs.
    diff = as_process(s, "diff")
    assert diff[0] == 0 and b"+    # [EAGLE3-PATCH]" in diff[1]
    assert in_process(s, "diff") == diff
    assert in_process(s, "apply", "--dry-run") == as_process(s, "apply", "--dry-run")
    applied, reverted = as_process(s, "apply"), as_process(s, "revert")
    assert applied[0] == reverted[0] == 0 and applied[1].startswith(b"Patched")
    assert in_process(s, "apply") == applied
    assert in_process(s, "status") == as_process(s, "status")
    assert in_process(s, "revert") == reverted
    assert in_process(s, "revert", "--json") == as_process(s, "revert", "--json")


def test_a_refusal_as_a_process_agrees_with_an_in_process_run(site):
    s = site("0.5.21")
    assert as_process(s, "apply")[0] == 0
    s.file().write_bytes(b"")
    refused = as_process(s, "revert")
    assert refused[0] == 11 and b"--from-backup" in refused[2]
    assert in_process(s, "revert") == refused
    assert in_process(s, "check", "--json") == as_process(s, "check", "--json")


def test_the_interpreter_named_with_python_is_asked_alike_from_a_process_and_in_process(site):
    # In a process whose environment is the one it started with, `imported_by` answers
    # for this interpreter without a child; in-process runs ask a child: the same answer.
    s = site("0.5.21")
    named = as_process(s, "status", "--python", sys.executable)
    assert named[0] == 0 and str(s.package).encode() in named[1]
    assert in_process(s, "status", "--python", sys.executable) == named


def test_serve_and_run_dry_runs_as_a_process_agree_with_in_process_runs(site, tmp_path):
    s = site("0.5.21")
    model, drafter = write_target(tmp_path / "model"), write_drafter(tmp_path / "drafter")
    serve = ["serve", "--model", str(model), "--drafter", str(drafter), "--dry-run", "--json"]
    planned = as_process(s, *serve)
    assert planned[0] == 0, planned[2]
    assert in_process(s, *serve) == planned
    run = ["run", "--dry-run", "--", sys.executable, "-c", "pass"]
    ran = as_process(s, *run)
    assert ran[0] == 0, ran[2]
    assert in_process(s, *run) == ran
