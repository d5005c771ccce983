"""Python source bytes to text and back, in the encoding the file declares.

A model file may start with a UTF-8 BOM or carry a PEP 263 coding cookie
(``# -*- coding: latin-1 -*-``); Python reads both, so must we. Text is
encoded back in the same encoding (``utf-8-sig`` writes the BOM again), so a
file we patch and revert is byte for byte what it was.
"""

from __future__ import annotations

import re
import tokenize

# Lines as Python's tokenizer ends them (\r alone too): the cookie is on the first or second
# of these, where a file-like readline, which ends lines at \n only, would see one line.
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def encoding_of(data: bytes) -> str:
    """The encoding Python would read ``data`` in; raises SyntaxError for a bad cookie."""
    lines = (match.group() for match in _LINE.finditer(data))
    return tokenize.detect_encoding(lambda: next(lines, b""))[0]


def decode(data: bytes) -> str:
    return data.decode(encoding_of(data))


def encode(text: str, like: bytes) -> bytes:
    """``text`` in the encoding of ``like`` (the file it replaces)."""
    return text.encode(encoding_of(like))
