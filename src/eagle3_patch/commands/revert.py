"""``eagle3-patch revert``: remove what apply added, or put the proven backup back."""

from __future__ import annotations

import click

from eagle3_patch.commands.options import json_option, target_options
from eagle3_patch.engine.revert import revert as revert_patch
from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.ui import render


@click.command()
@click.option("--from-backup", is_flag=True,
              help="Put the backup back (discarding later edits), only if it is provably the "
                   "file SGLang shipped.")
@json_option
@target_options
def revert(from_backup, as_json, python, sglang_dir):
    """Remove exactly what apply added, keeping everything else byte for byte."""
    render.emit(revert_patch(locate_sglang(python, sglang_dir), from_backup=from_backup), as_json)
