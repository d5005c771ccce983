"""``eagle3-patch status``: the installation's state and each hook's."""

from __future__ import annotations

import click

from eagle3_patch.commands.options import cache_option, json_option, target_options
from eagle3_patch.engine.status import status as status_of
from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.ui import render


@click.command()
@json_option
@cache_option
@target_options
def status(as_json, no_cache, python, sglang_dir):
    """Show the installation's state and each hook's."""
    render.emit(status_of(locate_sglang(python, sglang_dir), cache=not no_cache), as_json)
