"""The benchmark scripts under benchmarks/ still start: they import test helpers by path, which a
move of the tests can break with no test of their own failing (cli_speed.py did, when tests/ was
mirrored into package folders)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow  # two processes of a second each; nothing in src/ moves these imports
@pytest.mark.parametrize("script", ["cli_speed.py", "bench_load.py"])
def test_a_benchmark_script_starts_and_answers_help(script):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
