"""What a server's JSON may hold, the rules every answer bench reads is checked against.

A server is foreign input: its numbers can be of any JSON type and any size. Each figure bench
reports is a ratio of counts or a difference of logprobs, so a count past what a float holds, or a
logprob that is no finite number, would end the run with an ``OverflowError`` or turn every figure
into nan. Such values make the answer malformed, as a wrong type does.
"""

from __future__ import annotations

import math
from typing import Any

from eagle3_patch.text.jsontext import loads

# Up to here every whole number is a float exactly, and no ratio of two counts overflows one.
# No server counts that far: 2**53 tokens at a million a second take 285 years.
MAX_COUNT = 2**53
# A word SGLang sends in every answer, kept with each request (a finish reason: stop, length,
# abort): far longer than any, and short enough that thousands of requests stay a small report.
MAX_WORD = 64


def parse_json(raw: bytes | str) -> Any:
    """A server's JSON answer; ValueError for anything that is not standard JSON or that a float
    cannot hold: Python's ``NaN`` and ``Infinity`` extensions (SGLang's orjson never writes them),
    a number such as 1e999 (Python reads it as infinity), a whole number past Python's digit limit
    (``jsontext.NumberTooLong``, in our words), and nesting past Python's recursion limit (valid
    JSON, but no SGLang answer is nested like that) included."""
    try:
        return loads(raw, finite=True)
    except RecursionError as exc:
        raise ValueError(f"JSON nested too deeply to read: {exc}") from None


def is_count(value: Any, least: int = 0) -> bool:
    """A count in a server's JSON (tokens, passes, drafts): a whole number (not a bool) from
    ``least`` up to ``MAX_COUNT``."""
    return isinstance(value, int) and not isinstance(value, bool) and least <= value <= MAX_COUNT


def is_counts(value: Any) -> bool:
    """A list of counts (token ids, a histogram)."""
    return isinstance(value, list) and all(map(is_count, value))


def is_text(value: Any) -> bool:
    """A string that is Unicode text: JSON can escape half a surrogate pair (SGLang's orjson never
    writes one), which no terminal or UTF-8 stream can then show."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_word(value: Any) -> bool:
    """Text of at most ``MAX_WORD`` characters (``is_text``)."""
    return is_text(value) and len(value) <= MAX_WORD


def logprob(value: Any) -> float | None:
    """A logprob as a float, or None for anything that is not a finite number (a bool, a string,
    nan, an integer past a float's range)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def logprob_entries(value: Any) -> list[tuple[int, float]] | None:
    """SGLang's logprob entries, ``[logprob, token_id, text or null]`` each, as ``(token id,
    logprob)`` pairs; None if any entry is not one."""
    if not isinstance(value, list):
        return None
    pairs = []
    for entry in value:
        if not (isinstance(entry, list) and len(entry) >= 2 and is_count(entry[1])):
            return None
        number = logprob(entry[0])
        if number is None:
            return None
        pairs.append((entry[1], number))
    return pairs
