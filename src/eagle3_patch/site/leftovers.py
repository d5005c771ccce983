"""Temp files a killed write left beside SGLang's model files: found, and removed under the lock."""

from __future__ import annotations

import contextlib
import os
import re

from eagle3_patch.site.backups import backup_path, meta_path
from eagle3_patch.site.filebytes import sorted_paths
from eagle3_patch.site.writable import real_file

# tempfile.mkstemp(prefix=".<name>.", suffix=".tmp") names: 8 random characters.
# Compiled (by re's own cache) only when a candidate file exists, almost never.
_TEMP_NAME = r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp"


def leftovers(targets: list[str]) -> list[str]:
    """Temp files of ours that a killed write left beside ``targets`` (or their link targets);
    each folder listed once."""
    ours: dict[str, set[str]] = {}  # folder -> the names whose temp files may be there
    for target in map(os.fspath, targets):
        real = real_file(target)
        names = {os.path.basename(p) for p in (target, real, backup_path(target), meta_path(target))}
        for folder in {os.path.dirname(target), os.path.dirname(real)}:
            ours.setdefault(folder, set()).update(names)
    found = []
    for folder, names in ours.items():
        try:
            candidates = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".tmp")]
        except OSError:  # a missing or unreadable folder holds nothing we can remove
            continue
        for name in candidates:
            match = re.fullmatch(_TEMP_NAME, name)
            if match and match.group("name") in names:
                found.append(os.path.join(folder, name))
    return sorted_paths(found)


def remove_leftovers(found: tuple[str, ...]) -> list[str]:
    """Delete ``found`` (``leftovers``, listed before or after the lock was taken): call under
    ``locked``. A temp file is a live write's only while its writer holds the lock, so under it
    every one is debris; one gone since it was listed is passed over."""
    removed = []
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
    return removed
