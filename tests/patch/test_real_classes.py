"""SGLang's real Qwen3.5 wrappers, built on the CPU, before and after `eagle3-patch apply`.

The other tests read and rewrite source text; these build the real
``Qwen3_5ForConditionalGeneration`` and ``Qwen3_5MoeForConditionalGeneration``
of a broken release (tiny configs, no weights) in a cached venv, call
``set_eagle3_layers_to_capture`` as SGLang's model runner does, and read the
capture flags off the real decoder layers. The venv is patched the way a user
patches a server's environment: from outside, through ``--python``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eagle3_patch.patch import hooks, transform

from support import realenv
from support.realclasses import DRAFTER_IDS, EXPECTED, N_LAYERS, PATCHED, PROBE, WRAPPERS, make_pristine, wheel_models


pytestmark = pytest.mark.slow  # SGLang's real classes, built in a CPU venv

PATCH_MARKER = b"[EAGLE3-PATCH]"


@pytest.fixture(scope="session")
def real_python() -> Path:
    """The cached venv's python; builds it on first use and fails loudly if it cannot."""
    return realenv.ensure_real_venv()


def _clean_env() -> dict[str, str]:
    # The venv must import its own sglang, not one this process can see.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _models_dir(python: Path) -> Path:
    done = subprocess.run(
        [str(python), "-c",
         "import importlib.util; print(importlib.util.find_spec('sglang').submodule_search_locations[0])"],
        capture_output=True, text=True, timeout=60, env=_clean_env(), check=True,
    )
    return Path(done.stdout.strip()) / "srt" / "models"


@pytest.fixture
def real_sglang(real_python):
    """The venv's sglang/srt/models, pristine on entry and restored on exit.

    The venv is reused across runs, so no test may leave it patched.
    """
    models = _models_dir(real_python)
    shipped = wheel_models()
    # Two pytest runs on one machine share this venv: without the lock one
    # run's revert lands between the other's apply and probe.
    with realenv.models_lock():
        if PATCH_MARKER in (models / PATCHED).read_bytes():
            sys.stderr.write(f"restoring {models / PATCHED} left patched by an earlier run\n")
        make_pristine(models, shipped)
        try:
            yield models, shipped[PATCHED]
        finally:
            make_pristine(models, shipped)


def _probe(python: Path, *options: str) -> dict:
    done = subprocess.run(
        [str(python), str(PROBE), "--ids", json.dumps(DRAFTER_IDS), "--moe", *options],
        capture_output=True, text=True, timeout=300, env=_clean_env(),
    )
    assert done.returncode == 0, f"probe failed (exit {done.returncode}):\n{done.stderr[-6000:]}"
    return json.loads(done.stdout)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eagle3_patch", *args],
                          capture_output=True, text=True, timeout=180)


def _assert_probed_this_venv(report: dict, models: Path) -> None:
    assert Path(report["sglang_file"]) == models / PATCHED
    assert report["sglang_version"] == realenv.SGLANG_VERSION
    assert report["n_layers"] == N_LAYERS


def test_real_qwen3_5_wrappers_flag_no_layer_before_apply(real_python, real_sglang):
    models, _ = real_sglang
    report = _probe(real_python)
    _assert_probed_this_venv(report, models)
    for wrapper in WRAPPERS:
        for case, expected in EXPECTED.items():
            seen = report[wrapper][case]
            # The bug on the real object: the list is recorded, no layer is told.
            assert seen["model_layers_to_capture"] == expected, (wrapper, case, seen)
            assert seen["flagged_layers"] == [], (wrapper, case, seen)


def test_real_qwen3_5_wrappers_flag_capture_layers_after_apply(real_python, real_sglang):
    models, _ = real_sglang
    applied = _cli("apply", "--python", str(real_python))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert PATCH_MARKER in (models / PATCHED).read_bytes()

    report = _probe(real_python)
    _assert_probed_this_venv(report, models)
    for wrapper in WRAPPERS:
        for case, expected in EXPECTED.items():
            seen = report[wrapper][case]
            assert seen["flagged_before_call"] == [], (wrapper, case, seen)
            assert seen["flagged_layers"] == expected, (wrapper, case, seen)
            assert seen["model_layers_to_capture"] == expected, (wrapper, case, seen)
            assert seen["capture_aux_hidden_states"] is True, (wrapper, case, seen)
            assert seen["decoder_capture_aux_hidden_states"] is True, (wrapper, case, seen)


def test_revert_restores_real_venv_file_byte_for_byte(real_python, real_sglang):
    models, pristine = real_sglang
    assert _cli("apply", "--python", str(real_python)).returncode == 0
    assert (models / PATCHED).read_bytes() != pristine

    reverted = _cli("revert", "--python", str(real_python))
    assert reverted.returncode == 0, reverted.stdout + reverted.stderr
    assert (models / PATCHED).read_bytes() == pristine


TWIN_WRAPPER = b"\n\nclass Qwen3_5ForConditionalGeneration(Qwen3VLForConditionalGeneration):\n    pass\n"


def test_real_registry_serves_the_first_of_two_wrapper_classes_so_apply_refuses_the_file(real_python, real_sglang):
    models, pristine = real_sglang
    twin = pristine + TWIN_WRAPPER  # a second class after EntryClass
    (models / PATCHED).write_bytes(twin)
    for command in ("apply", "check", "status"):
        done = _cli(command, "--python", str(real_python))
        assert done.returncode == 5 and "it is bound more than once" in done.stderr, done.stdout + done.stderr
    assert (models / PATCHED).read_bytes() == twin

    # What apply used to write there: its methods in the last definition, and check said 0.
    patched_last = transform.add_hooks(twin.decode(), [h for h in hooks.HOOKS if h.file == PATCHED])
    (models / PATCHED).write_text(patched_last)
    for cached in (models / "__pycache__").glob("qwen3_5.*.pyc"):
        cached.unlink()
    report = _probe(real_python, "--registry")
    _assert_probed_this_venv(report, models)
    for case, expected in EXPECTED.items():
        seen = report["results"][case]
        # SGLang's registry serves the first class: the list is recorded, no layer is told.
        assert seen["model_layers_to_capture"] == expected and seen["flagged_layers"] == [], (case, seen)
    done = _cli("check", "--python", str(real_python))
    assert done.returncode == 5, done.stdout + done.stderr  # never "patched"
