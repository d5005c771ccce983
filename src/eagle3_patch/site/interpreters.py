"""Which Python owns an SGLang folder, and the refusal when an interpreter imports another one.

``--sglang-dir`` names a folder, not an interpreter; the commands we print
(``pip`` hints) and the process ``serve`` execs must use the interpreter of
the environment that holds it. And whatever interpreter runs SGLang must
import the very folder eagle3-patch analysed, or the patch lands in one SGLang
while another one serves.
"""

from __future__ import annotations

import os

from eagle3_patch.errors import InterpreterError
from eagle3_patch.site.locate import imported_by

_SITE_DIRS = ("site-packages", "dist-packages")


def environment_python(package_dir: str) -> str | None:
    """The interpreter of the environment holding ``package_dir``, None when none is found.

    The environment is the nearest enclosing venv (a folder with ``pyvenv.cfg``),
    else the prefix of a ``<prefix>/lib/pythonX.Y/site-packages`` layout (conda,
    a system Python).
    """
    site = os.path.dirname(package_dir)
    lib = os.path.dirname(site)
    versioned = os.path.basename(lib) if os.path.basename(site) in _SITE_DIRS else ""
    if not versioned.startswith("python"):
        versioned = ""
    venv = _enclosing_venv(package_dir)
    if venv is not None:
        # A venv's bin/python is always its own interpreter.
        prefix, names = venv, ("python", "python3", versioned)
    elif versioned:
        # Outside a venv, bin/python may be another Python (Python 2 on older
        # systems): the version the folder was installed for comes first.
        prefix, names = os.path.dirname(os.path.dirname(lib)), (versioned, "python3", "python")
    else:
        return None
    for name in filter(None, names):
        candidate = os.path.join(prefix, "bin", name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _enclosing_venv(folder: str) -> str | None:
    while os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
        if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
            return folder
    return None


def refuse_another_sglang(runner: str, package_dir: str, headline: str, why: str, fix: str) -> None:
    """Raise ``InterpreterError`` (exit 3) unless ``runner`` imports the SGLang in ``package_dir``.

    ``headline`` says who refuses; ``why`` and ``fix`` what would go wrong and what to run instead.
    """
    imported = imported_by(runner)
    if imported != package_dir:
        raise InterpreterError(
            f"{headline}: {runner} imports {imported or 'no SGLang at all'}, not {package_dir}.",
            why, fix)
