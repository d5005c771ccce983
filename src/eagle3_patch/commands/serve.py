"""The ``serve`` click command: options in, one call, output (or the hand-off)."""

from __future__ import annotations

import json
import shlex

import click

from eagle3_patch.commands.options import cache_option, target_options
from eagle3_patch.text.masking import masked_argv
from eagle3_patch.serve.drafter import DEFAULT_DRAFTER_REPO
from eagle3_patch.serve.launch import DEFAULT_MODEL, exec_plan, prepare_launch
from eagle3_patch.serve.plan import user_flags, validated_by

_AFTER_DASHES = "SGLang's own options go after `--`: eagle3-patch serve --drafter ... -- {}"


class ServeCommand(click.Command):
    """Options before `--` are serve's own (a typo is a usage error); everything after is SGLang's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ours, theirs = _split_at_dashes(args)
        try:
            rest = super().parse_args(ctx, ours)
        except click.NoSuchOption as exc:
            # click's own text keeps its "Did you mean ...?" for typos of serve's options.
            raise click.UsageError(
                f"{exc.format_message()}\n{_AFTER_DASHES.format(shlex.quote(exc.option_name))}", ctx
            ) from None
        if rest:
            raise click.UsageError(
                f"Unexpected argument {shlex.quote(rest[0])} before `--`.\n"
                + _AFTER_DASHES.format(shlex.join(masked_argv(rest))),
                ctx,
            )
        for flag in sorted(user_flags(theirs)):
            option = validated_by(flag)
            if option:
                raise click.UsageError(
                    f"{flag} after `--` would replace the {option.lstrip('-')} serve validated.\n"
                    f"Pass it as {option} PATH instead, before `--`.",
                    ctx,
                )
        ctx.params["sglang_args"] = tuple(theirs)
        return []

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [*super().collect_usage_pieces(ctx), "[-- SGLANG_ARGS...]"]


def _split_at_dashes(args: list[str]) -> tuple[list[str], list[str]]:
    if "--" not in args:
        return list(args), []
    at = args.index("--")
    return list(args[:at]), list(args[at + 1:])


# Extra arguments are let through click only so that ServeCommand can refuse them with its own message.
@click.command("serve", cls=ServeCommand, context_settings={"allow_extra_args": True})
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="Target: a local model folder or a Hub repo id.")
@click.option("--drafter", required=True,
              help="EAGLE-3 drafter: a folder holding config.json, or a variant name (full, compressed).")
@click.option("--drafter-repo", default=DEFAULT_DRAFTER_REPO, show_default=True,
              help="Where variant names are resolved: a local folder or a Hub repo id.")
@click.option("--no-apply", is_flag=True,
              help="Do not patch SGLang; refuse to launch if EAGLE-3 capture would not work.")
@click.option("--in-memory", is_flag=True,
              help="Patch SGLang's processes in memory (as `eagle3-patch run`); never write site-packages.")
@click.option("--dry-run", is_flag=True, help="Write nothing; print the exact command and environment.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print {\"argv\": [...], \"env\": {...}}.")
@cache_option
@target_options
def serve(
    model: str,
    drafter: str,
    drafter_repo: str,
    no_apply: bool,
    in_memory: bool,
    dry_run: bool,
    as_json: bool,
    no_cache: bool,
    python: str | None,
    sglang_dir: str | None,
    sglang_args: tuple[str, ...],
) -> None:
    """Launch SGLang with EAGLE-3 at the validated chain config.

    Options before `--` are serve's own. Everything after `--` goes to SGLang
    unchanged; where it repeats a flag serve sets, your value wins (except the
    model and draft model paths: use --model and --drafter).
    """
    if as_json and not dry_run:
        raise click.UsageError("--json describes a plan; use it with --dry-run.")
    if in_memory and no_apply:
        raise click.UsageError("--no-apply promises an image patched at build time; "
                               "--in-memory patches at run time. Pass one of them.")
    prepared = prepare_launch(
        model=model, drafter=drafter, drafter_repo=drafter_repo, python=python,
        sglang_dir=sglang_dir, user_args=sglang_args, apply=not no_apply, dry_run=dry_run, in_memory=in_memory,
        cache=not no_cache,
    )
    if dry_run:
        click.echo(json.dumps(prepared.plan.to_json(), indent=2) if as_json else prepared.dry_run_text())
        return
    click.echo(prepared.banner(), err=True)
    exec_plan(prepared.plan)
