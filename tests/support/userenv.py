"""The unprivileged users some tests run the CLI as, and a world those users can read.

Such tests run eagle3-patch through ``setpriv --reuid=U --regid=U --clear-groups``.
This checkout (and with it the test venv, whose editable install points into its
``src/``) may live under a folder the user cannot traverse: CI clones into a folder
we do not control, ``mktemp -d`` makes it 0700, and /root is 0700. So nothing the
user runs may be read from the checkout or the venv directly. Instead, once per
session, a world-readable (0755) folder under /tmp gets:

- ``src/``: this checkout's ``src/``, bind-mounted read-only, put first on
  PYTHONPATH by :meth:`UserEnv.pythonpath`;
- ``tool-venv/``: a venv shape whose interpreter is Debian's /usr/bin/python3.11
  (same 3.11 ABI as the test venv's) and whose site-packages is the test venv's,
  bind-mounted read-only (eagle3-patch's dependencies, for the user too).

The mounts are undone at the end of the session, also when a test or the setup
fails. The users are created here too (``useradd``, once per machine).
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from . import paths

DEBIAN_PYTHON = Path("/usr/bin/python3.11")
SRC = paths.SRC
# The test venv's site-packages (eagle3-patch's dependencies; its editable .pth
# names SRC, which the user may not reach: the mounted src/ on PYTHONPATH comes first).
TOOL_SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


@functools.cache
def ensure_user(name: str) -> pwd.struct_passwd:
    """The user ``name``, created (without a home) if this machine lacks it."""
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        made = subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                              capture_output=True, text=True)
        # Another test run on this machine may have created it meanwhile.
        if made.returncode != 0 and subprocess.run(["id", name], capture_output=True).returncode != 0:
            raise RuntimeError(f"useradd {name} failed: {made.stderr}")
    return pwd.getpwnam(name)


def venv_shape(folder: Path, site_packages: Path | None = None) -> Path:
    """A venv whose interpreter is Debian's python; returns its ``bin/python``.

    Its site-packages is an empty folder (a mount point), or a symlink to ``site_packages``.
    """
    lib = folder / "lib" / "python3.11"
    (folder / "bin").mkdir(parents=True)
    lib.mkdir(parents=True)
    (folder / "bin" / "python").symlink_to(DEBIAN_PYTHON)
    (folder / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    if site_packages is None:
        (lib / "site-packages").mkdir()
    else:
        (lib / "site-packages").symlink_to(site_packages)
    return folder / "bin" / "python"


def bind_read_only(source: Path, target: Path) -> None:
    subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(target)], check=True)


def unmount(target: Path) -> None:
    subprocess.run(["umount", str(target)], check=True)


class Mounts:
    """Read-only bind mounts made by one owner, undone in reverse order."""

    def __init__(self) -> None:
        self.mounts: list[Path] = []

    def mount(self, source: Path, target: Path) -> None:
        """Bind ``source`` read-only over ``target``; undone by :meth:`unmount_all`."""
        bind_read_only(source, target)
        self.mounts.append(target)

    def unmount_all(self) -> None:
        for target in reversed(self.mounts):
            subprocess.run(["umount", str(target)], check=False)
        self.mounts.clear()


class UserEnv(Mounts):
    """The per-session folder the unprivileged users can read, and commands run as them."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.src = root / "src"
        self.python = root / "tool-venv" / "bin" / "python"
        self.site = root / "tool-venv" / "lib" / "python3.11" / "site-packages"

    def build(self) -> None:
        assert DEBIAN_PYTHON.exists(), "the unprivileged users run Debian's python3.11"
        self.src.mkdir()
        self.mount(SRC, self.src)
        assert venv_shape(self.root / "tool-venv") == self.python
        self.mount(TOOL_SITE, self.site)

    def folder(self, prefix: str) -> Path:
        """A new folder in this world (0755, owned by root: the users read, not write)."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.root))
        path.chmod(0o755)
        return path

    def pythonpath(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with the mounted src/ first on PYTHONPATH."""
        given = env.get("PYTHONPATH")
        return {**env, "PYTHONPATH": os.pathsep.join([str(self.src), *([given] if given else [])])}

    def run(self, user: str, *argv: str, env: Mapping[str, str],
            **kwargs) -> subprocess.CompletedProcess:
        """``argv`` as ``user`` (no supplementary groups), with exactly ``env``; cwd defaults to the world."""
        ensure_user(user)
        kwargs.setdefault("cwd", self.root)
        return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv],
                              env=dict(env), **kwargs)

    def cli(self, user: str, *args: str, env: Mapping[str, str], **kwargs) -> subprocess.CompletedProcess:
        """``python -m eagle3_patch ARGS`` as ``user``, from this checkout's src/."""
        return self.run(user, str(self.python), "-m", "eagle3_patch", *args, env=self.pythonpath(env),
                        **kwargs)


@contextlib.contextmanager
def user_env() -> Iterator[UserEnv]:
    """A :class:`UserEnv` under /tmp, unmounted and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="e3-userenv-", dir="/tmp"))
    root.chmod(0o755)  # mkdtemp's 0700 would lock the users out
    world = UserEnv(root)
    try:
        world.build()
        yield world
    finally:
        world.unmount_all()
        # Never remove files through a mount that is still there (a test's own, too).
        still = mounts_under(root)
        assert not still, f"still mounted, so {root} is left in place: {still}"
        shutil.rmtree(root, ignore_errors=True)


def mounts_under(folder: Path) -> list[str]:
    """The mount points below ``folder``, from /proc/self/mounts."""
    prefix = str(folder) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].encode().decode("unicode_escape") for line in mounts]
    return [p for p in points if p.startswith(prefix)]
