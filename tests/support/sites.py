"""One SGLang release laid out in a temporary site folder, and the CLI run against it in this
process (``Site.invoke``) or as a process (``Site.run``, ``as_process``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .cli import invoke_cli
from .releases import install_release

# For child scripts: the served modules' parents run SGLang's own __init__
# (which imports torch); stand-in parent packages under argv[1] let a torch-less
# child ask for the real module's spec.
STANDIN_SGLANG_PARENTS = '''\
import hashlib, importlib.util, json, os, sys, types
root = sys.argv[1]
for name, sub in (("sglang", ""), ("sglang.srt", "srt"), ("sglang.srt.models", "srt/models")):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(root, "sglang", sub)]
    sys.modules[name] = package
'''


class Site:
    """One temporary site folder with one SGLang release in it."""

    def __init__(self, root: Path, version: str) -> None:
        self.root = root
        self.version = version
        self.package = install_release(version, root)
        self.models = self.package / "srt" / "models"

    def file(self, name: str = "qwen3_5.py") -> Path:
        return self.models / name

    def link_to_store(self, store: Path, read_only: bool = False) -> Path:
        """Move qwen3_5.py into ``store`` (as Nix or a dev tree keeps it) and leave a symlink."""
        store.mkdir()
        real = store / "qwen3_5.py"
        real.write_bytes(self.read())
        if read_only:
            real.chmod(0o444)
        self.file().unlink()
        self.file().symlink_to(real)
        return real

    def read(self, name: str = "qwen3_5.py") -> bytes:
        return self.file(name).read_bytes()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        env.update(PYTHONPATH=str(self.root), **extra)
        return env

    def as_user(self, user_env, user: str, *args: str) -> subprocess.CompletedProcess:
        """The CLI as the unprivileged ``user`` runs it against this site (see ``user_env``)."""
        return user_env.cli(user, *args, env=self.env(), capture_output=True, text=True, timeout=120)

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        """The CLI as a user runs it, against this site: a process (0.1-1 s)."""
        return subprocess.run([sys.executable, "-m", "eagle3_patch", *args],
                              capture_output=True, text=True, env=self.env(**extra), timeout=120)

    def invoke(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        """What ``run`` does, in this process (milliseconds): see ``invoke_cli``."""
        return invoke_cli(*args, env=self.env(**extra))


def as_process(s: Site, *args: str) -> tuple[int, bytes, bytes]:
    """``python -m eagle3_patch *args`` against ``s``: exit code, stdout, stderr."""
    done = subprocess.run([sys.executable, "-m", "eagle3_patch", *args], capture_output=True,
                          env=s.env(), timeout=120)
    return done.returncode, done.stdout, done.stderr


def in_process(s: Site, *args: str) -> tuple[int, bytes, bytes]:
    """The same in this process (``Site.invoke``), in ``as_process``'s shape."""
    done = s.invoke(*args)
    return done.returncode, done.stdout.encode(), done.stderr.encode()
