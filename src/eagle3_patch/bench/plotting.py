"""Writing a bench chart: shared by the single-stream and the under-load plots."""

from __future__ import annotations

from pathlib import Path

from eagle3_patch.errors import BadInput

# With every text a chart shows that a server or a prompts file wrote, itself through
# masking.shown: matplotlib reads "$...$" as math, and a formula it cannot parse fails the save;
# a character no font has is a warning that quotes it raw on stderr.
FOREIGN_TEXT = {"parse_math": False}


def save_figure(figure, path: Path) -> None:
    """Write a matplotlib figure to ``path`` (a bad path is the user's input) and free it."""
    from matplotlib import pyplot

    try:
        figure.savefig(path)
    except OSError as exc:
        raise BadInput(f"Cannot write the plot to {path}.", f"Reason: {exc}.", "Pass --plot a writable path.") from exc
    finally:
        pyplot.close(figure)
