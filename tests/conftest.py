"""Shared fixtures: real SGLang releases laid out as installed packages, the unprivileged
users' world, and each test's own cache folder. What tests import (the Site, the in-process
CLI, ``first_fast``) is in the support package."""

from __future__ import annotations

import gc
import itertools
import shutil

import pytest

from support import userenv
from support.sites import Site



_CACHES = itertools.count()


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Each test its own cache folder: the analysis memo of one never answers another. Named,
    not made (eagle3-patch makes it): half the tests never write one, nor ask for tmp_path."""
    cache = tmp_path_factory.getbasetemp() / "xdg-cache" / str(next(_CACHES))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("EAGLE3_PATCH_NO_CACHE", raising=False)
    return cache


@pytest.fixture
def site(tmp_path):
    """A factory: site("0.5.12") -> Site with that release installed."""
    made = []

    def make(version: str) -> Site:
        made.append(Site(tmp_path / f"site-{version}-{len(made)}", version))
        return made[-1]

    return make


@pytest.fixture
def user_site(user_env, request):
    """A 0.5.21 site owned by root that the requesting module's unprivileged ``USER`` may read
    but not write, in a folder named for that user."""
    root = user_env.folder(f"{request.module.USER}-site-")
    try:
        yield Site(root / "site", "0.5.21")
    finally:
        shutil.rmtree(root)


@pytest.fixture(scope="session")
def user_env():
    """What the unprivileged users (setpriv) can read, wherever this checkout lives: see userenv."""
    with userenv.user_env() as world:
        yield world


def pytest_collection_finish(session):
    """What exists once the tests are collected (pytest's own objects, every imported module)
    lives until the end: out of the collector's way, so that each full collection during the
    run looks only at what the tests made (it was a fifth of the fast loop). What a test makes
    is collected as before."""
    gc.collect()
    gc.freeze()
