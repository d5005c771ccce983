"""The process ``serve`` and ``run`` hand over to, and the hand-off itself (exec, no shell)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import NoReturn

from eagle3_patch.errors import LaunchFailed
from eagle3_patch.text.masking import MASK, is_secret, masked_argv
from eagle3_patch.text.shellwords import join, quote


@dataclass(frozen=True)
class LaunchPlan:
    """``argv[0]`` is the program (serve: the interpreter); ``env`` holds only the variables we add."""

    argv: list[str]
    env: dict[str, str]

    def shell_command(self) -> str:
        """The plan as one shell line (env assignments first), secret values masked, each word
        through ``shellwords.quote``."""
        assignments = [f"{name}={quote(MASK if is_secret(name) else value)}"
                       for name, value in sorted(self.env.items())]
        return " ".join([*assignments, self.shown_argv()])

    def shown_argv(self) -> str:
        """``argv`` as one shell line for people and logs: secret values masked."""
        return join(masked_argv(self.argv))

    def to_json(self) -> dict[str, object]:
        """The exact argv and env, secrets included: it is what a machine re-runs."""
        return {"argv": list(self.argv), "env": dict(self.env)}


def replace_process(plan: LaunchPlan, fix: str) -> NoReturn:
    """exec ``plan`` (its PID, signals and exit code become the program's); no shell.

    ``fix`` is what the user should do when the program cannot be started.
    """
    # exec discards Python's buffers: anything printed so far must leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(plan.argv[0], plan.argv, {**os.environ, **plan.env})
    except OSError as exc:
        from eagle3_patch.site.programs import why_not_started  # subprocess: only when exec failed

        raise LaunchFailed(
            f"Could not start {quote(plan.argv[0])}: {why_not_started(plan.argv[0], exc)}.",
            f"exec failed: {exc.strerror or exc}.",
            fix,
        ) from None
