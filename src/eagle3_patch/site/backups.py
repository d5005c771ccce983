"""What is on disk beside a model file: our backup and its record, and where a backup comes from.

The only place backups are read; ``install.py`` does every write. Status reports
these facts as found; revert, which may delete or restore a backup, also asks pip's
RECORD (``piprecord``) whether the backup is provably the file SGLang shipped.
"""

from __future__ import annotations

import errno
import json
import os
from typing import NamedTuple

from eagle3_patch.site.filebytes import NotAFile, read_bytes, sha256, sorted_paths
from eagle3_patch.patch.hooks import TARGET_FILES
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.lock import LOCK_NAME

BACKUP_SUFFIX = ".eagle3-bak"
META_SUFFIX = ".eagle3-bak.json"
_MAX_META_FIELD = 200


class BackupMeta(NamedTuple):
    """What we need to tell an intact patch from an edited file or an upgrade."""

    original_sha256: str
    patched_sha256: str
    tool_version: str
    sglang_version: str


def backup_path(target: str | os.PathLike) -> str:
    return os.fspath(target) + BACKUP_SUFFIX


def meta_path(target: str | os.PathLike) -> str:
    return os.fspath(target) + META_SUFFIX


class Backup(NamedTuple):
    """Our backup of one model file and its record, as found on disk."""

    target: str
    data: bytes | None          # the backed-up bytes, None unless readable
    state: str                  # "present", "missing", "unreadable" or "symlink"
    meta: BackupMeta | None
    meta_state: str             # "ok", "missing", "corrupt", "unreadable" or "symlink"

    @property
    def exists(self) -> bool:
        return self.state != "missing" or self.meta_state != "missing"

    @property
    def path(self) -> str:
        return backup_path(self.target)

    def matches_meta(self) -> bool:
        return (self.data is not None and self.meta is not None
                and sha256(self.data) == self.meta.original_sha256)

    def written(self, data: bytes | None, meta: BackupMeta | None) -> Backup:
        """This backup once a commit wrote ``data`` as the backup and ``meta`` as its record
        (None: that one left as it was)."""
        found = self if data is None else self._replace(data=data, state="present")
        return found if meta is None else found._replace(meta=meta, meta_state="ok")


def no_backup(target: str) -> Backup:
    """No backup of ``target`` and no record: as found, or once dropped."""
    return Backup(target, None, "missing", None, "missing")


def parse_meta(data: bytes) -> BackupMeta:
    """A backup record's bytes as ``BackupMeta``; ValueError for anything else, whatever is wrong."""
    try:
        raw = json.loads(data)
        meta = BackupMeta(**{k: str(raw[k]) for k in BackupMeta._fields})
    except (KeyError, TypeError, RecursionError) as exc:  # RecursionError: nested past Python's limit
        raise ValueError(f"not a backup record: {type(exc).__name__}") from None
    # status and revert quote its versions; what we write is hashes and version numbers, so a
    # field of escape sequences or megabytes was written by someone else.
    if not all(len(value) <= _MAX_META_FIELD and value.isprintable() for value in meta):
        raise ValueError("not a backup record: a field is not short printable text")
    return meta


def read_backup(target: str) -> Backup:
    """Our backup of ``target`` and its record as found. Never read through a symbolic link
    (we write none): a link there is "symlink", whatever it names."""
    # A path through something that is no folder (a models "folder" that is a file) holds nothing.
    try:
        data, state = read_bytes(backup_path(target), follow=False), "present"
    except (FileNotFoundError, NotADirectoryError):
        data, state = None, "missing"
    except OSError as exc:
        data, state = None, _unread(exc)
    try:
        meta, meta_state = parse_meta(read_bytes(meta_path(target), follow=False)), "ok"
    except (FileNotFoundError, NotADirectoryError):
        meta, meta_state = None, "missing"
    except OSError as exc:
        meta, meta_state = None, _unread(exc)
    except ValueError:
        meta, meta_state = None, "corrupt"
    return Backup(target, data, state, meta, meta_state)


def _unread(exc: OSError) -> str:
    return "symlink" if isinstance(exc, NotAFile) and exc.errno == errno.ELOOP else "unreadable"


def described(state: str) -> str:
    """A backup's or record's state in words: "symlink" says what it is."""
    return "a symbolic link (eagle3-patch writes none)" if state == "symlink" else state


class Provenance(NamedTuple):
    """Where one file's backup comes from, worked out once: what revert decides by.

    ``recorded`` is the SHA-256 pip recorded for the file (None where it recorded
    none); the rest follows from it, the backup and the installed release.
    """

    backup: Backup
    recorded: str | None
    version: str            # the installed release
    shipped: str | None     # the SHA-256 of the file SGLang shipped, as far as anything says
    belongs: bool | None    # can the backup be this release's file? None: nothing can tell
    not_restorable: str     # why the backup is not provably the shipped file; "" when it is

    @property
    def reference(self) -> bytes | None:
        """The backup's bytes, when they can be this release's file (after an upgrade they are not)."""
        return self.backup.data if self.belongs is not False else None


