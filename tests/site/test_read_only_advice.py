"""Where the installation cannot be written, the advice is the way that works there: in memory.

Issue 17, G: `apply` on a read-only installation suggested sudo only (useless to root on a
read-only mount), and `check` told a user who does not own the installation to `apply`. Both
situations are produced for real: a read-only bind mount, and an unprivileged user (setpriv).
"""

from __future__ import annotations

import pytest

from support.sites import Site
from support.userenv import bind_read_only, unmount



pytestmark = pytest.mark.slow

USER = "e3i17g"


@pytest.fixture
def read_only_site(site):
    """A 0.5.21 site whose models folder is a read-only mount: root cannot write it either."""
    s = site("0.5.21")
    bind_read_only(s.models, s.models)
    try:
        yield s
    finally:
        unmount(s.models)


def names_in_memory_ways(text: str, s: Site) -> bool:
    return ("eagle3-patch run -- " in text and "-m sglang.launch_server" in text
            and "eagle3-patch serve --in-memory --drafter" in text)


def test_apply_as_root_on_a_read_only_mount_names_the_in_memory_way_not_sudo(read_only_site):
    s = read_only_site
    before = s.read()

    done = s.run("apply")

    assert done.returncode == 6, done.stderr
    assert f"Cannot write {s.file()}" in done.stderr
    assert f"It is on a read-only file system (mounted at {s.models})" in done.stderr
    assert names_in_memory_ways(done.stderr, s)
    assert "sudo" not in done.stderr and "owner" not in done.stderr
    assert s.read() == before


def test_apply_by_a_user_who_does_not_own_the_installation_names_the_in_memory_way(user_env, user_site):
    done = user_site.as_user(user_env, USER, "apply")

    assert done.returncode == 6, done.stderr
    assert names_in_memory_ways(done.stderr, user_site)
    assert "as the owner of that site-packages" in done.stderr  # the other way, where it is allowed


def test_check_by_a_user_who_does_not_own_the_installation_does_not_just_say_apply(user_env, user_site):
    done = user_site.as_user(user_env, USER, "check")

    assert done.returncode == 1, done.stderr
    assert "apply cannot patch it here: Its folder" in done.stderr and "not writable by this user" in done.stderr
    assert names_in_memory_ways(done.stderr, user_site)
    assert "Patch it: eagle3-patch apply" not in done.stderr


def test_check_where_apply_would_work_still_says_apply(site):
    s = site("0.5.21")

    done = s.run("check")

    assert done.returncode == 1, done.stderr
    assert "Patch it: eagle3-patch apply" in done.stderr and "--in-memory" not in done.stderr
