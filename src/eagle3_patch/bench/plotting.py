"""Writing a bench chart: shared by the single-stream and the under-load plots."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

from eagle3_patch.errors import BadInput
from eagle3_patch.text.masking import printable

# With every text a chart shows that a server or a prompts file wrote, itself through
# masking.shown: matplotlib reads "$...$" as math, and a formula it cannot parse fails the save;
# a character no font has is a warning that quotes it raw on stderr.
FOREIGN_TEXT = {"parse_math": False}


def check_plot_format(path: Path) -> None:
    """``BadInput`` unless ``path`` ends in an extension matplotlib writes a format for (read as it
    reads it): without one, it writes ``path`` + ".png", another file than the one named (a FIFO's
    name, or /dev/full, became /dev/full.png); an unknown one fails only when the run is over."""
    from matplotlib.backend_bases import FigureCanvasBase  # the optional extra, checked by import_pyplot first

    formats = FigureCanvasBase.get_supported_filetypes()
    if os.path.splitext(str(path))[1][1:].lower() not in formats:
        raise BadInput(
            f"--plot {printable(str(path))} names no image format matplotlib writes.",
            "The chart's format is read from the file name's extension.",
            f"End the file name in one of: {', '.join('.' + extension for extension in sorted(formats))} "
            "(e.g. bench.png).",
        )


def save_figure(figure, path: Path) -> None:
    """Write a matplotlib figure to ``path`` (a bad path is the user's input) and free it."""
    try:
        figure.savefig(path)
    except OSError as exc:
        raise BadInput(f"Cannot write the plot to {path}.", f"Reason: {exc}.", "Pass --plot a writable path.") from exc
    except RuntimeError as exc:  # a format whose writer needs a program this machine lacks (.pgf: LaTeX)
        raise BadInput(f"Cannot write the plot to {path}.", f"matplotlib: {exc}",
                       "Pass --plot a .png, .svg or .pdf file.") from exc
    finally:
        import_pyplot().close(figure)


def import_pyplot() -> Any:
    """matplotlib's pyplot, headless. matplotlib is the optional ``plot`` extra: imported only when a
    plot is asked for, and its absence is said (here) before anything is measured."""
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

