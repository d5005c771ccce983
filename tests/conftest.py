"""Shared fixtures: real SGLang releases laid out as installed packages, and the CLI run
against them in this process (fast) or as a process (the smoke tests)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import userenv
from releases import install_release

TESTS = Path(__file__).parent
# For child scripts: the served modules' parents run SGLang's own __init__
# (which imports torch); stand-in parent packages under argv[1] let a torch-less
# child ask for the real module's spec.
STANDIN_SGLANG_PARENTS = '''\
import hashlib, importlib.util, json, os, sys, types
root = sys.argv[1]
for name, sub in (("sglang", ""), ("sglang.srt", "srt"), ("sglang.srt.models", "srt/models")):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(root, "sglang", sub)]
    sys.modules[name] = package
'''

# Slow tests are marked one way, `pytest.mark.slow`, so the local loop (`pytest -m "not slow"`)
# skips them and CI runs them: a whole module by `pytestmark = pytest.mark.slow` with why,
# one test by its decorator, the extra cases of a parametrised test by `first_fast`. A bare
# mark on an in-process CLI test keeps the fast loop within its budget (45 s on 2 cores):
# one test per kind of outcome stays in it.


def first_fast(*cases):
    """Cases for ``pytest.mark.parametrize`` of which only the first runs in the fast loop:
    where every case costs an apply and a revert, one stands for the rest locally and CI runs
    them all. A case is a value, a tuple of values, or a ``pytest.param``."""
    def param(case, marks=()):
        if isinstance(case, type(pytest.param())):
            return pytest.param(*case.values, marks=[*case.marks, *marks], id=case.id)
        return pytest.param(*(case if isinstance(case, tuple) else (case,)), marks=marks)

    return [param(cases[0]), *(param(case, [pytest.mark.slow]) for case in cases[1:])]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test its own cache folder: the analysis memo of one never answers another."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("EAGLE3_PATCH_NO_CACHE", raising=False)
    return cache


class Site:
    """One temporary site folder with one SGLang release in it."""

    def __init__(self, root: Path, version: str) -> None:
        self.root = root
        self.version = version
        self.package = install_release(version, root)
        self.models = self.package / "srt" / "models"

    def file(self, name: str = "qwen3_5.py") -> Path:
        return self.models / name

    def link_to_store(self, store: Path, read_only: bool = False) -> Path:
        """Move qwen3_5.py into ``store`` (as Nix or a dev tree keeps it) and leave a symlink."""
        store.mkdir()
        real = store / "qwen3_5.py"
        real.write_bytes(self.read())
        if read_only:
            real.chmod(0o444)
        self.file().unlink()
        self.file().symlink_to(real)
        return real

    def read(self, name: str = "qwen3_5.py") -> bytes:
        return self.file(name).read_bytes()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        env.update(PYTHONPATH=str(self.root), **extra)
        return env

    def as_user(self, user_env, user: str, *args: str) -> subprocess.CompletedProcess:
        """The CLI as the unprivileged ``user`` runs it against this site (see ``user_env``)."""
        return user_env.cli(user, *args, env=self.env(), capture_output=True, text=True, timeout=120)

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        """The CLI as a user runs it, against this site: a process (0.1-1 s)."""
        return subprocess.run([sys.executable, "-m", "eagle3_patch", *args],
                              capture_output=True, text=True, env=self.env(**extra), timeout=120)

    def invoke(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        """What ``run`` does, in this process (milliseconds): see ``invoke_cli``."""
        return invoke_cli(*args, env=self.env(**extra))


@pytest.fixture
def site(tmp_path):
    """A factory: site("0.5.12") -> Site with that release installed."""
    made = []

    def make(version: str) -> Site:
        made.append(Site(tmp_path / f"site-{version}-{len(made)}", version))
        return made[-1]

    return make


@pytest.fixture
def user_site(user_env, request):
    """A 0.5.21 site owned by root that the requesting module's unprivileged ``USER`` may read
    but not write, in a folder named for that user."""
    root = user_env.folder(f"{request.module.USER}-site-")
    try:
        yield Site(root / "site", "0.5.21")
    finally:
        shutil.rmtree(root)


@pytest.fixture(scope="session")
def user_env():
    """What the unprivileged users (setpriv) can read, wherever this checkout lives: see userenv."""
    with userenv.user_env() as world:
        yield world


@dataclass(frozen=True)
class Exited:
    """What the CLI's real entry point did: exit code, stdout, stderr."""

    exit_code: int
    stdout: str
    stderr: str


