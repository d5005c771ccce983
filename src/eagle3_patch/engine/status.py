"""status and check: one read of the installation, judged, and whether EAGLE-3 capture works.

The fast path of every container start (tests/fastpath.py): nothing here imports what
writing needs (apply's plan, the transaction, libcst).
"""

from __future__ import annotations

import os

from eagle3_patch.cache import usercache
from eagle3_patch.engine.result import Result, judge, result_from, unsupported
from eagle3_patch.errors import CheckFailed, NotWritable
from eagle3_patch.patch.hooks import MARKER
from eagle3_patch.patch.states import Outcome, State
from eagle3_patch.site import hints, writable
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.snapshot import read_snapshot, target_paths


def unwritable_reason(sglang: SGLangInstall) -> str | None:
    """Why this installation's model files cannot be patched on disk by this user, or None.

    Only permissions and read-only filesystems count: a full disk passes this
    check and still fails the write (exit 6), since falling back would hide it.
    """
    try:
        writable.ensure_writable([path for path in target_paths(sglang) if os.path.isfile(path)])
    except NotWritable as exc:
        return exc.why
    return None


def status(sglang: SGLangInstall, action: str = "status", cache: bool = True) -> Result:
    """The installation's state now: one snapshot, judged."""
    snapshot = read_snapshot(sglang)
    return result_from(snapshot, judge(sglang, snapshot.files, usercache.identity(cache)),
                       action, Outcome.OBSERVED)


def check(sglang: SGLangInstall, cache: bool = True) -> Result:
    """Like status, for an installation where capture works (see ``checked``)."""
    return checked(status(sglang, "check", cache))


def checked(result: Result) -> Result:
    """``result``, where capture works; else raises ``CheckFailed`` (carrying it) or, for a
    release that cannot be patched, ``UnsupportedRelease``."""
    if result.state is State.UNSUPPORTED:
        raise unsupported(result.install, result.analysis, result.after_uninstall)
    if not result.capture_works:
        raise not_working(result)
    return result


def capture_summary(result: Result) -> str:
    """What a launch says of capture after ``result`` (apply's or check's); raises where it
    does not work."""
    if not result.capture_works:
        raise not_working(result)
    if result.changed:
        return f"{result.outcome.value} {', '.join(result.changed)}"
    if result.state is State.NATIVE:
        return "native: this SGLang needs no patch"
    return "already patched"


def not_working(result: Result) -> CheckFailed:
    sglang = result.install
    problems = [f"{r.name}: {h.hook.cls}.{h.hook.method} is {h.state.value}"
                + (f" ({h.detail})" if h.detail else "")
                for r in result.analysis.files for h in r.hooks if not h.state.works]
    # Every hook may work while a marker of ours is left on no method of ours: damaged all the same.
    problems += [f"{r.name}: stray {MARKER} comments at lines {list(r.orphan_markers)}"
                 for r in result.analysis.files if r.orphan_markers]
    fix = f"Patch it: {hints.command(sglang, 'apply')}"
    reason = unwritable_reason(sglang) if result.state is State.UNPATCHED else None
    if reason:
        owner = ("" if writable.read_only_mount(sglang.models_dir) else
                 f"\nOr, as the owner of that site-packages: {hints.command(sglang, 'apply')}")
        fix = f"apply cannot patch it here: {reason}\n{hints.in_memory(sglang)}{owner}"
    return CheckFailed(
        f"EAGLE-3 capture does not work in SGLang {sglang.version_text} at {sglang.package_dir} "
        f"(state: {result.state.value}).",
        "; ".join(problems) + ".",
        fix,
        result=result,
    )

