"""Where the checkout's parts are, from the tests' point of view."""

from __future__ import annotations

from pathlib import Path

# The folder holding the support package: on sys.path in pytest, and for the scripts the tests
# start that import from it.
TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
SRC = REPO / "src"
PROBES = TESTS / "support" / "probes"
