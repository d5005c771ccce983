"""``eagle3-patch check``: exit 0 where EAGLE-3 capture works, 1 where it does not."""

from __future__ import annotations

import functools
import sys

import click

from eagle3_patch.commands.options import cache_option, json_option, target_options
from eagle3_patch.engine.status import check as check_capture
from eagle3_patch.errors import CheckFailed
from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.ui import render
from eagle3_patch.ui.errorreport import best_effort


@click.command()
@json_option
@cache_option
@target_options
def check(as_json, no_cache, python, sglang_dir):
    """Exit 0 if EAGLE-3 capture works for Qwen3.5/3.6 targets, 1 if not."""
    try:
        result = check_capture(locate_sglang(python, sglang_dir), cache=not no_cache)
    except CheckFailed as failed:
        if not as_json:  # with --json the error and this result are printed as one object
            best_effort(functools.partial(render.emit, failed.result, as_json), sys.stdout)
        raise
    render.emit(result, as_json)