def provenance(backup: Backup, recorded: str | None, version: str) -> Provenance:
    """``Provenance`` of ``backup``, given pip's recorded SHA-256 for its file and the release."""
    digest = sha256(backup.data) if backup.data is not None else None
    meta = backup.meta
    shipped = recorded or (meta.original_sha256 if meta else digest)
    if recorded and digest is not None:
        belongs = digest == recorded
    else:
        belongs = meta.sglang_version == version if meta else None
    if digest is None:
        why = f"the backup is {described(backup.state)}"
    elif recorded:
        why = "" if digest == recorded else (
            f"its SHA-256 is not the one pip recorded for SGLang {version} "
            f"(it belongs to another release, or was changed)")
    elif not backup.matches_meta():
        why = (f"pip recorded no hash for this file and the backup's record is "
               f"{described(backup.meta_state) if meta is None else 'for other bytes'}")
    elif meta.sglang_version != version:
        why = (f"pip recorded no hash for this file and the backup was made from SGLang "
               f"{meta.sglang_version}, not the installed {version}")
    else:
        why = ""
    return Provenance(backup, recorded, version, shipped, belongs, why)


class BackupReport(NamedTuple):
    """Our backup of one file as status shows it: what is on disk, each part said as such.

    The flags are None where there is nothing to judge them by (no record, no readable backup).
    """

    path: str
    state: str                  # the backup file: "present", "missing", "unreadable" or "symlink"
    meta_path: str
    meta_state: str             # its record: "ok", "missing", "corrupt", "unreadable" or "symlink"
    intact: bool | None         # the backed-up bytes are the ones the record describes
    # Recorded under another release than the one installed: it cannot be this release's
    # file (revert confirms with pip's RECORD before deleting).
    stale: bool | None
    modified_since_patch: bool | None
    tool_version: str | None
    sglang_version: str | None

    def to_json(self) -> dict:
        """The ``backup`` object of ``status --json``; its keys are what scripts read."""
        return {
            "path": self.path,
            "backup": self.state,
            "metadata": self.meta_state,
            "metadata_path": self.meta_path,
            "intact": self.intact,
            "stale": self.stale,
            "modified_since_patch": self.modified_since_patch,
            "tool_version": self.tool_version,
            "sglang_version": self.sglang_version,
        }


def report(backup: Backup, current: str, marked: bool, version_text: str) -> BackupReport | None:
    """``backup`` as status shows it beside the file now (``current``: its hex SHA-256); None
    where there is none."""
    if not backup.exists:
        return None
    meta = backup.meta
    if meta is None:
        return BackupReport(backup.path, backup.state, meta_path(backup.target), backup.meta_state,
                            None, None, None, None, None)
    return BackupReport(
        backup.path, backup.state, meta_path(backup.target), backup.meta_state,
        intact=backup.matches_meta() if backup.data is not None else None,
        stale=meta.sglang_version != version_text,
        modified_since_patch=marked and current != meta.patched_sha256,
        tool_version=meta.tool_version, sglang_version=meta.sglang_version)


def after_uninstall(sglang: SGLangInstall) -> list[str]:
    """Our files in a package folder pip has uninstalled: no ``__init__.py``, no model file.

    ``pip uninstall`` removes the files its RECORD lists and the folders that
    become empty; our backups, their records and the lock keep the folders alive.
    A model file still there (patched, perhaps) is not uninstalled: its backup
    is still the way back. Nor is a folder without ``srt/models``, where every file of ours is
    written: a folder named sglang that Python takes for a namespace package (the root of an SGLang
    checkout in the working folder) was walked whole, and revert deleted the backups of the
    checkout's own installation in ``python/sglang/srt/models``.
    """
    if not os.path.isdir(sglang.models_dir) or os.path.exists(os.path.join(sglang.package_dir, "__init__.py")) \
            or any(os.path.lexists(os.path.join(sglang.models_dir, target.name)) for target in TARGET_FILES):
        return []
    found = [os.path.join(folder, name) for folder, _, names in os.walk(sglang.package_dir)
             for name in names if _ours(name) and os.path.isfile(os.path.join(folder, name))]
    return sorted_paths(found)


def _ours(name: str) -> bool:
    if name == LOCK_NAME or name.endswith((BACKUP_SUFFIX, META_SUFFIX)):
        return True
    # A temp file of an interrupted atomic write: ".<target>.<random>.tmp".
    return name.startswith(".") and name.endswith(".tmp") and any(
        name[1:].startswith(target.name + ".") for target in TARGET_FILES)
