"""What a terminal is shown: nothing in it acts on the terminal."""

from __future__ import annotations


def assert_printable(*outputs: str) -> None:
    """No control character (C0, C1, DEL, separators, format characters) but the newlines we print."""
    for output in outputs:
        bad = sorted({char for char in output if not char.isprintable() and char != "\n"})
        assert not bad, f"{bad} in {output[:2000]!r}"
