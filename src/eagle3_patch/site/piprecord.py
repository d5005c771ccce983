"""pip's RECORD: the SHA-256 pip wrote down for each file it installed, the proof that a
backup is the file SGLang shipped.

Read through ``importlib.metadata``, so whatever layout pip and its successors use is
read as pip reads it. Only revert asks (``read_snapshot(records=True)``): status reports
backups without it.
"""

from __future__ import annotations

import base64
import csv  # importlib.metadata reads RECORD with it: its errors are ours to catch
import os
from importlib.metadata import PathDistribution
from pathlib import Path

from packaging.version import InvalidVersion, Version

from eagle3_patch.site.filebytes import read_bytes
from eagle3_patch.site.locate import SGLangInstall, dist_infos


def shipped_sha256(sglang: SGLangInstall, paths: list[str]) -> dict[str, str | None]:
    """The hex SHA-256 pip recorded for each of ``paths`` when it installed this SGLang.

    None for a path pip recorded nothing for (a source tree, an editable install). Each
    RECORD is read once for all of them: it lists every file of SGLang (~600 KB).
    """
    site = os.path.dirname(sglang.package_dir)
    recorded: dict[str, str | None] = dict.fromkeys(paths)
    wanted = {}  # RECORD's name for a path -> the path; one outside the site has no RECORD entry
    for path in paths:
        relative = os.path.relpath(path, site)
        if not relative.startswith(os.pardir + os.sep):
            wanted[relative] = path
    for dist_info in _dist_infos(site, sglang.version):
        if all(recorded[path] is not None for path in wanted.values()):
            break
        try:
            for entry in _bounded_distribution(dist_info).files or ():
                path = wanted.get(entry.as_posix())
                if path and recorded[path] is None and entry.hash and entry.hash.mode == "sha256":
                    digest = entry.hash.value
                    recorded[path] = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
        except (OSError, ValueError, TypeError, csv.Error):
            pass  # an unreadable or mangled RECORD (a field past csv's size limit...) proves nothing
    return recorded


def _bounded_distribution(dist_info: str):
    """importlib.metadata's view of ``dist_info``, reading each file through ``read_bytes``:
    a RECORD that is a FIFO or /dev/zero is refused, not read without end (OSError)."""
    class Bounded(PathDistribution):
        def read_text(self, filename):
            try:
                return read_bytes(os.path.join(dist_info, filename)).decode("utf-8")
            except FileNotFoundError:
                return None  # as importlib.metadata answers for a file that is not there

    return Bounded(Path(dist_info))


def _dist_infos(site: str, version: Version | None) -> list[str]:
    """SGLang's dist-info folders, the installed release's first."""
    def rank(folder: str) -> tuple[bool, str]:
        name = os.path.basename(folder)
        try:
            found = Version(name[len("sglang-"):-len(".dist-info")])
        except InvalidVersion:
            found = None
        return (found != version, name)

    return sorted(dist_infos(site), key=rank)

