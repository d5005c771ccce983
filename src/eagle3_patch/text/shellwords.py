"""A word as it is shown in a command the user can paste into a shell."""

from __future__ import annotations


def quote(word: str) -> str:
    """``word`` as one shell word."""
    # shlex compiles a regex at import (~0.3 ms): only a message that prints a
    # path pays for it, not every start of status and check.
    import shlex

    return shlex.quote(word)
