"""``eagle3-patch diff``: what apply would change, as a unified diff."""

from __future__ import annotations

import click

from eagle3_patch.commands.options import cache_option, json_option, target_options
from eagle3_patch.engine.apply import diff as diff_of
from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.ui import render


@click.command()
@json_option
@cache_option
@target_options
def diff(as_json, no_cache, python, sglang_dir):
    """Print, as a unified diff, what apply would change."""
    result = diff_of(locate_sglang(python, sglang_dir), cache=not no_cache)
    if as_json:
        render.emit(result, as_json)
    elif result.diff:
        render.write_verbatim(result.diff)
    else:
        render.echo(f"Nothing to change: the installation is {result.state.value}.", err=True)
