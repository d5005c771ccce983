"""The model files an analysis reads: read once, up front, parsed only on use."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from eagle3_patch.site.filebytes import sha256
from eagle3_patch.site.reading import broken_link, read_model_file, unreadable

if TYPE_CHECKING:
    from eagle3_patch.patch.analysis import SourceFile


def _is_there(path: str) -> bool:
    """Whether anything is at ``path``: a model file's place that is taken by a folder, a FIFO
    or a link to /dev/zero counts, and is refused when read (``read_model_file``, deciding on
    the opened descriptor), not passed over as absent ("no qwen3_5.py" would send the user the
    wrong way); so is a link that leads to no file (dangling, or a loop), refused here. Unlike
    ``os.path.exists``, a folder this user may not search raises (PermissionError) instead of
    hiding the file."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EBADF):
            raise
        if os.path.islink(path):
            raise broken_link(path) from None
        return False
    return True


class Sources(Mapping):
    """Model files by name: all read up front, each parsed and hashed on first use.

    An already-patched file resolves every hook in its own classes, so the
    80 KB qwen3_vl.py it would otherwise inherit from is never parsed. The
    bytes are read once, so a memo keyed on them (``cache/analysismemo.py``) describes
    exactly what the analysis saw. A file whose bytes equal those in
    ``earlier`` (the same folder read a moment ago) reuses its parse and hash.
    """

    def __init__(self, folder: str, names: Iterable[str], earlier: Sources | None = None) -> None:
        self.folder = folder
        try:
            self.paths = {name: os.path.join(folder, name) for name in sorted(names)
                          if _is_there(os.path.join(folder, name))}
        except OSError as exc:
            raise unreadable(folder, exc, "a+rx") from None
        self.data = {name: read_model_file(path) for name, path in self.paths.items()}
        self._parsed: dict[str, SourceFile] = {}
        self._digests: dict[str, str] = {}
        if earlier is not None:
            self._parsed = {name: parsed for name, parsed in earlier._parsed.items()
                            if self.data.get(name) == parsed.data
                            and self.paths[name] == parsed.path}
            self._digests = {name: digest for name, digest in earlier._digests.items()
                             if self.data.get(name) == earlier.data[name]}

    @classmethod
    def of(cls, folder: str, data: Mapping[str, bytes]) -> Sources:
        """Model files given as bytes (name -> bytes), as if read from ``folder``: no disk."""
        files = cls.__new__(cls)
        files.folder = folder
        files.paths = {name: os.path.join(folder, name) for name in sorted(data)}
        files.data = {name: data[name] for name in files.paths}
        files._parsed, files._digests = {}, {}
        return files

    def written(self, new: Mapping[str, bytes]) -> Sources:
        """These files after ``new`` (name -> bytes) was written over some of them (or beside
        them): what the disk holds after a commit, without reading it; the others keep their
        parse and hash."""
        files = Sources.of(self.folder, {**self.data, **new})
        files._parsed = {name: parsed for name, parsed in self._parsed.items() if name not in new}
        files._digests = {name: digest for name, digest in self._digests.items() if name not in new}
        return files

    def sha256(self, name: str) -> str:
        """The hex SHA-256 of ``name``'s bytes, hashed on first use: the memo's key, the
        hand-off's and status's backup report all ask for it."""
        if name not in self._digests:
            self._digests[name] = sha256(self.data[name])
        return self._digests[name]

    def __getitem__(self, name: str) -> SourceFile:
        if name not in self._parsed:
            from eagle3_patch.patch.analysis import parse_source  # ast parsing: a memo miss only

            self._parsed[name] = parse_source(name, self.paths[name], self.data[name])
        return self._parsed[name]

    def __iter__(self):
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)
