"""Shared fixtures: real SGLang releases laid out as installed packages, the unprivileged
users' world, and each test's own cache folder. What tests import (the Site, the in-process
CLI, ``first_fast``) is in the support package."""

from __future__ import annotations

import shutil

import pytest

from support import userenv
from support.sites import Site



@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test its own cache folder: the analysis memo of one never answers another."""
    cache = tmp_path / "xdg-cache"
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
