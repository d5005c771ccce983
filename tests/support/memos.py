"""A planted analysis memo: shows, in the CLI's own output, whether a run used the memo or
analysed the files afresh."""

from __future__ import annotations

import json
from pathlib import Path

PLANTED = "FROM-MEMO"


def memo_path(cache: Path) -> Path:
    found = sorted((cache / "eagle3-patch" / "analysis").glob("*.json"))
    assert len(found) == 1, found
    return found[0]


def plant(cache: Path, change=None) -> dict:
    """Rewrite the memo with PLANTED in its analysis (and ``change`` applied); returns it."""
    path = memo_path(cache)
    memo = json.loads(path.read_text())
    analysis = memo["analysis"]
    if analysis["files"]:
        analysis["files"][0]["hooks"][0]["detail"] = PLANTED
    else:
        analysis["reason"] = PLANTED
    if change:
        change(memo)
    path.write_text(json.dumps(memo))
    return memo


def fresh(s, *args) -> str:
    result = s.invoke(*args, "--no-cache")
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def status_json(s) -> tuple[str, dict]:
    result = s.invoke("status", "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout, json.loads(result.stdout)


def patched(site, version="0.5.21"):
    s = site(version)
    assert s.invoke("apply").returncode == 0
    return s


def trusted(s, cache) -> None:
    """A first status writes the memo; with PLANTED in it, the next status shows it."""
    s.invoke("status")
    plant(cache)
    assert PLANTED in s.invoke("status").stdout
