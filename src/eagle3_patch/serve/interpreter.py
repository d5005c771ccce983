"""Which SGLang serve checks and patches, and the interpreter that will run it: always the same one.

Patching one SGLang and exec'ing an interpreter that imports another launches
an unpatched server with flags spelled for the wrong release. So the
interpreter serve will exec is asked (one subprocess, ``locate``'s find_spec
query, which sees the current directory first exactly as ``python -m
sglang.launch_server`` will; answered in-process when that interpreter is this
very one) which SGLang it imports, before anything is written — in
``--dry-run`` too.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from eagle3_patch.errors import InterpreterError
from eagle3_patch.locate import SGLangInstall, imported_by, locate_sglang


def serving_install(python: str | None, sglang_dir: str | None) -> SGLangInstall:
    """The SGLang to work on, with ``python`` set to an interpreter proven to import it."""
    if sglang_dir is None:
        return locate_sglang(python or sys.executable)
    install = locate_sglang(python, sglang_dir)
    runner = python or environment_python(install.package_dir) or sys.executable
    imported = imported_by(runner)
    if imported != install.package_dir:
        guess = environment_python(install.package_dir)
        raise InterpreterError(
            f"This interpreter does not import that SGLang: {runner} imports "
            f"{imported or 'no SGLang at all'}, not {install.package_dir} (--sglang-dir).",
            "serve would patch one SGLang and launch another, unpatched one.",
            "Pass --python the interpreter of the environment that holds --sglang-dir"
            + (f", e.g. --python {shlex.quote(guess)}" if guess and guess != runner else "")
            + f", or drop --sglang-dir to serve the SGLang that {runner} imports.",
        )
    return install._replace(python=runner)


def environment_python(package_dir: str) -> str | None:
    """The interpreter of the environment that ``<prefix>/lib/pythonX.Y/site-packages/sglang`` belongs to."""
    package_dir = Path(package_dir)
    lib = package_dir.parent.parent  # .../lib/pythonX.Y
    if package_dir.parent.name not in ("site-packages", "dist-packages") or not lib.name.startswith("python"):
        return None
    bin_dir = lib.parent.parent / "bin"
    for name in (lib.name, "python3", "python"):
        candidate = bin_dir / name
        if candidate.is_file():
            return str(candidate)
    return None
