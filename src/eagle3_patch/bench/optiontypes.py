"""``bench``'s option types that need more than click's own: the load levels, the duration, the timeout.

Each refuses, as a usage error (exit 2), what could not describe a measurement: a level that is
not plain ASCII digits, more requests in flight than this process may open connections for, a
duration that is not a finite number of seconds a level can be measured in, a timeout that is not
a finite number of seconds a request can be waited for.
"""

from __future__ import annotations

import math
import re
from typing import Any

try:
    import resource
except ImportError:  # Windows: no open-file limit to read
    resource = None

import click

from eagle3_patch.text.masking import shown

# Interpreter, event loop and stdio files besides the sockets.
SPARE_FILES = 64
# Linux caps any process's open files at fs.nr_open, at most 2**30: a level with more digits than
# this asks for what no system allows, whatever the limits say.
_ABSURD_DIGITS = 10
# int() also takes "+4", " 4", "4_0" and other scripts' digits ("١"); a level is written in ASCII.
_LEVEL = re.compile(r"[0-9]+")
MIN_DURATION_S, MAX_DURATION_S = 1.0, 86400.0
MAX_TIMEOUT_S = 86400.0


class ConcurrencyLevels(click.ParamType):
    """``1,4,16,64``: the load levels, measured in ascending order."""

    name = "LIST"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        parts = str(value).split(",")
        if not all(_LEVEL.fullmatch(part) for part in parts) or not all(part.strip("0") for part in parts):
            self.fail(f"{_shown(value)} is not a comma-separated list of positive whole numbers, e.g. 1,4,16,64.",
                      param, ctx)
        if any(len(part.lstrip("0")) > _ABSURD_DIGITS for part in parts):
            self.fail(f"{_shown(value)} asks for more requests in flight than any system can hold connections "
                      "for (one open file each; Linux allows a process about a billion at most). "
                      "Lower --concurrency, e.g. 1,4,16,64.", param, ctx)
        levels = tuple(sorted({int(part) for part in parts}))
        problem = _open_files_problem(levels[-1])
        if problem:
            self.fail(problem, param, ctx)
        return levels


def _open_files_problem(level: int) -> str | None:
    """Why ``level`` requests cannot be kept in flight here, or None. One socket per request in
    flight: past the open-file limit, connections would fail midway through a level and read as a
    server problem."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = level + SPARE_FILES
    if soft == resource.RLIM_INFINITY or needed <= soft:
        return None
    opening = f"{level} concurrent requests need {needed} open files"
    if hard == resource.RLIM_INFINITY or needed <= hard:
        return (f"{opening}, and this process may open {soft}. Raise the limit first (ulimit -n {needed}) "
                "or lower --concurrency.")
    return (f"{opening}, more than this process can ever open: its hard limit is {hard}, which only root "
            f"can raise (limits.conf, or LimitNOFILE for a systemd service). Lower --concurrency to at most "
            f"{max(hard - SPARE_FILES, 1)}.")


class _Seconds(click.ParamType):
    """A finite number of seconds from ``low`` (excluded if ``low_open``) to ``high``. nan compares
    false with everything, so click's FloatRange lets it through, and inf never ends."""

    name = "SECONDS"
    low: float
    high: float
    low_open = False
    example: str

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        above_low = self.low < seconds if self.low_open else self.low <= seconds
        if not (above_low and seconds <= self.high):
            low = f"above {self.low:g}" if self.low_open else f"from {self.low:g}"
            self.fail(f"{_shown(value)} is not a finite number of seconds {low} "
                      f"{'up to' if self.low_open else 'to'} {self.high:g} (one day), e.g. {self.example}.",
                      param, ctx)
        return seconds


class Duration(_Seconds):
    """``--duration``: seconds per level, a finite number from one second to one day. Below a second
    a level ends before its requests are all in flight (nothing measured)."""

    low, high, example = MIN_DURATION_S, MAX_DURATION_S, "--duration 60"


class Timeout(_Seconds):
    """``--timeout``: seconds a connection, a read and a whole request may take, up to a day
    (infinity reached aiohttp's timer as an OverflowError)."""

    low, high, low_open, example = 0.0, MAX_TIMEOUT_S, True, "--timeout 120"


def _shown(value: Any) -> str:
    return f"'{shown(str(value), limit=40)}'"
