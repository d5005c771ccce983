"""A package eagle3-patch needs that is not installed is a clear error naming the command that installs it.

Each case runs the CLI as a real process whose sys.path hides the package: Python started without
``site`` (so this venv's site-packages is not on the path), and in its place a folder of links to
everything in it but that package, as an install made with ``--no-deps`` leaves it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import eagle3_patch
from eagle3_patch.ui.errorreport import missing_dependency

from support.marks import first_fast
from support.ports import closed_port_url


SOURCES = Path(eagle3_patch.__file__).resolve().parents[1]


def python_without(tmp_path: Path, package: str) -> dict[str, str]:
    """The environment of a ``python -S`` whose path has this venv's packages except ``package``."""
    shown = tmp_path / f"site-packages-without-{package}"
    shown.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name != package and not entry.name.startswith(f"{package}-"):  # the package, its dist-info
            (shown / entry.name).symlink_to(entry.resolve())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONSTARTUP")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(shown), str(SOURCES)])}


def eagle3_patch_without(tmp_path: Path, package: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-S", "-m", "eagle3_patch", *args], env=python_without(tmp_path, package),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "a bug" not in done.stderr, done.stderr
    return done


@pytest.mark.slow
def test_the_stand_in_python_really_cannot_import_the_package(tmp_path):
    done = subprocess.run([sys.executable, "-S", "-c", "import click, eagle3_patch, aiohttp"],
                          env=python_without(tmp_path, "aiohttp"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "No module named 'aiohttp'" in done.stderr


@pytest.mark.parametrize("args", first_fast(["bench", "--help"], ["bench", "--url", "CLOSED"]),
                         ids=["bench-help", "bench"])
def test_without_aiohttp_bench_says_what_to_install_instead_of_reporting_a_bug(tmp_path, args):
    args = [closed_port_url() if arg == "CLOSED" else arg for arg in args]
    done = eagle3_patch_without(tmp_path, "aiohttp", *args)
    assert done.returncode == 8, done.stderr
    assert "aiohttp is not installed" in done.stderr
    assert f"{sys.executable} -m pip install 'aiohttp>=" in done.stderr


@pytest.mark.slow
def test_without_aiohttp_the_help_lists_every_command_and_says_what_bench_needs(tmp_path):
    done = eagle3_patch_without(tmp_path, "aiohttp", "--help")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("Commands:")[1]
    for name in ("apply", "bench", "check", "diff", "revert", "run", "serve", "status"):
        assert f"\n  {name} " in listed
    bench = next(line for line in listed.splitlines() if line.startswith("  bench "))
    assert "aiohttp is not installed" in bench
    assert f"{sys.executable} -m pip install 'aiohttp>=" in done.stdout  # on one line, to copy


def test_without_aiohttp_bench_json_is_one_error_object_naming_the_install_command(tmp_path):
    done = eagle3_patch_without(tmp_path, "aiohttp", "bench", "--json", "--url", closed_port_url())
    report = json.loads(done.stdout)
    assert report["exit_code"] == done.returncode == 8
    assert all(report["error"].values())
    assert "-m pip install 'aiohttp>=" in report["error"]["fix"]


@pytest.mark.slow
def test_without_matplotlib_plot_says_what_to_install_before_measuring(tmp_path):
    done = eagle3_patch_without(tmp_path, "matplotlib", "bench", "--url", closed_port_url(),
                                "--plot", str(tmp_path / "chart.png"))
    assert done.returncode == 8, done.stderr
    assert "--plot needs matplotlib" in done.stderr and f"{sys.executable} -m pip install matplotlib" in done.stderr


@pytest.mark.slow
def test_without_libcst_a_first_apply_says_what_to_install_and_writes_nothing(tmp_path, site):
    s = site("0.5.21")
    before = s.read()
    done = eagle3_patch_without(tmp_path, "libcst", "apply", "--sglang-dir", str(s.package), "--no-cache")
    assert done.returncode == 8, done.stderr
    assert "libcst is not installed" in done.stderr and "-m pip install 'libcst>=" in done.stderr
    assert s.read() == before


def test_a_missing_extra_is_named_with_the_extra_that_brings_it():
    error = missing_dependency(ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib.pyplot"))
    assert error.exit_code == 8 and "'plot' extra" in error.why
    assert f"{sys.executable} -m pip install 'matplotlib>=" in error.fix and "pip install '.[plot]'" in error.fix


def test_a_missing_module_nothing_declares_is_still_a_bug():
    assert missing_dependency(ModuleNotFoundError("No module named 'aiohtp'", name="aiohtp")) is None
    assert missing_dependency(ModuleNotFoundError("No module named 'pytest'", name="pytest")) is None  # tests' only
