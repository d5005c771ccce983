"""A word as it is shown in a command the user can paste into a shell."""

from __future__ import annotations


def quote(word: str) -> str:
    """``word`` as one shell word. A word holding a character a terminal could act on or hide
    (an escape sequence, a bidirectional control, a byte of a file name that is not UTF-8) is
    written in ANSI-C quotes, ``$'\\x1b...'``, which bash, zsh and ksh read back as those very
    characters: pasteable, and printable (``masking.printable`` leaves it as it is)."""
    if not word.isprintable():
        return "$'" + "".join(map(_ansi_c, word)) + "'"
    import shlex  # it compiles a regex at import: a start that quotes nothing skips it

    return shlex.quote(word)


def join(words: list[str] | tuple[str, ...]) -> str:
    """``words`` as one shell command line, each through ``quote``."""
    return " ".join(map(quote, words))


def _ansi_c(char: str) -> str:
    if char in "\\'":
        return "\\" + char
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
