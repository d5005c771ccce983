"""The README's install lines and Dockerfile work as written, from a checkout (not on PyPI)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO

ROOT = REPO
README = (ROOT / "README.md").read_text(encoding="utf-8")
pytestmark = pytest.mark.slow


def block_after(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.DOTALL).group(1)


def checkout_copy(dest: Path, ignore: list[str]) -> Path:
    """The files a checkout holds (git ls-files), minus ``ignore`` patterns (a .dockerignore)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    for name in listed:
        parts = Path(name).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in ignore):
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    return dest


def fresh_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    return where / "bin"


@pytest.mark.parametrize("line", [0, 2], ids=["pip-install-dot", "built-wheel"])
def test_readme_install_line_works_in_a_checkout(line: int, tmp_path: Path) -> None:
    command = block_after("## Install", "sh").splitlines()[line].split("#", 1)[0].strip()
    bin_dir = fresh_venv(tmp_path / "venv")
    checkout = checkout_copy(tmp_path / "checkout", [])

    done = subprocess.run(command, shell=True, cwd=checkout, capture_output=True, text=True, timeout=600,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)})

    assert done.returncode == 0, done.stderr[-2000:]
    version = subprocess.run([str(bin_dir / "eagle3-patch"), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("eagle3-patch, version")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    # The second of the README's two commands is the whole CI: lint, then every test.
    section = README.split("## Two commands on a fresh machine", 1)[1].split("\n## ", 1)[0]
    test_command = re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)[1]
    assert "ruff check" in test_command and test_command.endswith("-m pytest")
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_dockerfile_in_readme_is_the_repository_dockerfile() -> None:
    assert block_after("### Dockerfile", "dockerfile") == (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_copy_and_pip_install_work_without_pypi_eagle3_patch(tmp_path: Path) -> None:
    # No Docker daemon in CI: replay the Dockerfile's COPY (with .dockerignore) and its pip install.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    source, dest = re.search(r"^COPY (\S+) (\S+)$", dockerfile, re.MULTILINE).groups()
    install = re.search(r"^RUN (pip install \S+) &&", dockerfile, re.MULTILINE).group(1)
    assert source == "." and install == f"pip install {dest}"
    ignore = [p for p in (ROOT / ".dockerignore").read_text().split() if p]
    copied = checkout_copy(tmp_path / dest.lstrip("/"), ignore)
    bin_dir = fresh_venv(tmp_path / "venv")

    done = subprocess.run([str(bin_dir / "pip"), "install", str(copied)], capture_output=True, text=True,
                          timeout=600)

    assert done.returncode == 0, done.stderr[-2000:]
    assert (bin_dir / "eagle3-patch").exists()
