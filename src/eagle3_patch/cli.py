"""The ``eagle3-patch`` group: its commands, each imported only when it is used, and the program.

Every command lives in ``commands/``. Expected failures are ``errors.Eagle3PatchError``
types; ``main`` hands every outcome to ``ui.errorreport``, the one place that turns them
(and click's usage errors, and anything unexpected) into a message and an exit code, so no
command prints a traceback at a user.
"""

from __future__ import annotations

import gc
import importlib
import sys

import click

from eagle3_patch import __version__
from eagle3_patch.ui.errorreport import missing_dependency, output_errors, run_reported


class LazyGroup(click.Group):
    """Each command is imported when it is invoked or its help is shown, so a start of one loads
    nothing of the others (fast path: benchmarks/README.md)."""

    lazy = {
        "apply": "eagle3_patch.commands.apply:apply",
        "bench": "eagle3_patch.commands.bench:bench",
        "check": "eagle3_patch.commands.check:check",
        "diff": "eagle3_patch.commands.diff:diff",
        "revert": "eagle3_patch.commands.revert:revert",
        "run": "eagle3_patch.commands.run:run",
        "serve": "eagle3_patch.commands.serve:serve",
        "status": "eagle3_patch.commands.status:status",
    }

    def make_context(self, *args, **kwargs):  # --help and --version print while parsing
        with output_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with output_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx):
        return sorted(self.lazy)

    def get_command(self, ctx, name):
        if name not in self.lazy:
            return None
        module, attr = self.lazy[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        """click's list of commands, where one whose module needs a package that is not installed
        (bench without aiohttp) is listed all the same, with the command that installs it."""
        rows, missing = [], []
        width = formatter.width - 6 - max(map(len, self.lazy))
        for name in self.list_commands(ctx):
            try:
                command = self.get_command(ctx, name)
            except ModuleNotFoundError as exc:
                error = missing_dependency(exc)
                if error is None:
                    raise
                rows.append((name, f"Not available: {exc.name.partition('.')[0]} is not installed (below)."))
                missing.append(f"{name}: {error.what}\n  {error.fix}\n")
                continue
            rows.append((name, command.get_short_help_str(width)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        for lines in missing:  # not wrapped: the install command stays one line to copy
            formatter.write_paragraph()
            formatter.write(lines)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="eagle3-patch")
def cli():
    """Make SGLang capture EAGLE-3 hidden states for Qwen3.5/Qwen3.6 targets,
    launch it at the validated configuration, and measure the speedup."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and exit with the code ``errorreport`` maps its outcome to."""
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
