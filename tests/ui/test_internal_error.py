"""An internal error (exit 70) keeps its traceback in a log file and says where, as pre-commit does."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import click
import pytest

from eagle3_patch.ui import errorreport
from eagle3_patch.errors import EXIT_INTERNAL


def _crash() -> None:
    raise RuntimeError("lost a race at https://user:hunter2@example.com/x")


def _run(capsys, *args: str) -> tuple[int, str]:
    code = errorreport.run_reported(_crash, click.Group("eagle3-patch"), list(args))
    return code, capsys.readouterr().err


def _logged_path(err: str) -> Path:
    return Path(err.split("The traceback is in ", 1)[1].split(": report the bug", 1)[0])


def test_an_internal_error_writes_its_traceback_to_the_user_cache_and_prints_the_path(
        private_cache, capsys):
    code, err = _run(capsys, "status", "--api-key", "s3cret")

    assert code == EXIT_INTERNAL
    assert "internal error: RuntimeError" in err and "Traceback" not in err
    log = _logged_path(err)
    assert log.parent == private_cache / "eagle3-patch" / "logs"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in _crash" in text
    assert "eagle3-patch status --api-key ***" in text
    assert "hunter2" not in text and "s3cret" not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_two_internal_errors_keep_two_logs(private_cache, capsys):
    first, second = _logged_path(_run(capsys, "apply")[1]), _logged_path(_run(capsys, "apply")[1])
    assert first != second and first.parent == second.parent == private_cache / "eagle3-patch" / "logs"
    assert first.exists() and second.exists()


@pytest.mark.parametrize("cache", ["shared", "not-a-folder"])
def test_an_unusable_cache_puts_the_log_in_a_private_temp_file(tmp_path, monkeypatch, capsys, cache):
    root = tmp_path / "cache"
    if cache == "shared":  # a cache root others may write: the trust rule refuses it
        root.mkdir()
        root.chmod(0o777)
    else:
        root.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    code, err = _run(capsys, "check")
    log = _logged_path(err)
    try:
        assert code == EXIT_INTERNAL
        assert log.parent == Path(tempfile.gettempdir()) and log.name.endswith(".log")
        assert "Traceback" in log.read_text() and stat.S_IMODE(log.stat().st_mode) == 0o600
        assert not (root / "eagle3-patch").exists()
    finally:
        log.unlink()


def test_the_debug_variable_still_raises_instead(monkeypatch, private_cache):
    monkeypatch.setenv("EAGLE3_PATCH_DEBUG", "1")
    with pytest.raises(RuntimeError):
        errorreport.run_reported(_crash, click.Group("eagle3-patch"), ["status"])
    assert not (private_cache / "eagle3-patch" / "logs").exists()
