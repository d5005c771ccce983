"""Which SGLang release a folder holds: _version.py, else dist-info, else an honest 'unknown'."""

from __future__ import annotations

import json
import shutil


def _as_source_tree(s):
    """What a git checkout (or editable install) looks like: no dist-info beside the package."""
    for dist_info in s.root.glob("sglang-*.dist-info"):
        shutil.rmtree(dist_info)


def _status(s):
    result = s.invoke("status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_source_tree_version_comes_from_setuptools_scm_version_file(site):
    s = site("0.5.21")
    _as_source_tree(s)
    status = _status(s)
    assert (status["sglang_version"], status["sglang_version_from"]) == ("0.5.21", "_version.py")
    assert "SGLang 0.5.21 at" in s.invoke("status").stdout


def test_source_tree_without_version_file_says_the_fallback_is_not_a_release(site):
    s = site("0.5.21")
    _as_source_tree(s)
    (s.package / "_version.py").unlink()
    status = _status(s)
    assert (status["sglang_version"], status["sglang_version_from"]) == \
        ("0.0.0.dev0", "version.py fallback")
    text = s.invoke("status").stdout
    assert "SGLang 0.0.0.dev0 (version.py's fallback: the real release is unknown) at" in text


def test_version_file_wins_over_dist_info_as_sglang_itself_reports(site):
    # sglang.__version__ comes from _version.py: a newer tree copied over an
    # installed wheel is that newer release, whatever pip recorded.
    s = site("0.5.21")
    (s.package / "_version.py").write_text("__version__ = version = '0.5.12'\n")
    status = _status(s)
    assert (status["sglang_version"], status["sglang_version_from"]) == ("0.5.12", "_version.py")


def test_dist_info_is_used_when_there_is_no_version_file(site):
    s = site("0.5.21")
    (s.package / "_version.py").unlink()
    status = _status(s)
    assert (status["sglang_version"], status["sglang_version_from"]) == ("0.5.21", "dist-info")


def test_a_version_file_with_a_number_past_pythons_digit_limit_is_no_release_and_no_crash(site):
    # packaging reads each part with int(): past 4300 digits that is a ValueError, which revert met
    # naming the release pip reinstalls (exit 70). Such a file says no release: dist-info does.
    s = site("0.5.21")
    (s.package / "_version.py").write_text(f'__version__ = "0.5.{"9" * 5000}"\n')
    assert s.invoke("apply").returncode == 0
    status, reverted = _status(s), s.invoke("revert")
    assert (status["sglang_version"], status["sglang_version_from"]) == ("0.5.21", "dist-info")
    assert reverted.returncode == 0, reverted.stderr
