"""The ``run`` click command: options in, one call, output (or the hand-off)."""

from __future__ import annotations

import json

import click

from eagle3_patch.commands.options import cache_option, json_option, target_options
from eagle3_patch.inmemory.planner import exec_command, prepare_run


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--dry-run", is_flag=True, help="Start nothing; print the exact command and environment.")
@json_option
@cache_option
@target_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(dry_run: bool, as_json: bool, no_cache: bool, python: str | None, sglang_dir: str | None,
        command: tuple[str, ...]) -> None:
    """Run COMMAND with EAGLE-3 capture patched in memory; nothing is written.

    Every Python process COMMAND starts (SGLang's scheduler and workers
    included) gets the patched Qwen3.5/3.6 classes. Put COMMAND after `--`:
    eagle3-patch run -- python -m sglang.launch_server --model-path ...

    The SGLang analysed is the one --python imports; without it, COMMAND's own
    interpreter when COMMAND is a Python, else the one running eagle3-patch.
    """
    if as_json and not dry_run:
        raise click.UsageError("--json describes a plan; use it with --dry-run.")
    prepared = prepare_run(list(command), python, sglang_dir, cache=not no_cache)
    if dry_run:
        click.echo(json.dumps(prepared.plan.to_json(), indent=2) if as_json
                   else prepared.dry_run_text())
        return
    click.echo(prepared.banner(), err=True)
    exec_command(prepared.plan)
