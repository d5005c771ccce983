"""``eagle3-patch apply``: patch the installed SGLang, or show the diff it would make."""

from __future__ import annotations

import click

from eagle3_patch.commands.options import cache_option, json_option, target_options
from eagle3_patch.engine.apply import apply as apply_patch
from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.ui import render


@click.command()
@click.option("--dry-run", is_flag=True, help="Show the diff apply would make; write nothing.")
@json_option
@cache_option
@target_options
def apply(dry_run, as_json, no_cache, python, sglang_dir):
    """Patch the installed SGLang (idempotent; a no-op where it is native)."""
    result = apply_patch(locate_sglang(python, sglang_dir), dry_run=dry_run, cache=not no_cache)
    render.emit(result, as_json)
