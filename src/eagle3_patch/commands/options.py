"""The options every command shares, as click decorators: ``cli`` and the lazily loaded
``serve`` and ``run`` commands declare them alike."""

from __future__ import annotations

import click

# One instance for every command: each new click.Path(file_okay=False) looks up a
# translation of its name ("directory") on the file system (benchmarks/README.md).
_FOLDER = click.Path(file_okay=False)


def target_options(command):
    """--python / --sglang-dir: accepted after every command name."""
    command = click.option(
        "--sglang-dir", type=_FOLDER, default=None,
        help="The `sglang` package folder to work on (overrides --python's lookup).")(command)
    return click.option(
        "--python", "python", metavar="PATH", default=None,
        help="Interpreter whose SGLang to work on, e.g. /opt/venv/bin/python "
             "(default: the one running eagle3-patch).")(command)


def json_option(command):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object (errors too).")(command)


def cache_option(command):
    return click.option(
        "--no-cache", is_flag=True,
        help="Use no cache: analyse the model files afresh and read or write no cache entry "
             "(also: EAGLE3_PATCH_NO_CACHE=1).")(command)
