"""Slow tests are marked one way, ``pytest.mark.slow``, so the local loop (``pytest -m "not slow"``)
skips them and CI runs them: a whole module by ``pytestmark = pytest.mark.slow`` with why,
one test by its decorator, the extra cases of a parametrised test by ``first_fast``. A bare
mark on an in-process CLI test keeps the fast loop within its budget (45 s on 2 cores):
one test per kind of outcome stays in it."""

from __future__ import annotations

import pytest


def first_fast(*cases):
    """Cases for ``pytest.mark.parametrize`` of which only the first runs in the fast loop:
    where every case costs an apply and a revert, one stands for the rest locally and CI runs
    them all. A case is a value, a tuple of values, or a ``pytest.param``."""
    def param(case, marks=()):
        if isinstance(case, type(pytest.param())):
            return pytest.param(*case.values, marks=[*case.marks, *marks], id=case.id)
        return pytest.param(*(case if isinstance(case, tuple) else (case,)), marks=marks)

    return [param(cases[0]), *(param(case, [pytest.mark.slow]) for case in cases[1:])]
