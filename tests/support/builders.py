"""The values the engine decides from, built by hand: an SGLang installation, our backup of
a file as found, and a snapshot of the whole installation. The one builder of each.

By default every path is under a folder that does not exist, so a decision that looked at
the disk would see nothing of what the value says.
"""

from __future__ import annotations

from collections.abc import Mapping

from eagle3_patch.site.backups import Backup, BackupMeta, no_backup
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.snapshot import Snapshot, target_paths
from eagle3_patch.site.sources import Sources

PYTHON = "/nonexistent/bin/python"
PACKAGE_DIR = "/nonexistent/site-packages/sglang"


def install(package_dir: str = PACKAGE_DIR, release: str | None = "0.5.21", python: str = PYTHON,
            **fields: str) -> SGLangInstall:
    """An SGLang package at ``package_dir`` run by ``python``; ``fields``: the rest of
    SGLangInstall's (``version_from``, ``selector``)."""
    return SGLangInstall(python, package_dir, release, **fields)


def backup(target: str, data: bytes | None = None, meta: BackupMeta | None = None, *,
           state: str | None = None, meta_state: str | None = None) -> Backup:
    """Our backup of ``target`` as found: present where ``data`` is given, its record "ok" where
    ``meta`` is; ``state`` and ``meta_state`` name any other finding ("corrupt", "unreadable")."""
    return Backup(target, data, state or ("present" if data is not None else "missing"),
                  meta, meta_state or ("ok" if meta is not None else "missing"))


def snapshot(files: Mapping[str, bytes] | None = None, backups: Mapping[str, Backup] | None = None,
             sglang: SGLangInstall | None = None, **facts) -> Snapshot:
    """``sglang`` (default: ``install()``) as read at one moment: its model files by name, a
    backup for each target path (none where ``backups`` gives none), and any other fact a
    Snapshot records (``recorded``, ``missing``, ``leftovers``, ``after_uninstall``)."""
    sglang = sglang or install()
    found = {path: no_backup(path) for path in target_paths(sglang)}
    found.update(backups or {})
    return Snapshot(sglang, Sources.of(sglang.models_dir, files or {}), found, **facts)