def invoke_main(*args: str) -> Exited:
    """``cli.main`` in this process (fast), with its own error handler: what a user sees."""
    from eagle3_patch.cli import main

    return _exited(lambda: main(list(args)))


def bench_with_clock(clock: Callable[[], float]) -> click.Command:
    """``eagle3-patch bench``: its own options and body (``measure_and_report``), reading time from ``clock``."""
    from eagle3_patch.commands.bench import bench, measure_and_report

    return click.Command("bench", params=bench.params, callback=functools.partial(measure_and_report, clock=clock))


def invoke_bench(clock: Callable[[], float], *args: str) -> Exited:
    """``invoke_main("bench", *args)`` with time read from ``clock``: the same options and body,
    then the CLI's one error handler (errorreport.run_reported), as ``cli.main`` runs them."""
    from eagle3_patch.cli import cli
    from eagle3_patch.ui.errorreport import run_reported

    command = bench_with_clock(clock)
    return _exited(lambda: sys.exit(run_reported(
        lambda: command.main(args=list(args), prog_name="eagle3-patch bench", standalone_mode=False),
        cli, ["bench", *args])))


def invoke_cli(*args: str, env: dict[str, str], cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """``cli.main(args)`` in this process, as ``python -m eagle3_patch *args`` started with
    ``env`` in ``cwd`` would run it; the result in ``subprocess.run``'s shape (text mode).

    For the time of the call this process looks to the CLI like that child: ``os.environ``
    is ``env``; ``sys.path`` starts with the working folder and ``env``'s PYTHONPATH, so
    ``locate`` finds the SGLang the child would; SGLang modules another test imported are
    hidden (``find_spec`` answers from ``sys.modules`` first). Afterwards everything is put
    back, and the modules the call loaded from PYTHONPATH are forgotten. A test whose meaning
    is the separate process (another interpreter or build of eagle3-patch, variables read
    at start-up, bytecode, signals, another user, ``serve``/``run`` exec) stays with
    ``Site.run``.
    """
    from eagle3_patch.cli import main

    with _started_as_child(env, cwd):
        exited = _exited(lambda: main(list(args)))
    return subprocess.CompletedProcess(["eagle3-patch", *args], exited.exit_code, exited.stdout, exited.stderr)


class _Exec(BaseException):
    """os.exec* called by an in-process run: it would replace pytest itself. A BaseException,
    so the CLI's error handler (which reports every Exception) lets it through."""


def _refuse_exec(*args):
    raise _Exec(f"an in-process CLI run tried to exec {args[0]!r}: run this test as a process (Site.run)")


@contextlib.contextmanager
def _started_as_child(env: dict[str, str], cwd: str | os.PathLike | None):
    python_path = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    saved_environ, saved_path, saved_cwd = dict(os.environ), sys.path[:], os.getcwd()
    saved_modules = set(sys.modules)
    saved_importers = set(sys.path_importer_cache)
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if _is_sglang(name)}
    execs = {name: getattr(os, name) for name in dir(os) if name.startswith("exec")}
    try:
        if cwd is not None:
            os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:0] = [os.getcwd(), *python_path]  # `python -m`: the working folder, then PYTHONPATH
        importlib.invalidate_caches()  # folders created since the last import are looked at anew
        for name in execs:
            setattr(os, name, _refuse_exec)
        yield
    finally:
        for name, original in execs.items():
            setattr(os, name, original)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if _is_sglang(name) or _loaded_from(sys.modules[name], python_path):
                del sys.modules[name]
        sys.modules.update(hidden)
        for entry in set(sys.path_importer_cache) - saved_importers:
            del sys.path_importer_cache[entry]


def _is_sglang(name: str) -> bool:
    return name == "sglang" or name.startswith("sglang.")


def _loaded_from(module, folders: list[str]) -> bool:
    where = getattr(module, "__file__", None) or ""
    return any(os.path.commonpath([os.path.abspath(where), os.path.abspath(folder)]) == os.path.abspath(folder)
               for folder in folders if where)


def _exited(entry: Callable[[], object]) -> Exited:
    with CliRunner().isolation() as (out, err, _):
        try:
            entry()
        except SystemExit as exc:
            code = exc.code
        except _Exec as exc:
            raise AssertionError(str(exc)) from None
        else:
            raise AssertionError("the entry point returned instead of exiting")
        finally:  # what a process does at exit: text written past click.echo (a diff) is in a buffer
            sys.stdout.flush()
            sys.stderr.flush()
    return Exited(code, out.getvalue().decode(), err.getvalue().decode())
