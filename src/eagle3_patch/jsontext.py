"""JSON from outside (a file, a server's answer), with Python's one hidden limit said in our words.

Python converts no whole number of more than ``sys.get_int_max_str_digits()`` digits (4300):
``json.loads`` stops there with advice to raise that limit, which is meant for programmers. No
config, safetensors header, prompt or SGLang answer holds such a number, so it is malformed input
like any other, and the message a user reads says so instead.
"""

from __future__ import annotations

import json
import sys
from typing import Any


class NumberTooLong(ValueError):
    """A whole number longer than Python converts, in JSON from outside."""

    def __init__(self) -> None:
        super().__init__(f"it holds a whole number of more than {sys.get_int_max_str_digits():,} digits, "
                         "which Python does not read (no real file or server answer has one)")


def loads(raw: bytes | str) -> Any:
    """``json.loads(raw)``; a number longer than Python converts raises ``NumberTooLong``."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise readable(exc) from None


def reason(exc: BaseException) -> str:
    """Why JSON could not be read, for a message: our words for Python's digit limit, else the
    exception's type and its first line."""
    exc = readable(exc)
    if isinstance(exc, NumberTooLong):
        return str(exc)
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"


def readable(exc: BaseException) -> BaseException:
    """``exc``, raised while reading JSON (here or in another library), as a user should read it:
    Python's digit limit becomes ``NumberTooLong``; anything else stays as it is."""
    # The decoder's syntax errors are JSONDecodeError; the only other ValueError it raises is
    # int()'s, whose message carries the advice to call sys.set_int_max_str_digits.
    if (isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError)
            and "int_max_str_digits" in str(exc)):
        return NumberTooLong()
    return exc
