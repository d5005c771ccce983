"""One rule for which Python owns an SGLang folder: the pip hints and serve's exec agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from eagle3_patch.site import hints
from eagle3_patch.site.interpreters import environment_python

from support import builders



def _python(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def _sglang(site: Path) -> Path:
    package = site / "sglang"
    (package / "srt" / "models").mkdir(parents=True)
    return package


def _hinted_python(package: Path) -> str:
    sglang = builders.install(str(package), python="/usr/bin/elsewhere", selector=f"--sglang-dir {package}")
    return hints.pip(sglang, "list").split(" -m pip ")[0]


def _served_python(package: Path) -> str | None:
    return environment_python(str(package))


def test_a_venv_names_its_bin_python_for_pip_and_serve_alike(tmp_path):
    venv = tmp_path / "venv"
    (venv / "pyvenv.cfg").parent.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for name in ("python", "python3", "python3.12"):
        _python(venv / "bin" / name)
    package = _sglang(venv / "lib" / "python3.12" / "site-packages")
    assert _hinted_python(package) == _served_python(package) == str(venv / "bin" / "python")


def test_a_prefix_without_pyvenv_cfg_names_its_versioned_python_for_pip_and_serve_alike(tmp_path):
    # conda or a system Python: no pyvenv.cfg, and bin/python may be another Python.
    prefix = tmp_path / "conda"
    for name in ("python", "python3.11"):
        _python(prefix / "bin" / name)
    package = _sglang(prefix / "lib" / "python3.11" / "site-packages")
    assert _hinted_python(package) == _served_python(package) == str(prefix / "bin" / "python3.11")


@pytest.mark.parametrize("layout", ["loose", "no-interpreter"])
def test_a_folder_no_environment_owns_names_the_interpreter_given(tmp_path, layout):
    if layout == "loose":
        package = _sglang(tmp_path / "checkout")
    else:
        package = _sglang(tmp_path / "prefix" / "lib" / "python3.11" / "site-packages")
    assert _served_python(package) is None
    assert _hinted_python(package) == "/usr/bin/elsewhere"
