"""What is on disk beside a model file: our backup, its record, and pip's RECORD.

Reading only; ``install.py`` does every write. Status reports these facts
without consulting pip's RECORD (``importlib.metadata`` is off the fast path:
benchmarks/README.md); revert, which may delete or restore a backup, asks RECORD whether the backup is
provably the file SGLang shipped.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, NamedTuple

from eagle3_patch import install
from eagle3_patch.hooks import TARGET_FILES
from eagle3_patch.locate import SGLangInstall, dist_infos

if TYPE_CHECKING:
    from packaging.version import Version


class Backup(NamedTuple):
    """Our backup of one model file and its record, as found on disk."""

    target: str
    data: bytes | None          # the backed-up bytes, None unless readable
    state: str                  # "present", "missing" or "unreadable"
    meta: install.BackupMeta | None
    meta_state: str             # "ok", "missing", "corrupt" or "unreadable"

    @property
    def exists(self) -> bool:
        return self.state != "missing" or self.meta_state != "missing"

    @property
    def path(self) -> str:
        return install.backup_path(self.target)

    def matches_meta(self) -> bool:
        return (self.data is not None and self.meta is not None
                and install.sha256(self.data) == self.meta.original_sha256)


def read_backup(target: str) -> Backup:
    try:
        data, state = install.read_bytes(install.backup_path(target)), "present"
    except FileNotFoundError:
        data, state = None, "missing"
    except OSError:
        data, state = None, "unreadable"
    try:
        raw = json.loads(install.read_bytes(install.meta_path(target)))
        meta = install.BackupMeta(**{k: str(raw[k]) for k in install.BackupMeta._fields})
        meta_state = "ok"
    except FileNotFoundError:
        meta, meta_state = None, "missing"
    except OSError:
        meta, meta_state = None, "unreadable"
    except (ValueError, KeyError, TypeError):
        meta, meta_state = None, "corrupt"
    return Backup(target, data, state, meta, meta_state)


def report(backup: Backup, current: bytes, marked: bool, version_text: str) -> dict | None:
    """The backup as status shows it: what is on disk, each part said as such."""
    if not backup.exists:
        return None
    meta = backup.meta
    return {
        "path": backup.path,
        "backup": backup.state,
        "metadata": backup.meta_state,
        "metadata_path": install.meta_path(backup.target),
        # The backed-up bytes are the ones the record describes.
        "intact": backup.matches_meta() if meta and backup.data is not None else None,
        # Recorded under another release than the one installed: it cannot be
        # this release's file (revert confirms with pip's RECORD before deleting).
        "stale": (meta.sglang_version != version_text) if meta else None,
        "modified_since_patch": (marked and install.sha256(current) != meta.patched_sha256)
        if meta else None,
        "tool_version": meta.tool_version if meta else None,
        "sglang_version": meta.sglang_version if meta else None,
    }


def shipped_sha256(sglang: SGLangInstall, path: str) -> str | None:
    """The hex SHA-256 pip recorded for ``path`` when it installed this SGLang.

    None where pip recorded nothing for it (a source tree, an editable install).
    """
    import base64
    from importlib.metadata import Distribution  # only on paths that may write

    site = os.path.dirname(sglang.package_dir)
    relative = os.path.relpath(path, site)
    if relative.startswith(os.pardir + os.sep):
        return None
    for dist_info in _dist_infos(site, sglang.version):
        try:
            for entry in Distribution.at(dist_info).files or ():
                if entry.as_posix() == relative and entry.hash and entry.hash.mode == "sha256":
                    digest = entry.hash.value
                    return base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
        except (OSError, ValueError, TypeError):
            pass  # an unreadable or mangled RECORD proves nothing
    return None


def _dist_infos(site: str, version: Version | None) -> list[str]:
    """SGLang's dist-info folders, the installed release's first."""
    from packaging.version import InvalidVersion, Version  # revert only (fast path)

    def rank(folder: str) -> tuple[bool, str]:
        name = os.path.basename(folder)
        try:
            found = Version(name[len("sglang-"):-len(".dist-info")])
        except InvalidVersion:
            found = None
        return (found != version, name)

    return sorted(dist_infos(site), key=rank)


def after_uninstall(sglang: SGLangInstall) -> list[str]:
    """Our files in a package folder pip has uninstalled: no ``__init__.py``, no model file.

    ``pip uninstall`` removes the files its RECORD lists and the folders that
    become empty; our backups, their records and the lock keep the folders alive.
    A model file still there (patched, perhaps) is not uninstalled: its backup
    is still the way back.
    """
    if os.path.exists(os.path.join(sglang.package_dir, "__init__.py")) or any(
            os.path.lexists(os.path.join(sglang.models_dir, target.name)) for target in TARGET_FILES):
        return []
    found = [os.path.join(folder, name) for folder, _, names in os.walk(sglang.package_dir)
             for name in names if _ours(name) and os.path.isfile(os.path.join(folder, name))]
    return install.sorted_paths(found)


def _ours(name: str) -> bool:
    if name == install.LOCK_NAME or name.endswith((install.BACKUP_SUFFIX, install.META_SUFFIX)):
        return True
    # A temp file of an interrupted atomic write: ".<target>.<random>.tmp".
    return name.startswith(".") and name.endswith(".tmp") and any(
        name[1:].startswith(target.name + ".") for target in TARGET_FILES)
