"""Find the SGLang installation to work on, without importing it.

``import sglang`` pulls CUDA packages; patching must work where SGLang cannot
even be imported (a build stage, a CPU-only CI box, another venv). So the
package is found with ``importlib.util.find_spec`` — in this process, or in the
interpreter named by ``--python`` — and its version is read from the dist-info
beside it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from eagle3_patch.errors import InterpreterError, SGLangNotFound

# Run by the target interpreter: find_spec on a top-level package locates it
# without executing its __init__.
_QUERY = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.find_spec('sglang')\n"
    "locs = list(spec.submodule_search_locations or []) if spec else []\n"
    "print(json.dumps({'executable': sys.executable, 'locations': locs}))\n"
)
_FIX = (
    "Install it into that environment (pip install sglang), or point eagle3-patch at it:\n"
    "  --python /path/to/venv/bin/python    (the interpreter that runs the server)\n"
    "  --sglang-dir /path/to/site-packages/sglang"
)


@dataclass(frozen=True)
class SGLangInstall:
    """One SGLang package on disk and the interpreter that runs it."""

    python: str
    package_dir: Path
    version: Version | None

    @property
    def models_dir(self) -> Path:
        return self.package_dir / "srt" / "models"

    @property
    def version_text(self) -> str:
        return str(self.version) if self.version else "unknown"


def locate_sglang(python: str | None = None, sglang_dir: Path | None = None) -> SGLangInstall:
    """The SGLang that ``python`` (default: this interpreter) imports, or ``sglang_dir``."""
    interpreter = python or sys.executable
    if sglang_dir is not None:
        package_dir = Path(sglang_dir).expanduser().resolve()
        if not (package_dir / "srt").is_dir():
            raise SGLangNotFound(
                f"{package_dir} is not an SGLang package folder.",
                "--sglang-dir must name the `sglang` folder itself, the one holding srt/models/.",
                "Find it with: python -c \"import importlib.util; "
                "print(importlib.util.find_spec('sglang').submodule_search_locations[0])\"",
            )
    elif python is None:
        package_dir = _find_in_this_process()
    else:
        package_dir = _find_with_interpreter(python)
    if package_dir is None:
        raise SGLangNotFound(
            f"No SGLang found for {interpreter}.",
            "eagle3-patch looked for the `sglang` package that interpreter imports "
            "(without importing it) and found none.",
            _FIX,
        )
    return SGLangInstall(interpreter, package_dir, read_version(package_dir))


def _find_in_this_process() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("sglang")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]).resolve() if locations else None


def _find_with_interpreter(python: str) -> Path | None:
    try:
        done = subprocess.run(
            [python, "-c", _QUERY], capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterpreterError(
            f"Cannot run the interpreter {python}.",
            f"Starting it failed: {exc}.",
            "Pass --python the full path of a working Python (e.g. /opt/venv/bin/python).",
        ) from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        locations = answer["locations"]
    except (IndexError, ValueError, KeyError, TypeError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InterpreterError(
            f"{python} did not answer as a Python interpreter (exit {done.returncode}).",
            "Its output was: " + (" | ".join(tail) or "(nothing)"),
            "Pass --python the full path of a working Python (e.g. /opt/venv/bin/python).",
        ) from None
    return Path(locations[0]).resolve() if locations else None


def read_version(package_dir: Path) -> Version | None:
    """The release of the SGLang in ``package_dir``, from its dist-info, else version.py."""
    found: list[Version] = []
    for dist_info in package_dir.parent.glob("sglang-*.dist-info"):
        version = _metadata_version(dist_info / "METADATA")
        if version is not None:
            found.append(version)
    if found:
        # More than one dist-info means a botched upgrade left one behind;
        # the newest is what pip last installed over this folder.
        return max(found)
    return _source_version(package_dir / "version.py")


def _metadata_version(metadata: Path) -> Version | None:
    try:
        with metadata.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    break
                if line.startswith("Version:"):
                    return _parse(line.split(":", 1)[1])
    except OSError:
        return None
    return None


def _source_version(version_py: Path) -> Version | None:
    try:
        match = re.search(r"__version__\s*=\s*[\"']([^\"']+)[\"']", version_py.read_text("utf-8"))
    except OSError:
        return None
    return _parse(match.group(1)) if match else None


def _parse(text: str) -> Version | None:
    try:
        return Version(text.strip())
    except InvalidVersion:
        return None
