"""Commands printed for the user to run next, each pasteable as is.

They repeat the selector the user typed (``--python X`` / ``--sglang-dir Y``)
and name pip through the interpreter that owns the installation, so they act
on the SGLang the message is about, not on whatever ``pip`` is first on PATH.
"""

from __future__ import annotations

from eagle3_patch.site.interpreters import environment_python
from eagle3_patch.site.locate import FALLBACK, SGLangInstall
from eagle3_patch.text.shellwords import quote


def command(sglang: SGLangInstall, *words: str) -> str:
    """``eagle3-patch <words> <selector>``."""
    return " ".join(["eagle3-patch", *words, *filter(None, [sglang.selector])])


def in_memory(sglang: SGLangInstall) -> str:
    """The two ways to run SGLang patched in memory, which write nothing on disk."""
    run = command(sglang, "run")
    return ("Patch SGLang's processes in memory instead, which writes nothing:\n"
            f"  {run} -- {quote(_interpreter(sglang))} -m sglang.launch_server ...\n"
            f"  {command(sglang, 'serve', '--in-memory')} --drafter DRAFTER [-- SGLANG_ARGS...]")


def pip(sglang: SGLangInstall, *args: str) -> str:
    return " ".join([quote(_interpreter(sglang)), "-m", "pip", *args])


def reinstall(sglang: SGLangInstall) -> str:
    """Put back exactly the files of the installed release."""
    # version.py's 0.0.0.dev0 fallback names no release pip could install.
    known = sglang.version is not None and sglang.version_from != FALLBACK
    version = str(sglang.version) if known else "<version>"
    return pip(sglang, "install", "--force-reinstall", "--no-deps", f"sglang=={version}")


def _interpreter(sglang: SGLangInstall) -> str:
    # --sglang-dir names a folder, not an interpreter: the python of the
    # environment holding it is the one whose pip owns it.
    if sglang.selector.startswith("--sglang-dir"):
        return environment_python(sglang.package_dir) or sglang.python
    return sglang.python
