"""Decide what `run` and `serve --in-memory` hand to SGLang's processes.

Nothing is written under site-packages; the computed sources are memoised in
the user's cache where it may be used (``inmemory/memo.py``, ``cache/usercache.py``).

The parent decides, the children only serve: the installation is read once
(``site.snapshot.read_snapshot``), analysed and the patched sources computed and
validated exactly as ``apply`` would (``engine.apply.planned_changes``), then passed
on through the environment (see ``payload.py`` and ``bootstrap/sitecustomize.py``).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import NoReturn

from eagle3_patch import __version__
from eagle3_patch.engine.apply import planned_changes
from eagle3_patch.engine.status import not_working
from eagle3_patch.engine.result import Result
from eagle3_patch.site import hints
from eagle3_patch.cache import usercache
from eagle3_patch.patch.states import Outcome, State
from eagle3_patch.errors import BadInput, CheckFailed
from eagle3_patch.inmemory import memo
from eagle3_patch.inmemory.payload import ModulePatch, child_env, encode
from eagle3_patch.site.handoff import LaunchPlan, replace_process
from eagle3_patch.site.interpreters import refuse_another_sglang
from eagle3_patch.site.locate import SGLangInstall, locate_sglang
from eagle3_patch.text.masking import masked_argv, printable
from eagle3_patch.text.shellwords import join
from eagle3_patch.site.snapshot import Snapshot, read_snapshot

MODULE_PACKAGE = "sglang.srt.models"
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)*)?")
# Interpreter options that would silently drop the patch in COMMAND's process.
_DROPS_HOOK = {
    "I": "isolated mode ignores PYTHONPATH and the sitecustomize that carries the patch",
    "E": "it ignores PYTHONPATH, which carries the patch",
    "S": "it skips the site module, which runs the sitecustomize that carries the patch",
}


@dataclass(frozen=True)
class InMemoryHandoff:
    """The variables to add to COMMAND's environment, and whether they carry patched sources.

    Without sources (the installed files already work) ``env`` only cancels
    a payload inherited from an outer run.
    """

    env: dict[str, str]
    summary: str
    in_memory: bool


def in_memory_handoff(sglang: SGLangInstall, cache: bool = True) -> InMemoryHandoff:
    """Analyse ``sglang`` as apply does; for an unpatched one, the validated sources as variables.

    The installation is read once: the memo's key hashes the files the analysis decides from.
    ``cache=False`` (``--no-cache``) reads and writes no cache entry, here or in the children.
    """
    ours = usercache.identity(cache)
    snapshot = read_snapshot(sglang)
    key = memo.key(snapshot.files, ours)
    entry = (memo.load(key) if key else None) or _compute(snapshot, key, ours)
    if entry["encoded"] is None:
        return InMemoryHandoff(child_env(None, os.environ), entry["summary"], in_memory=False)
    return InMemoryHandoff(child_env(entry["encoded"], os.environ),
                           f"patched in memory in every SGLang process ({', '.join(entry['files'])}); "
                           "nothing written", in_memory=True)


def _compute(snapshot: Snapshot, key: memo.HandoffKey | None, ours: dict | None) -> dict:
    sglang = snapshot.install
    analysis, changes = planned_changes(snapshot, ours)
    if analysis.state is State.DAMAGED:
        failure = not_working(Result("run", Outcome.REFUSED, sglang, analysis, {}))
        raise CheckFailed(
            failure.what, failure.why,
            "eagle3-patch will not guess which code to serve from a damaged file. As the "
            f"owner of that site-packages, repair it ({hints.command(sglang, 'apply')}) or "
            f"restore what SGLang shipped ({hints.command(sglang, 'revert')}), then run again.",
            result=failure.result)
    if not changes:
        # Cheap to decide again (no libcst), and never worth a stale answer.
        return {"encoded": None, "files": [],
                "summary": "native: this SGLang needs no patch" if analysis.state is State.NATIVE
                else "already patched on disk; nothing to add in memory"}
    patches = [ModulePatch(f"{MODULE_PACKAGE}.{os.path.basename(change.path).removesuffix('.py')}",
                           os.path.realpath(change.path), snapshot.files.sha256(os.path.basename(change.path)),
                           change.new.decode("latin-1"))
               for change in changes]
    entry = {"encoded": encode(patches, __version__, memo.bytecode_key(ours)),
             "files": [os.path.basename(c.path) for c in changes]}
    if key:
        memo.store(key, entry)
    return entry


def _is_python(program: str, sglang: SGLangInstall | None = None) -> bool:
    if _PYTHON_NAME.fullmatch(os.path.basename(os.path.normpath(program))):
        return True
    found = shutil.which(program)
    return bool(sglang and found and os.path.realpath(found) == os.path.realpath(sglang.python))


def _interpreter_options(argv: list[str]) -> tuple[list[str], str | None]:
    """The option letters of a Python command line, and the module it runs with -m (if any)."""
    letters: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg == "--" or arg == "-" or not arg.startswith("-"):
            break  # the script, stdin, or the end of the interpreter's options
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":
                next(args, None)
            continue
        for index, letter in enumerate(arg[1:]):
            letters.append(letter)
            rest = arg[index + 2:]
            if letter in "cm":  # -c CODE / -m MODULE: what follows belongs to the program
                return letters, (rest or next(args, None)) if letter == "m" else None
            if letter in "WX":
                if not rest:
                    next(args, None)
                break
    return letters, None


def refused_flag(argv: list[str]) -> str | None:
    """The first interpreter option in a Python command line that would drop the patch."""
    return next((letter for letter in _interpreter_options(argv)[0] if letter in _DROPS_HOOK), None)


@dataclass(frozen=True)
class PreparedRun:
    plan: LaunchPlan
    summary: str
    sglang: str

    def dry_run_text(self) -> str:
        added = " ".join(sorted(self.plan.env)) or "none"
        comments = [f"# {self.sglang}", f"# EAGLE-3 capture: {self.summary}", f"# environment added: {added}"]
        return "\n".join([*map(printable, comments), self.plan.shell_command()])

    def banner(self) -> str:
        return f"eagle3-patch: EAGLE-3 capture: {printable(self.summary)}; exec: {self.plan.shown_argv()}"


def prepare_run(command: list[str], python: str | None, sglang_dir: str | None,
                cache: bool = True) -> PreparedRun:
    """Locate the SGLang COMMAND will import, refuse what would drop the patch, build the hand-off."""
    runner = shutil.which(command[0]) or command[0] if _is_python(command[0]) else None
    # `run -- python -m sglang.launch_server`: that python's SGLang is the one to analyse.
    chosen = python is not None or sglang_dir is not None
    sglang = locate_sglang(python if chosen else runner, sglang_dir)
    module = _interpreter_options(command)[1] if runner else None
    # Only for `-m sglang...` does asking the interpreter predict what COMMAND imports
    # (a script may extend sys.path itself); the children check the file either way.
    if chosen and module and module.split(".")[0] == "sglang":
        # Else every SGLang process it starts would stop at the model import (exit 12).
        refuse_another_sglang(
            runner, sglang.package_dir, f"{command[0]} does not import the SGLang eagle3-patch analysed",
            "Each SGLang process it starts would stop at the model import instead of serving.",
            f"Drop --python / --sglang-dir so that run analyses the SGLang {command[0]} imports, "
            f"or run the interpreter of the environment that holds {sglang.package_dir}.")
    letter = refused_flag(command) if _is_python(command[0], sglang) else None
    if letter:
        raise BadInput(
            f"eagle3-patch run refuses `{command[0]} -{letter}`: {_DROPS_HOOK[letter]}.",
            "The program would run SGLang's stock code, without EAGLE-3 capture, and say nothing.",
            f"Remove -{letter} from `{join(masked_argv(command))}` and run it again under eagle3-patch run.")
    handoff = in_memory_handoff(sglang, cache)
    where = f"SGLang {sglang.version_text} at {sglang.package_dir}, run by {sglang.python}"
    return PreparedRun(LaunchPlan(list(command), handoff.env), handoff.summary, where)


def exec_command(plan: LaunchPlan) -> NoReturn:
    """Replace this process with COMMAND."""
    replace_process(plan, "Name a program on PATH or give its path, e.g. "
                          "eagle3-patch run -- /opt/venv/bin/python -m sglang.launch_server ...")
