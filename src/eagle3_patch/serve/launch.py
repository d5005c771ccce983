"""From ``serve``'s options to the process that replaces ours: the one call the command makes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NoReturn

from eagle3_patch.engine.apply import ensure_capture
from eagle3_patch.engine.status import capture_summary, checked, status, unwritable_reason
from eagle3_patch.site.handoff import LaunchPlan, replace_process
from eagle3_patch.inmemory.payload import child_env, redacted
from eagle3_patch.text.masking import printable
from eagle3_patch.serve.dialect import SPEC_V2_ENV, LaunchDialect, detect_dialect
from eagle3_patch.serve.drafter import local_drafter
from eagle3_patch.serve.interpreter import serving_install
from eagle3_patch.serve.plan import build_plan, flag_value
from eagle3_patch.serve.validate import DrafterReport, check_drafter, target_text_config
from eagle3_patch.patch.states import State

DEFAULT_MODEL = "Qwen/Qwen3.6-27B"
# What a real launch would write, by capture state; --dry-run says so instead.
_WOULD_WRITE = {
    State.UNPATCHED: "not patched yet; serve would apply the patch before launching",
    State.DAMAGED: "patch damaged; serve would repair it before launching",
}


@dataclass(frozen=True)
class PreparedLaunch:
    """Everything decided before the hand-off, and why (shown by --dry-run)."""

    plan: LaunchPlan
    dialect: LaunchDialect
    drafter: DrafterReport
    capture: str
    sglang: str

    def dry_run_text(self) -> str:
        """Comment lines saying what was decided, then the exact copy-pasteable command."""
        spec_v2 = f"{SPEC_V2_ENV}=1" if self.dialect.spec_v2 else f"{SPEC_V2_ENV} not set"
        added = " ".join(f"{k}={v}" for k, v in sorted(redacted(self.plan.env).items())) or "none"
        comments = [
            f"# {self.sglang}",
            f"# EAGLE-3 capture: {self.capture}",
            f"# drafter: {self.drafter.path}",
            *(f"#   {note}" for note in self.drafter.notes),
            f"# {self.dialect.strategy_flag}: {self.dialect.strategy_evidence}",
            f"# {spec_v2}: {self.dialect.spec_v2_evidence}",
            f"# environment added: {added}",
        ]
        # Paths and values from the user's files: a terminal must not act on what they hold.
        return "\n".join([*map(printable, comments), self.plan.shell_command()])

    def banner(self) -> str:
        """One stderr line before the hand-off, so logs show what was launched."""
        shown = LaunchPlan(self.plan.argv, redacted(self.plan.env))
        return f"eagle3-patch: EAGLE-3 capture: {printable(self.capture)}; exec: {shown.shell_command()}"


def prepare_launch(
    *,
    model: str,
    drafter: str,
    drafter_repo: str,
    python: str | None,
    sglang_dir: str | None,
    user_args: list[str] | tuple[str, ...],
    apply: bool,
    dry_run: bool,
    in_memory: bool = False,
    cache: bool = True,
) -> PreparedLaunch:
    """Locate SGLang, validate the drafter, make sure capture works (unless dry-run), build the plan.

    ``in_memory`` (or an unpatched installation this user cannot write) hands
    the patch to SGLang's processes through the environment and writes nothing.
    ``cache=False`` (``--no-cache``) reads and writes no cache entry, nor do the children.
    """
    install = serving_install(python, sglang_dir)
    unwritable = unwritable_reason(install) if apply and not in_memory else None
    folder = local_drafter(drafter, drafter_repo)
    handoff = None
    if in_memory or unwritable:
        from eagle3_patch.inmemory.planner import in_memory_handoff  # hashing, gzip: an in-memory launch only

        # Up front, as the state below: it refuses an unsupported or damaged release first.
        handoff = in_memory_handoff(install, cache)
    # The state is read up front only where it is needed: for the dry-run
    # summary, and to refuse an unsupported release (with apply's own message)
    # before a multi-GB drafter download. A real launch from a local drafter
    # skips it: ensure_capture reads the installation anyway, and the hand-off budget is 0.3 s.
    found = status(install, "serve", cache) if handoff is None and (dry_run or folder is None) else None
    if found is not None and found.state is State.UNSUPPORTED:
        checked(found)
    target, skipped = target_text_config(model, flag_value(user_args, "--revision"))
    if folder is not None:
        report = check_drafter(folder, target, skipped)
    else:
        from eagle3_patch.serve.hub import fetch_hub_drafter  # huggingface_hub: a local drafter never needs it

        # --dry-run validates from config.json and the weights' header alone; it downloads no weights.
        report = fetch_hub_drafter(drafter_repo, drafter, target, skipped, download=not dry_run)
        folder = report.path
    dialect = detect_dialect(install.package_dir, install.version)
    if handoff:
        capture = handoff.summary
        if unwritable and handoff.in_memory:
            capture += f"; serve fell back to in-memory: {unwritable}"
    elif not dry_run:
        capture = ensure_capture(install, apply, cache)
    elif apply and found.state in _WOULD_WRITE:
        capture = _WOULD_WRITE[found.state]
    else:
        # Check-only, writes nothing: --dry-run previews the launch's result or refusal.
        capture = capture_summary(checked(found))
    plan = build_plan(install.python, model, str(folder), dialect, list(user_args))
    # Patched on disk (or native), a payload inherited from an outer `run` is cancelled.
    added = handoff.env if handoff else child_env(None, os.environ)
    plan = LaunchPlan(plan.argv, {**plan.env, **added})
    version = str(install.version) if install.version else "(version unknown)"
    where = f"SGLang {version} at {install.package_dir}, run by {install.python}"
    return PreparedLaunch(plan=plan, dialect=dialect, drafter=report, capture=capture, sglang=where)


def exec_plan(plan: LaunchPlan) -> NoReturn:
    """Replace this process with SGLang."""
    replace_process(plan, "Pass --python the full path of the interpreter that has SGLang installed.")
