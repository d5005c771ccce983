"""Find the SGLang installation to work on, without importing it.

``import sglang`` pulls CUDA packages; patching must work where SGLang cannot
even be imported (a build stage, a CPU-only CI box, another venv). So the
package is found with ``importlib.util.find_spec`` — in this process, or in the
interpreter named by ``--python`` — and its version is read from files beside it
(``read_release_from``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import sys
from typing import TYPE_CHECKING, NamedTuple

from eagle3_patch.errors import InterpreterError, SGLangNotFound
from eagle3_patch.site.filebytes import read_bytes
from eagle3_patch.text.masking import shown
from eagle3_patch.site.reading import unreadable
from eagle3_patch.text.shellwords import quote

if TYPE_CHECKING:
    from packaging.version import Version

# Run by the target interpreter: find_spec on a top-level package locates it
# without executing its __init__. The answer is fenced by argv[1], a nonce, so
# whatever else the interpreter prints (a sitecustomize, an atexit hook) around
# it is ignored, and nothing it prints by chance can pass for the answer.
_QUERY = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.find_spec('sglang')\n"
    "locs = list(spec.submodule_search_locations or []) if spec else []\n"
    "fence = sys.argv[1]\n"
    "sys.stdout.write('\\n' + fence + json.dumps({'locations': locs}) + fence + '\\n')\n"
)
# The answer is a few hundred bytes: a program that prints more is not answering, and
# reading it all (`--python /usr/bin/yes`) would fill memory.
_OUTPUT_CAP = 2**20
_WORKING_PYTHON = "Pass --python the full path of a working Python (e.g. /opt/venv/bin/python)."
_FIX = (
    "Install it into that environment (pip install sglang), or point eagle3-patch at it:\n"
    "  --python /path/to/venv/bin/python    (the interpreter that runs the server)\n"
    "  --sglang-dir /path/to/site-packages/sglang"
)


class SGLangInstall(NamedTuple):
    """One SGLang package on disk and the interpreter that runs it."""

    python: str
    package_dir: str                  # absolute, symlinks resolved
    release: str | None               # the version in PEP 440 normal form, None if unknown
    version_from: str = "dist-info"   # "dist-info", "_version.py", FALLBACK or "none"
    # The option the user chose this installation with ("--python X",
    # "--sglang-dir Y", "" for the default), repeated in every command we print.
    selector: str = ""

    @property
    def models_dir(self) -> str:
        return os.path.join(self.package_dir, "srt", "models")

    @property
    def version(self) -> Version | None:
        return _parse(self.release) if self.release else None

    @property
    def version_text(self) -> str:
        if self.release is None:
            return "unknown"
        if self.version_from == FALLBACK:
            return f"{self.release} (version.py's fallback: the real release is unknown)"
        return self.release


def locate_sglang(python: str | None = None,
                  sglang_dir: str | os.PathLike | None = None) -> SGLangInstall:
    """The SGLang that ``python`` (default: this interpreter) imports, or ``sglang_dir``."""
    interpreter = python or sys.executable
    if sglang_dir is not None:
        package_dir = os.path.realpath(os.path.expanduser(sglang_dir))
        if not _holds_srt(package_dir):
            raise SGLangNotFound(
                f"{package_dir} is not an SGLang package folder.",
                "--sglang-dir must name the `sglang` folder itself, the one holding srt/models/.",
                "Find it with: python -c \"import importlib.util; "
                "print(importlib.util.find_spec('sglang').submodule_search_locations[0])\"",
            )
    elif python is None:
        package_dir = _find_in_this_process()
    else:
        package_dir = imported_by(python)
    if package_dir is None:
        raise SGLangNotFound(
            f"No SGLang found for {interpreter}.",
            "eagle3-patch looked for the `sglang` package that interpreter imports "
            "(without importing it) and found none.",
            _FIX,
        )
    if sglang_dir is not None:
        selector = f"--sglang-dir {quote(package_dir)}"
    else:
        selector = f"--python {quote(python)}" if python else ""
    return SGLangInstall(interpreter, package_dir, *read_release_from(package_dir), selector)


def _holds_srt(package_dir: str) -> bool:
    """Whether ``package_dir`` holds ``srt/``; a folder this user may not search is an
    error of its own (exit 5, as when reading the model files), not "no SGLang here"."""
    try:
        return stat.S_ISDIR(os.stat(os.path.join(package_dir, "srt")).st_mode)
    except PermissionError as exc:
        raise unreadable(package_dir, exc, "a+rx") from None
    except OSError:
        return False


def _find_in_this_process() -> str | None:
    spec = importlib.util.find_spec("sglang")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.realpath(locations[0]) if locations else None


def imported_by(python: str) -> str | None:
    """The SGLang package folder ``python`` would import, or None when it imports none."""
    if python == sys.executable and _starts_like_a_child():
        return _find_as_child_would()
    return ask_interpreter(python)


def _starts_like_a_child() -> bool:
    # A flag given on our own command line (-I, -E, -s, -S, -P) would not be
    # given to the child, and a flag is indistinguishable from its environment
    # variable, so any of them means asking a real child.
    flags = sys.flags
    if (flags.isolated or flags.ignore_environment or flags.no_user_site or flags.no_site
            or getattr(flags, "safe_path", False)):
        return False
    # Our sys.path was built from the environment we started with; a child gets
    # os.environ as it is now, which a caller may have changed (Linux keeps the
    # former in /proc; elsewhere, ask the child).
    try:
        with open("/proc/self/environ", "rb") as handle:
            started = handle.read()
    except OSError:
        return False
    return dict(item.split(b"=", 1) for item in started.split(b"\0") if b"=" in item) \
        == dict(os.environb)


def _find_as_child_would() -> str | None:
    """What ``ask_interpreter(sys.executable)`` answers, without starting a process.

    The same interpreter in the same environment builds the same ``sys.path``,
    except its first entry: the script's folder for us, the current directory
    for ``python -c`` (and ``python -m``, which is what serve will exec).
    """
    try:
        cwd = os.getcwd()
    except OSError:  # a deleted working folder: let the interpreter itself say what it makes of it
        return ask_interpreter(sys.executable)
    saved = sys.path[:]
    sys.path[:1] = [cwd]
    try:
        spec = importlib.util.find_spec("sglang")
    finally:
        sys.path[:] = saved
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.realpath(locations[0]) if locations else None


def ask_interpreter(python: str, timeout: float = 60) -> str | None:
    """The folder of the SGLang that ``python`` imports, as it answers when run (one subprocess,
    stopped after ``timeout`` seconds; nothing it started is left running)."""
    from eagle3_patch.site.programs import run_contained, why_not_started  # subprocess: --python only

    fence = f"<eagle3-patch {os.urandom(8).hex()}>"
    try:
        ran = run_contained([python, "-c", _QUERY, fence], env={**os.environ, "PYTHONWARNINGS": "ignore"},
                            timeout=timeout, cap=_OUTPUT_CAP)
    except OSError as exc:
        raise InterpreterError(
            f"Cannot start the interpreter {quote(python)}: {why_not_started(python, exc)}.",
            "eagle3-patch runs it to ask which SGLang it imports.", _WORKING_PYTHON) from None
    locations = _answer(ran.out.decode("utf-8", "surrogateescape"), fence)
    if locations is not None:
        return os.path.realpath(locations[0]) if locations else None
    if ran.stopped == "hung":
        raise InterpreterError(
            f"The interpreter {python} started but did not answer within {timeout:g} s; "
            "eagle3-patch stopped it and everything it had started.",
            "It was asked which SGLang it imports and was still running: stuck starting up, "
            "or waiting for something.",
            f"Check that `{quote(python)} -c pass` returns at once. " + _WORKING_PYTHON)
    if ran.stopped == "flooded":
        how = "stopped after it printed more than 1 MiB"
    elif ran.code is not None and ran.code < 0:
        how = f"it was killed by signal {_signal_name(-ran.code)}"
    else:
        how = f"it exited with code {ran.code}" + (" without printing the answer" if ran.code == 0 else "")
    said = ran.out if len(ran.out) > _OUTPUT_CAP else (ran.err or ran.out)
    tail = [shown(line) for line in said[-2000:].decode("utf-8", "replace").strip().splitlines()[-3:]]
    raise InterpreterError(
        f"{python} did not answer as a Python interpreter ({how}).",
        "Its output was: " + (" | ".join(tail) or "(nothing)"),
        _WORKING_PYTHON)


def _signal_name(number: int) -> str:
    import signal  # only the message for an interpreter that was killed

    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _answer(stdout: str, fence: str) -> list[str] | None:
    """The package folders between the fences, or None unless they are exactly a list of paths."""
    parts = stdout.split(fence)
    if len(parts) < 3:
        return None
    try:
        answer = json.loads(parts[1])
    except (ValueError, RecursionError):  # nesting past Python's limit: no answer of ours
        return None
    locations = answer.get("locations") if isinstance(answer, dict) else None
    if not isinstance(locations, list) or not all(
            isinstance(path, str) and path and "\0" not in path for path in locations):
        return None
    return locations


FALLBACK = "version.py fallback"
def read_release_from(package_dir: str | os.PathLike) -> tuple[str | None, str]:
    """The release of the SGLang in ``package_dir``, in normal form, and where it was read
    (``SGLangInstall.version_from``).

    setuptools-scm's ``_version.py`` comes first: it is what ``sglang.__version__``
    itself reports (``version.py`` imports it), so it describes the code that
    is really in the folder even when files were copied in behind pip's back
    (then pip's RECORD, not the version, tells that the files differ). Source
    trees and editable installs have it but no dist-info beside the package.
    A wheel install has both, and they agree. Without either, SGLang's
    ``version.py`` falls back to ``0.0.0.dev0``, which says nothing about the code.
    """
    package_dir = os.fspath(package_dir)
    generated = _source_version(os.path.join(package_dir, "_version.py"))
    if generated is not None:
        return generated, "_version.py"
    found = [text for text in map(_metadata_version, dist_infos(os.path.dirname(package_dir)))
             if text]
    if len(found) > 1:
        # More than one dist-info means a botched upgrade left one behind;
        # the newest is what pip last installed over this folder.
        return str(max(_parse(text) for text in found)), "dist-info"
    if found:
        return found[0], "dist-info"
    fallback = _source_version(os.path.join(package_dir, "version.py"))
    return fallback, FALLBACK if fallback is not None else "none"


def dist_infos(site: str) -> list[str]:
    """SGLang's ``sglang-*.dist-info`` folders in ``site``, by name."""
    try:
        names = os.listdir(site)
    except OSError:
        return []
    return sorted(os.path.join(site, name) for name in names
                  if name.startswith("sglang-") and name.endswith(".dist-info"))


def _metadata_version(dist_info: str) -> str | None:
    # Unreadable, or no file to read (a FIFO, /dev/zero: read_bytes refuses): no version here.
    try:
        text = read_bytes(os.path.join(dist_info, "METADATA")).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith("Version:"):
            return _normal(line.split(":", 1)[1])
    return None


def _source_version(version_py: str) -> str | None:
    try:
        text = read_bytes(version_py).decode("utf-8")
        # [ \t], not \s: \s spans lines, so each line of a long blank run rescanned the rest.
        match = re.search(r"^[ \t]*__version__[ \t]*=[ \t]*(?:version[ \t]*=[ \t]*)?[\"']([^\"'\n]+)[\"']",
                          text, re.MULTILINE)
    except (OSError, UnicodeDecodeError):
        return None
    return _normal(match.group(1)) if match else None


def _normal(text: str) -> str | None:
    text = text.strip()
    # A plain release ("0.5.21") is already what packaging would print: status and
    # check need not import it (fast path: benchmarks/README.md).
    if all(part.isdecimal() and part.isascii() and (part == "0" or part[0] != "0") and len(part) < 20
           for part in text.split(".")):
        return text
    version = _parse(text)
    return str(version) if version else None


def _parse(text: str) -> Version | None:
    from packaging.version import Version  # only a version that is not plain digits

    try:
        return Version(text.strip())
    except ValueError:  # InvalidVersion, or a part past Python's digit limit (int() in packaging)
        return None
