"""Expected failures, as types, and the exit code each one maps to.

Library code raises these; only the CLI turns them into a message and an exit
status (see ``cli.main``). Every message says what happened, why, and what to
run next, because the user reading it is usually in a Dockerfile or CI log.
"""

from __future__ import annotations

from eagle3_patch import sharedrules
from eagle3_patch.text.masking import MESSAGE_LIMIT, shown

# Exit codes are part of the public interface (README, "Exit codes").
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNSUPPORTED = 4
EXIT_BAD_TARGET = 5
EXIT_NOT_WRITABLE = 6
EXIT_LOCKED = 7
EXIT_BAD_INPUT = 8
EXIT_LAUNCH_FAILED = 9
EXIT_BENCH_FAILED = 10
EXIT_CANNOT_REVERT = 11
# Not the CLI's: a process `run` started stops with it, and that process reads it from sharedrules.
EXIT_STALE = sharedrules.EXIT_STALE
EXIT_INTERNAL = 70
EXIT_OUTPUT = 74  # sysexits' EX_IOERR, beside 70's EX_SOFTWARE


class Eagle3PatchError(Exception):
    """Base of every expected failure; ``exit_code`` is what the CLI exits with.

    What happened, why, and what to do: all three, always (text and ``--json`` print each).
    The message is printed, so it is made printable here, whatever a caller put in it
    (``masking.shown``): each part held to ``MESSAGE_LIMIT`` characters, every URL's
    user-info masked, control characters escaped but for its own newlines. A caller
    quoting foreign text quotes ``shown(text)``, a short excerpt, in the first place.
    ``found`` is what the command had found or measured before it failed, as
    JSON: ``--json`` prints it beside the error, in the same object.
    """

    exit_code = EXIT_INTERNAL
    found: dict | None = None

    def __init__(self, what: str, why: str, fix: str) -> None:
        self.what, self.why, self.fix = (shown(part, MESSAGE_LIMIT, lines=True) for part in (what, why, fix))
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "\n".join(part for part in (self.what, self.why, self.fix) if part)


class CheckFailed(Eagle3PatchError):
    """EAGLE-3 capture does not work in this installation (unpatched or damaged).

    ``result`` is the status that showed it, so ``--json`` can print both as one object.
    """

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, what: str, why: str, fix: str, result=None) -> None:
        super().__init__(what, why, fix)
        self.result = result


class SGLangNotFound(Eagle3PatchError):
    exit_code = EXIT_NOT_FOUND


class InterpreterError(Eagle3PatchError):
    """``--python`` names something that cannot run or answer our query."""

    exit_code = EXIT_NOT_FOUND


class UnsupportedRelease(Eagle3PatchError):
    exit_code = EXIT_UNSUPPORTED


class TargetUnreadable(Eagle3PatchError):
    """The file to patch does not parse, or lacks the structure we anchor on."""

    exit_code = EXIT_BAD_TARGET


class NotPython(TargetUnreadable):
    """The file to patch does not parse; the fix is reinstalling the release it came from."""


class UnjudgeableClass(TargetUnreadable):
    """A class the analysis must judge cannot be judged soundly: bound more than once in its
    module (or not by one class statement), or hiding its base's hook behind a broken one of its
    own. ``fix`` ends where ``engine.result.judge`` adds the command that reinstalls the release."""


class NotWritable(Eagle3PatchError):
    exit_code = EXIT_NOT_WRITABLE


class CannotRevert(Eagle3PatchError):
    """revert cannot remove exactly what apply added; the file and its backup are untouched."""

    exit_code = EXIT_CANNOT_REVERT


class LockTimeout(Eagle3PatchError):
    exit_code = EXIT_LOCKED


class ValidationFailed(Eagle3PatchError):
    """A transform produced something we refuse to write. Nothing was written."""

    exit_code = EXIT_INTERNAL


class BadInput(Eagle3PatchError):
    """A user-supplied input (drafter, model, prompts file, URL) is wrong."""

    exit_code = EXIT_BAD_INPUT


class MissingDependency(Eagle3PatchError):
    """A package eagle3-patch declares (aiohttp for bench, matplotlib for --plot...) is not installed."""

    exit_code = EXIT_BAD_INPUT


class LaunchFailed(Eagle3PatchError):
    exit_code = EXIT_LAUNCH_FAILED


class BenchFailed(Eagle3PatchError):
    """A server could not be measured: unreachable, not SGLang, errored or stopped early."""

    exit_code = EXIT_BENCH_FAILED


class OutputFailed(Eagle3PatchError):
    """Our own stdout or stderr refused what we printed (a full disk, an I/O error)."""

    exit_code = EXIT_OUTPUT


class ReaderGone(OutputFailed):
    """Whoever read our output closed the pipe (``| head``): the command ends quietly, as
    a program stopped by SIGPIPE would, and only the exit code says the output was cut short."""


class Interrupted(Eagle3PatchError):
    """A signal (Ctrl-C's SIGINT, or SIGTERM) stopped the run; exits 128 + its number, as a shell would."""

    def __init__(self, signum: int, what: str, why: str, fix: str) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(what, why, fix)
