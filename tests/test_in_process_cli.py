"""The in-process CLI (``Site.invoke``) answers exactly as the process (``Site.run``) does,
and leaves this process as it found it."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from support.cli import invoke_cli



def as_process(s, *args: str) -> tuple[int, bytes, bytes]:
    done = subprocess.run([sys.executable, "-m", "eagle3_patch", *args], capture_output=True,
                          env=s.env(), timeout=120)
    return done.returncode, done.stdout, done.stderr


def in_process(s, *args: str) -> tuple[int, bytes, bytes]:
    done = s.invoke(*args)
    return done.returncode, done.stdout.encode(), done.stderr.encode()


def test_in_process_runs_print_and_exit_byte_for_byte_as_the_process_does(site):
    # status and check: the process is quick on them (their fast path); apply, revert and the
    # other commands agree in test_cli_as_process.py, with the slow tests.
    s = site("0.5.21")
    assert in_process(s, "status", "--json") == as_process(s, "status", "--json")
    assert in_process(s, "check") == as_process(s, "check")


def test_in_process_runs_find_no_sglang_where_the_process_finds_none(tmp_path, site):
    s = site("0.5.21")
    s.root = tmp_path  # PYTHONPATH without SGLang: this interpreter alone imports none
    found = in_process(s, "status")
    assert found == as_process(s, "status")
    assert found[0] == 3 and b"No SGLang found" in found[2]


def test_in_process_runs_find_the_sglang_in_the_working_folder_as_python_m_does(site):
    # `python -m` puts the working folder first: a checkout there wins over PYTHONPATH.
    installed, checkout = site("0.5.12"), site("0.5.20")
    env = installed.env()
    done = subprocess.run([sys.executable, "-m", "eagle3_patch", "status", "--json"], capture_output=True,
                          text=True, env=env, cwd=checkout.root, timeout=120)
    assert done.returncode == 0 and str(checkout.package) in done.stdout
    ours = invoke_cli("status", "--json", env=env, cwd=checkout.root)
    assert (ours.returncode, ours.stdout, ours.stderr) == (done.returncode, done.stdout, done.stderr)


def test_an_in_process_run_hides_a_stand_in_sglang_and_restores_this_process(site, monkeypatch):
    s = site("0.5.21")
    standin = types.ModuleType("sglang")
    standin.__path__ = ["/nonexistent/sglang"]
    monkeypatch.setitem(sys.modules, "sglang", standin)
    path, environ, modules = sys.path[:], dict(os.environ), set(sys.modules)
    result = s.invoke("status", "--json")
    assert result.returncode == 0 and str(s.package) in result.stdout
    assert sys.modules["sglang"] is standin
    assert (sys.path, dict(os.environ)) == (path, environ)
    loaded = {name: getattr(sys.modules[name], "__file__", None) or "" for name in set(sys.modules) - modules}
    assert not [name for name, where in loaded.items() if "sglang" in name or str(s.root) in where]
    assert not [entry for entry in sys.path_importer_cache if str(s.root) in str(entry)]


def test_an_in_process_run_that_would_exec_fails_the_test_instead_of_replacing_pytest(site):
    with pytest.raises(AssertionError, match="tried to exec '/bin/true'"):
        site("0.5.21").invoke("run", "--", "/bin/true")
