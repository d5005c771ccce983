"""A cached venv in which SGLang's real model module imports and builds on the CPU.

Built once per machine under ``$EAGLE3_PATCH_TEST_CACHE`` (default
``~/.cache/eagle3-patch``) in ``venvs/sglang-0.5.12-cpu`` and reused by later runs.

The build is crash-safe and single-flight: it happens in a temporary sibling
folder while a file lock is held, the marker holding the recipe's hash is written
last, and only then is the folder renamed into place. A folder without the right
marker is never trusted; a changed recipe rebuilds. If PyPI cannot be reached the
build raises: tests that need this venv fail, they never skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from filelock import FileLock

SGLANG_VERSION = "0.5.12"

# A CPU-only torch does not work: SGLang loads torchvision's CUDA-built ops at
# import. With torch 2.14.1 (this machine kind's local wheel) SGLang's GatedDeltaNet
# asks `torch.get_device_module()` for its device, which there resolves to CUDA
# even with no GPU; 2.11.0 resolves to the CPU. torchvision must be pinned by
# constraint too, or it silently pulls a different torch.
TORCH_PINS = ("torch==2.11.0", "torchvision==0.26.0")

# What `import sglang.srt.models.qwen3_5` needs, short of SGLang's full
# dependency set (which adds ~4 GB of CUDA kernels and a `kernels` release that
# breaks transformers' import).
IMPORT_REQUIREMENTS = (
    "triton", "numpy", "orjson", "psutil", "pybase64", "requests", "packaging",
    "pillow", "starlette", "tqdm", "IPython", "pydantic", "aiohttp",
    "transformers==5.6.0", "pyzmq", "einops", "openai==2.6.1", "partial_json_parser",
    "dill", "sentencepiece", "compressed-tensors", "gguf", "msgspec",
)

MARKER = ".eagle3-patch-recipe"
BUILD_TIMEOUT_S = 1800


def _recipe() -> dict:
    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "sglang": SGLANG_VERSION,
        "torch_pins": list(TORCH_PINS),
        "requirements": list(IMPORT_REQUIREMENTS),
    }


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(_recipe(), sort_keys=True).encode()).hexdigest()


def venv_dir() -> Path:
    root = os.environ.get("EAGLE3_PATCH_TEST_CACHE") or Path.home() / ".cache" / "eagle3-patch"
    return Path(root) / "venvs" / f"sglang-{SGLANG_VERSION}-cpu"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _is_complete(venv: Path) -> bool:
    marker = venv / MARKER
    try:
        return marker.read_text().strip() == recipe_hash() and venv_python(venv).exists()
    except OSError:
        return False


def _log(message: str) -> None:
    print(f"[realenv] {message}", file=sys.stderr, flush=True)


def _run(command: list[str], log: Path, **kwargs) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(
            f"building the real-SGLang test venv failed (exit {done.returncode}) at:\n"
            f"  {' '.join(command)}\n--- last lines of {log} ---\n{tail}"
        )


def _build(target: Path) -> None:
    log = target / "build.log"
    _run([sys.executable, "-m", "venv", str(target)], log)
    python = str(venv_python(target))
    constraints = target / "constraints.txt"
    constraints.write_text("\n".join(TORCH_PINS) + "\n")
    # The bytecode pip compiles names the build folder; that is harmless, since
    # import rewrites a cached code object's file name to where the source is now.
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check",
           "--no-input", "--progress-bar", "off"]
    _run([*pip, "-c", str(constraints), *TORCH_PINS, *IMPORT_REQUIREMENTS], log)
    _run([*pip, "--no-deps", f"sglang=={SGLANG_VERSION}"], log)
    # Prove the module imports before the folder can be trusted.
    _run(
        [python, "-c", "import sglang.srt.models.qwen3_5"],
        log,
        env={**os.environ, "SGLANG_USE_CPU_ENGINE": "1"},
    )


def _folder_size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def models_lock(timeout: float = BUILD_TIMEOUT_S) -> FileLock:
    """Held by any test that patches the shared venv's models folder (one run at a time)."""
    final = venv_dir()
    final.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(final.parent / f"{final.name}.models.lock"), timeout=timeout)


def ensure_real_venv() -> Path:
    """Return the python of the cached real-SGLang venv, building it if needed."""
    final = venv_dir()
    if _is_complete(final):
        return venv_python(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f"{final.name}.lock"), timeout=BUILD_TIMEOUT_S):
        if _is_complete(final):
            return venv_python(final)
        # Holding the lock, anything else with our name is debris of a crashed
        # build or a venv from an older recipe.
        for debris in final.parent.glob(f"{final.name}.building-*"):
            if debris.is_dir():
                shutil.rmtree(debris, ignore_errors=True)
            else:
                debris.unlink(missing_ok=True)
        if final.exists():
            stale = Path(tempfile.mkdtemp(prefix=f"{final.name}.building-", dir=final.parent))
            os.replace(final, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)

        target = Path(tempfile.mkdtemp(prefix=f"{final.name}.building-", dir=final.parent))
        started = time.monotonic()
        _log(f"building {final} (sglang=={SGLANG_VERSION}, {', '.join(TORCH_PINS)}); "
             "this takes a few minutes once per machine")
        try:
            _build(target)
            (target / MARKER).write_text(recipe_hash() + "\n")
            os.replace(target, final)
        finally:
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
        _log(f"built {final} in {time.monotonic() - started:.0f}s, "
             f"{_folder_size(final) / 1e9:.1f} GB")
    return venv_python(final)
