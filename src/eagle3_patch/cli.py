"""The ``eagle3-patch`` command line: options in, one engine call, result out.

Expected failures are ``errors.Eagle3PatchError`` types; ``main`` hands every
outcome to ``errorreport``, the one place that turns them (and click's usage
errors, and anything unexpected) into a message and an exit code, so no
command prints a traceback at a user.
"""

from __future__ import annotations

import functools
import gc
import importlib
import sys

import click

from eagle3_patch import __version__
from eagle3_patch.commands.options import cache_option, json_option, target_options


class LazyGroup(click.Group):
    """Subcommands with heavier imports load only when invoked (fast path: benchmarks/README.md)."""

    lazy = {
        "serve": "eagle3_patch.commands.serve:serve",
        "bench": "eagle3_patch.commands.bench:bench",
        "run": "eagle3_patch.commands.run:run",
    }

    def make_context(self, *args, **kwargs):  # --help and --version print while parsing
        from eagle3_patch.ui.errorreport import output_errors

        with output_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        from eagle3_patch.ui.errorreport import output_errors

        with output_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx, name):
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


def _locate(python, sglang_dir):
    from eagle3_patch.site.locate import locate_sglang

    return locate_sglang(python, sglang_dir)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="eagle3-patch")
def cli():
    """Make SGLang capture EAGLE-3 hidden states for Qwen3.5/Qwen3.6 targets,
    launch it at the validated configuration, and measure the speedup."""


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show the diff apply would make; write nothing.")
@json_option
@cache_option
@target_options
def apply(dry_run, as_json, no_cache, python, sglang_dir):
    """Patch the installed SGLang (idempotent; a no-op where it is native)."""
    from eagle3_patch.engine.apply import apply as apply_install
    from eagle3_patch.ui import render

    result = apply_install(_locate(python, sglang_dir), dry_run=dry_run, cache=not no_cache)
    render.emit(result, as_json)


@cli.command()
@click.option("--from-backup", is_flag=True,
              help="Put the backup back (discarding later edits), only if it is provably the "
                   "file SGLang shipped.")
@json_option
@target_options
def revert(from_backup, as_json, python, sglang_dir):
    """Remove exactly what apply added, keeping everything else byte for byte."""
    from eagle3_patch.ui import render
    from eagle3_patch.engine.revertplan import revert as revert_install

    render.emit(revert_install(_locate(python, sglang_dir), from_backup=from_backup), as_json)


@cli.command()
@json_option
@cache_option
@target_options
def status(as_json, no_cache, python, sglang_dir):
    """Show the installation's state and each hook's."""
    from eagle3_patch.engine.apply import status as status_of
    from eagle3_patch.ui import render

    render.emit(status_of(_locate(python, sglang_dir), cache=not no_cache), as_json)


@cli.command()
@json_option
@cache_option
@target_options
def check(as_json, no_cache, python, sglang_dir):
    """Exit 0 if EAGLE-3 capture works for Qwen3.5/3.6 targets, 1 if not."""
    from eagle3_patch.engine.apply import check as check_install
    from eagle3_patch.ui import render
    from eagle3_patch.ui.errorreport import best_effort
    from eagle3_patch.errors import CheckFailed

    try:
        result = check_install(_locate(python, sglang_dir), cache=not no_cache)
    except CheckFailed as failed:
        if not as_json:  # with --json the error and this result are printed as one object
            best_effort(functools.partial(render.emit, failed.result, as_json), sys.stdout)
        raise
    render.emit(result, as_json)


@cli.command()
@json_option
@cache_option
@target_options
def diff(as_json, no_cache, python, sglang_dir):
    """Print, as a unified diff, what apply would change."""
    from eagle3_patch.engine.apply import diff as diff_of
    from eagle3_patch.ui import render

    result = diff_of(_locate(python, sglang_dir), cache=not no_cache)
    if as_json:
        render.emit(result, as_json)
    elif result.diff:
        render.write_verbatim(result.diff)
    else:
        render.echo(f"Nothing to change: the installation is {result.state.value}.", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and exit with the code ``errorreport`` maps its outcome to."""
    from eagle3_patch.ui.errorreport import run_reported

    args = sys.argv[1:] if argv is None else list(argv)
    sys.exit(run_reported(lambda: cli.main(args=args, prog_name="eagle3-patch", standalone_mode=False),
                          cli, args))


def program() -> None:
    """The ``eagle3-patch`` program (and ``python -m eagle3_patch``): ``main``, with the
    collector tuned for a process that starts, decides and exits (why and how much it saves:
    benchmarks/README.md, "The collector"). A process that calls ``main`` itself keeps its own."""
    gc.set_threshold(200_000, 30, 30)
    try:
        main()
    finally:
        # Safe: nothing of ours waits for a final collection (files closed by `with`, the lock
        # released in `finally`, output flushed and atexit run as usual).
        gc.freeze()
