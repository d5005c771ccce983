"""The hand-off shared by ``serve`` and ``run``: replace this process with the planned one."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from eagle3_patch.errors import LaunchFailed
from eagle3_patch.serve.plan import LaunchPlan


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
        raise LaunchFailed(
            f"Could not start {plan.argv[0]}.",
            f"exec failed: {exc.strerror or exc}.",
            fix,
        ) from None
