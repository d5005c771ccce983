"""Real SGLang releases from PyPI, laid out as installed packages for tests.

Each wheel is downloaded once (``pip download --no-deps``) into a cache folder
and never committed. A test gets a fresh site folder holding the subset of the
wheel that eagle3-patch reads or writes, plus the release's dist-info, so that
package metadata, paths and file modes look exactly as after ``pip install``.
If PyPI cannot be reached the download fails loudly: there are no skips.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import subprocess
import sys
import zipfile
from pathlib import Path

# The matrix named in the issue; every entry is a real release on PyPI.
RELEASES = [
    "0.5.9", "0.5.10", "0.5.11", "0.5.12", "0.5.13", "0.5.14", "0.5.16",
    "0.5.17", "0.5.19", "0.5.20", "0.5.21", "0.5.22", "0.5.23",
]
UNSUPPORTED = {"0.5.9", "0.5.10"}
NATIVE = {"0.5.22", "0.5.23"}
BROKEN = [v for v in RELEASES if v not in UNSUPPORTED | NATIVE]

# What a test site holds of each wheel: the model files we patch and read, and
# what the launcher inspects to decide flag spellings.
WHEEL_SUBSET = [
    "sglang/__init__.py",
    "sglang/version.py",
    "sglang/_version.py",
    "sglang/launch_server.py",
    "sglang/srt/__init__.py",
    "sglang/srt/models/__init__.py",
    "sglang/srt/models/qwen3_5*.py",
    "sglang/srt/models/qwen3_vl.py",
    "sglang/srt/server_args.py",
    "sglang/srt/environ.py",
    "sglang/srt/arg_groups/*",
    "sglang/srt/utils/common.py",
]


def cache_dir() -> Path:
    root = os.environ.get("EAGLE3_PATCH_TEST_CACHE") or Path.home() / ".cache" / "eagle3-patch"
    path = Path(root) / "wheels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def wheel_path(version: str) -> Path:
    """The cached wheel of ``sglang==version``, downloading it on first use."""
    found = sorted(cache_dir().glob(f"sglang-{version}-*.whl"))
    if found:
        return found[0]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--disable-pip-version-check", "-q", "-d", str(cache_dir()), f"sglang=={version}"],
        check=True,
    )
    found = sorted(cache_dir().glob(f"sglang-{version}-*.whl"))
    if not found:
        raise RuntimeError(f"pip download produced no wheel for sglang=={version}")
    return found[0]


def _wanted(name: str) -> bool:
    if ".dist-info/" in name:
        return True
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in WHEEL_SUBSET)


def install_release(version: str, site: Path) -> Path:
    """Lay ``sglang==version`` out under ``site`` as pip would; return the package dir."""
    site.mkdir(parents=True, exist_ok=True)
    for name, data in _subset(version):
        target = site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o644)
    return site / "sglang"


@functools.cache
def _subset(version: str) -> tuple[tuple[str, bytes], ...]:
    """The files a site holds of the wheel, read once per test run: a wheel's index of
    thousands of entries costs ~80 ms to read, and hundreds of tests lay a site out."""
    with zipfile.ZipFile(wheel_path(version)) as wheel:
        return tuple((info.filename, wheel.read(info)) for info in wheel.infolist()
                     if not info.is_dir() and _wanted(info.filename))


def release_file(version: str, relpath: str) -> bytes:
    """One file of a release, straight from its wheel (e.g. the pristine qwen3_5.py)."""
    for name, data in _subset(version):
        if name == relpath:
            return data
    with zipfile.ZipFile(wheel_path(version)) as wheel:
        return wheel.read(relpath)
