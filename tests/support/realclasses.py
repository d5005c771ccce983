"""SGLang's real Qwen3.5 classes built on the CPU by real_model_probe.py: what the probe is
asked, what it must see, and the cached venv's model files put back as shipped."""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

from . import realenv
from .paths import PROBES, TESTS
from .releases import wheel_path

PROBE = PROBES / "real_model_probe.py"
MODELS = "sglang/srt/models/"
PATCHED = "qwen3_5.py"

# The drafter's ids are "output of layer k"; SGLang captures at the input of k + 1.
DRAFTER_IDS = [1, 3, 5]
N_LAYERS = 8
EXPECTED = {
    "ids": [k + 1 for k in DRAFTER_IDS],
    "none": [2, N_LAYERS // 2, N_LAYERS - 3],
}
WRAPPERS = ("results", "moe_results")
# What travels with the probe to an unprivileged user's folder, relative to the folder that
# holds the support package (tests/): the probe and every module of ours it imports.
PROBE_FILES = tuple(path.relative_to(TESTS) for path in (
    PROBE, TESTS / "support/__init__.py", TESTS / "support/sglang_cpu.py", TESTS / "support/ports.py",
    TESTS / "support/probereport.py"))


@functools.cache
def wheel_models() -> dict[str, bytes]:
    with zipfile.ZipFile(wheel_path(realenv.SGLANG_VERSION)) as wheel:
        return {
            name[len(MODELS):]: wheel.read(name)
            for name in wheel.namelist()
            if name.startswith(MODELS) and "/" not in name[len(MODELS):]
        }


def make_pristine(models: Path, shipped: dict[str, bytes]) -> None:
    """Undo whatever a run (even a crashed one) left: patched file, backups, locks."""
    for path in models.iterdir():
        if path.is_file() and path.name not in shipped:
            path.unlink()
    target = models / PATCHED
    if target.read_bytes() != shipped[PATCHED]:
        target.write_bytes(shipped[PATCHED])
        for cached in (models / "__pycache__").glob("qwen3_5.*.pyc"):
            cached.unlink()
