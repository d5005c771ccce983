"""The model files an analysis reads: read once, up front, parsed only on use."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from eagle3_patch.errors import TargetUnreadable

if TYPE_CHECKING:
    from eagle3_patch.analysis import SourceFile


def _unreadable(path: Path, exc: OSError, mode: str) -> TargetUnreadable:
    return TargetUnreadable(
        f"Cannot read {path}: {exc.strerror}.",
        "eagle3-patch reads the model files to tell their state, and this user may not.",
        "Run the command as a user who can read them (e.g. the owner of that site-packages, or "
        f"with sudo), or make them readable: chmod {mode} {shlex.quote(str(path))}",
    )


def read_model_file(path: Path) -> bytes:
    """A model file's bytes; one this user cannot read is a clear error, not a bug."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc, "a+r") from None


class Sources(Mapping):
    """Model files by name: all read up front, each parsed on first use.

    An already-patched file resolves every hook in its own classes, so the
    80 KB qwen3_vl.py it would otherwise inherit from is never parsed. The
    bytes are read once, so a memo keyed on them (``memo.py``) describes
    exactly what the analysis saw. A file whose bytes equal those in
    ``earlier`` (the same folder read a moment ago) reuses its parse.
    """

    def __init__(self, folder: Path, names: Iterable[str], earlier: Sources | None = None) -> None:
        self.folder = folder
        try:
            self.paths = {name: folder / name for name in sorted(names)
                          if (folder / name).is_file()}
        except OSError as exc:
            raise _unreadable(folder, exc, "a+rx") from None
        self.data = {name: read_model_file(path) for name, path in self.paths.items()}
        self._parsed: dict[str, SourceFile] = {}
        if earlier is not None:
            self._parsed = {name: parsed for name, parsed in earlier._parsed.items()
                            if self.data.get(name) == parsed.data
                            and self.paths[name] == parsed.path}

    def __getitem__(self, name: str) -> SourceFile:
        if name not in self._parsed:
            from eagle3_patch.analysis import parse_source  # ast parsing: a memo miss only

            self._parsed[name] = parse_source(name, self.paths[name], self.data[name])
        return self._parsed[name]

    def __iter__(self):
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)
