"""The ``serve`` click command: options in, one call, output (or the hand-off)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from eagle3_patch.cli import target_options
from eagle3_patch.serve.drafter import DEFAULT_DRAFTER_REPO
from eagle3_patch.serve.launch import DEFAULT_MODEL, exec_plan, prepare_launch


@click.command(
    "serve",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="Target: a local model folder or a Hub repo id.")
@click.option("--drafter", required=True,
              help="EAGLE-3 drafter: a folder holding config.json, or a variant name (full, compressed).")
@click.option("--drafter-repo", default=DEFAULT_DRAFTER_REPO, show_default=True,
              help="Where variant names are resolved: a local folder or a Hub repo id.")
@click.option("--no-apply", is_flag=True,
              help="Do not patch SGLang; refuse to launch if EAGLE-3 capture would not work.")
@click.option("--dry-run", is_flag=True, help="Write nothing; print the exact command and environment.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print {\"argv\": [...], \"env\": {...}}.")
@target_options
@click.argument("sglang_args", nargs=-1, type=click.UNPROCESSED)
def serve(
    model: str,
    drafter: str,
    drafter_repo: str,
    no_apply: bool,
    dry_run: bool,
    as_json: bool,
    python: str | None,
    sglang_dir: Path | None,
    sglang_args: tuple[str, ...],
) -> None:
    """Launch SGLang with EAGLE-3 at the validated chain config.

    Everything after `--` goes to SGLang unchanged; where it repeats a flag
    serve sets, your value wins.
    """
    if as_json and not dry_run:
        raise click.UsageError("--json describes a plan; use it with --dry-run.")
    prepared = prepare_launch(
        model=model, drafter=drafter, drafter_repo=drafter_repo, python=python,
        sglang_dir=sglang_dir, user_args=sglang_args, apply=not no_apply, dry_run=dry_run,
    )
    if dry_run:
        click.echo(json.dumps(prepared.plan.to_json(), indent=2) if as_json else prepared.dry_run_text())
        return
    click.echo(prepared.banner(), err=True)
    exec_plan(prepared.plan)
