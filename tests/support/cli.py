"""The CLI run in this process (milliseconds) as a process would run it: its real entry point,
its own error handler, and ``os.environ``, ``sys.path`` and the SGLang modules as that child
would see them."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import click
from click.testing import CliRunner

from eagle3_patch.cli import cli, main
from eagle3_patch.ui.errorreport import run_reported


@dataclass(frozen=True)
class Exited:
    """What the CLI's real entry point did: exit code, stdout, stderr."""

    exit_code: int
    stdout: str
    stderr: str


def invoke_main(*args: str) -> Exited:
    """``cli.main`` in this process (fast), with its own error handler: what a user sees."""
    return _exited(lambda: main(list(args)))


def bench_with_clock(clock: Callable[[], float]) -> click.Command:
    """``eagle3-patch bench``: its own options and body (``measure_and_report``), reading time from ``clock``."""
    # Here, not at the top: the bench package and aiohttp load only for the tests that run bench.
    from eagle3_patch.commands.bench import bench, measure_and_report

    return click.Command("bench", params=bench.params, callback=functools.partial(measure_and_report, clock=clock))


def invoke_bench(clock: Callable[[], float], *args: str) -> Exited:
    """``invoke_main("bench", *args)`` with time read from ``clock``: the same options and body,
    then the CLI's one error handler (errorreport.run_reported), as ``cli.main`` runs them."""
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
