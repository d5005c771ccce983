"""Writing a bench chart: shared by the single-stream and the under-load plots."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from eagle3_patch.errors import BadInput

# With every text a chart shows that a server or a prompts file wrote, itself through
# masking.shown: matplotlib reads "$...$" as math, and a formula it cannot parse fails the save;
# a character no font has is a warning that quotes it raw on stderr.
FOREIGN_TEXT = {"parse_math": False}


def save_figure(figure, path: Path) -> None:
    """Write a matplotlib figure to ``path`` (a bad path is the user's input) and free it."""
    try:
        figure.savefig(path)
    except OSError as exc:
        raise BadInput(f"Cannot write the plot to {path}.", f"Reason: {exc}.", "Pass --plot a writable path.") from exc
    finally:
        import_pyplot().close(figure)


def import_pyplot() -> Any:
    """matplotlib's pyplot, headless. The one import of matplotlib: it is the optional ``plot`` extra,
    imported only when a plot is asked for, and its absence is said before anything is measured."""
    try:  # matplotlib: the optional plot extra, for --plot only
        import matplotlib

        matplotlib.use("Agg")  # no display needed; a headless GPU box has none
        from matplotlib import pyplot
    except ImportError as exc:
        raise BadInput(
            "--plot needs matplotlib, which is not installed.",
            "Plotting is an optional extra so the core install stays small.",
            # eagle3-patch's own interpreter: its pip installs where this import looks.
            f"Run: {shlex.quote(sys.executable)} -m pip install matplotlib   (or, from the eagle3-patch "
            "checkout: pip install '.[plot]')",
        ) from exc
    return pyplot

