"""What an analysis finds, as values: the state words and the reports.

Where the memo answers (``cache/analysismemo.py``), status, check and a repeated apply need
these and nothing of the parsing and probing in ``analysis.py``. On the fast path:
NamedTuples, not dataclasses (benchmarks/README.md says why).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from eagle3_patch.patch.hooks import HookSpec


class HookState(str, Enum):
    PATCHED = "patched"    # our marked method, intact, resolves for the class
    NATIVE = "native"      # upstream code already routes capture to the layer flags
    MISSING = "missing"    # needs our method
    ALTERED = "altered"    # a marked method that is not what we wrote, or is shadowed

    @property
    def works(self) -> bool:
        return self in (HookState.PATCHED, HookState.NATIVE)


class State(str, Enum):
    """The state of a model file, and of the installation as a whole."""

    UNPATCHED = "unpatched"      # capture is broken; apply patches
    PATCHED = "patched"          # our marked methods are present, intact and working
    NATIVE = "native"            # upstream routes capture to the layer flags itself
    DAMAGED = "damaged"          # a marker is present but a hook is missing or altered
    UNSUPPORTED = "unsupported"  # no qwen3_5.py, or its decoder has no per-layer capture

    @property
    def capture_works(self) -> bool:
        """The one answer to "does EAGLE-3 capture work?" (check, status, serve)."""
        return self in (State.PATCHED, State.NATIVE)

    @property
    def works_in_memory(self) -> bool:
        """Whether `run` / `serve --in-memory` give working capture for an installation in this state."""
        return self in (State.UNPATCHED, State.PATCHED, State.NATIVE)


class Outcome(str, Enum):
    """What an operation did (``State`` says what the installation is in afterwards)."""

    OBSERVED = ""                      # status, check: nothing to do but look
    PATCHED = "patched"
    REPAIRED = "repaired"              # a damaged patch written again
    ALREADY_PATCHED = "already-patched"
    NATIVE = "native"                  # this SGLang needs no patch
    WOULD_PATCH = "would-patch"        # apply --dry-run, diff
    REVERTED = "reverted"
    NOTHING_TO_REVERT = "nothing-to-revert"
    REMOVED_AFTER_UNINSTALL = "removed-after-uninstall"
    REFUSED = "refused"                # run / serve --in-memory on a state they refuse


class HookReport(NamedTuple):
    """One hook's state, and the class whose method Python resolves for it."""

    hook: HookSpec
    state: HookState
    resolved_from: str = ""   # "file:Class" whose method the class resolves, "" if none
    detail: str = ""


class FileReport(NamedTuple):
    """One target file's state and its hooks'."""

    name: str
    path: str
    state: State
    hooks: tuple[HookReport, ...]
    orphan_markers: tuple[int, ...] = ()


class Analysis(NamedTuple):
    """The installation's state, each target file's, and why it is unsupported if it is."""

    state: State
    files: tuple[FileReport, ...]
    reason: str = ""


def file_state(hook_states: set[HookState], orphan_markers: bool) -> State:
    """A model file's state, from its hooks' states and whether it holds a stray marker."""
    if HookState.ALTERED in hook_states or orphan_markers:
        return State.DAMAGED
    if HookState.PATCHED in hook_states and HookState.MISSING in hook_states:
        return State.DAMAGED
    if hook_states == {HookState.NATIVE}:
        return State.NATIVE
    if HookState.MISSING in hook_states:
        return State.UNPATCHED
    return State.PATCHED


def overall_state(file_states: set[State]) -> State:
    """A supported installation's state, from its target files' states."""
    if State.DAMAGED in file_states:
        return State.DAMAGED
    if file_states == {State.NATIVE}:
        return State.NATIVE
    if State.UNPATCHED in file_states:
        return State.UNPATCHED
    return State.PATCHED
