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

from eagle3_patch.site.interpreters import environment_python, refuse_another_sglang
from eagle3_patch.site.locate import SGLangInstall, locate_sglang


def serving_install(python: str | None, sglang_dir: str | None) -> SGLangInstall:
    """The SGLang to work on, with ``python`` set to an interpreter proven to import it."""
    # An empty --python is a value given, refused when asked, never "not given".
    if sglang_dir is None:
        return locate_sglang(sys.executable if python is None else python)
    install = locate_sglang(python, sglang_dir)
    guess = environment_python(install.package_dir)
    runner = python if python is not None else guess or sys.executable
    refuse_another_sglang(
        runner, install.package_dir, "This interpreter does not import that SGLang (--sglang-dir)",
        "serve would patch one SGLang and launch another, unpatched one.",
        "Pass --python the interpreter of the environment that holds --sglang-dir"
        + (f", e.g. --python {shlex.quote(guess)}" if guess and guess != runner else "")
        + f", or drop --sglang-dir to serve the SGLang that {runner} imports.",
    )
    return install._replace(python=runner)
