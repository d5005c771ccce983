"""JSON from outside (a file, a server's answer), with Python's one hidden limit said in our words.

Python converts no whole number of more than ``sys.get_int_max_str_digits()`` digits (4300):
``json.loads`` stops there with advice to raise that limit, which is meant for programmers. No
config, safetensors header, prompt or SGLang answer holds such a number, so it is malformed input
like any other, and the message a user reads says so instead.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, NoReturn


class NumberTooLong(ValueError):
    """A whole number longer than Python converts, in JSON from outside."""

    def __init__(self) -> None:
        super().__init__(f"it holds a whole number of more than {sys.get_int_max_str_digits():,} digits, "
                         "which Python does not read (no real file or server answer has one)")


def loads(raw: bytes | str, finite: bool = False, **hooks: Any) -> Any:
    """``json.loads(raw, **hooks)``; a number longer than Python converts raises ``NumberTooLong``
    (``int()`` in a ``parse_int`` hook too). ``finite``: a ValueError for a number no float holds
    too, Python's ``NaN`` and ``Infinity`` extensions (no standard writer emits them) and a number
    such as 1e999 (Python would read it as infinity)."""
    if finite:
        hooks = {"parse_constant": _no_constant, "parse_float": finite_float, **hooks}
    try:
        return json.loads(raw, **hooks)
    except ValueError as exc:
        raise readable(exc) from None


def finite_float(text: str) -> float:
    """A JSON number's text as a float; ValueError where it lies past a float's range."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("a number past a float's range")
    return number


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


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
