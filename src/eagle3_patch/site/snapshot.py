"""One read of an installation: the value apply, status and revert decide from.

``read_snapshot`` is the only reader: the model files' bytes (target files and
the files their classes inherit from), our backups and their records, the temp
files a killed write left, our files in a package pip has uninstalled, and,
when asked (``records=True``), the SHA-256 pip's RECORD holds for each target
file (``piprecord``). The decisions (``engine.applyplan``, ``engine.result.result_from``,
``engine.revertplan``) look at nothing else, so they are tested from hand-built
snapshots (``Sources.of``) without a disk. Only revert asks for the RECORD hashes.

A command reads once; one that writes reads once more under the lock, and what it
reports afterwards is that snapshot with its changes (``Snapshot.committed``), not a
third read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from eagle3_patch.site import backups, leftovers
from eagle3_patch.site.backups import Backup
from eagle3_patch.patch.hooks import TARGET_FILES
from eagle3_patch.site.locate import SGLangInstall
from eagle3_patch.site.sources import Sources

if TYPE_CHECKING:  # a type here: status and check never write, so never load the transaction
    from eagle3_patch.site.install import FileChange

# Every target file and every file their classes inherit from.
SOURCE_NAMES = frozenset({t.name for t in TARGET_FILES} | {b for t in TARGET_FILES for b in t.bases_from})


class Snapshot(NamedTuple):
    """An installation as read at one moment."""

    install: SGLangInstall
    files: Sources                      # model files by name, bytes read, parsed on use
    backups: dict[str, Backup]          # per target path, "missing" where there is none
    missing: tuple[str, ...] = ()       # target paths with nothing at all there
    leftovers: tuple[str, ...] = ()     # temp files a killed write left
    after_uninstall: tuple[str, ...] = ()  # our files in a package pip has uninstalled
    # per target path, the SHA-256 pip recorded (None where it recorded none); None: not read
    recorded: dict[str, str | None] | None = None

    @property
    def targets(self) -> list[str]:
        return target_paths(self.install)

    def data(self, path: str) -> bytes | None:
        """The bytes of the model file at ``path``; None where there is no file."""
        name = os.path.basename(path)
        return self.files.data[name] if self.files.paths.get(name) == path else None

    def provenance(self, path: str) -> backups.Provenance:
        """Where the backup of ``path`` comes from (``records=True`` snapshots only)."""
        return backups.provenance(self.backups[path], self.recorded[path], self.install.version_text)

    def committed(self, changes: list[FileChange], dropped: tuple[str, ...] = ()) -> Snapshot:
        """The installation as ``install.commit(changes)`` leaves it, and ``install.drop_backup``
        for each path in ``dropped``: what a command reports after writing, without reading again."""
        kept = dict(self.backups)
        for change in changes:
            kept[change.path] = kept[change.path].written(change.backup, change.meta)
        for path in (*(c.path for c in changes if c.drop_backup), *dropped):
            kept[path] = backups.no_backup(path)
        new = {os.path.basename(c.path): c.new for c in changes}
        return self._replace(files=self.files.written(new), backups=kept,
                             missing=tuple(p for p in self.missing if os.path.basename(p) not in new))


def target_paths(sglang: SGLangInstall) -> list[str]:
    return [os.path.join(sglang.models_dir, t.name) for t in TARGET_FILES]


def read_sources(sglang: SGLangInstall, earlier: Sources | None = None) -> Sources:
    """The model files alone: all a judgement of the state needs (``serve``'s dry run)."""
    return Sources(sglang.models_dir, SOURCE_NAMES, earlier)


def read_snapshot(sglang: SGLangInstall, earlier: Snapshot | None = None,
                  records: bool = False) -> Snapshot:
    """Read the installation; a file whose bytes equal ``earlier``'s keeps its parse.
    ``records``: also what pip's RECORD says each target file's SHA-256 is."""
    files = read_sources(sglang, earlier.files if earlier else None)
    paths = target_paths(sglang)
    recorded = None
    if records:
        # importlib.metadata, packaging and pathlib: only revert asks, status and check never do.
        from eagle3_patch.site.piprecord import shipped_sha256

        recorded = shipped_sha256(sglang, paths)
    return Snapshot(
        sglang, files,
        backups={path: backups.read_backup(path) for path in paths},
        missing=tuple(path for path in paths if not os.path.exists(path)),
        leftovers=tuple(leftovers.leftovers(paths)),
        after_uninstall=tuple(backups.after_uninstall(sglang)),
        recorded=recorded,
    )

