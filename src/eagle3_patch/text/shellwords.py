"""A word as it is shown in a command the user can paste into a shell."""

from __future__ import annotations


def quote(word: str) -> str:
    """``word`` as one shell word."""
    import shlex  # it compiles a regex at import: a start that quotes nothing skips it

    return shlex.quote(word)
