"""A drafter's files read without torch: JSON configs and safetensors headers, single or sharded.

Everything here is untrusted input: any shape of JSON, any byte count. Every
refusal is ``BadInput`` naming the file and the field, never a crash.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from eagle3_patch.errors import BadInput
from eagle3_patch.site.filebytes import NotAFile, open_regular, read_bytes
from eagle3_patch.text.jsontext import NumberTooLong, loads
from eagle3_patch.text.masking import shown
from eagle3_patch.serve.tensorheader import REDOWNLOAD as _REDOWNLOAD
from eagle3_patch.serve.tensorheader import check_header, malformed, parse_header

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# The safetensors format refuses headers above 100 MB; a drafter's lists a few dozen tensors in a
# few KB (the largest checkpoints' shards, a few MB). Parsing 100 MB of hostile JSON takes Python
# minutes, so a header past this bound is refused as no drafter's, unread.
HEADER_LIMIT = 16 << 20


def read_json(path: Path, role: str) -> dict:
    """``path`` parsed as a JSON object, or BadInput saying why not."""
    try:
        data = loads(read_bytes(str(path)).decode("utf-8"))  # bounded: a FIFO or /dev/zero is refused
    except FileNotFoundError:
        raise BadInput(
            f"{path} not found.",
            f"The {role} is read from this file.",
            "Point the option at the folder that holds config.json.",
        ) from None
    except NotAFile as exc:
        raise BadInput(f"{path} cannot be read.", f"It is {exc.strerror}, not a file of the {role}.",
                       "Put the file itself in its place (a download or copy of it).") from None
    except NumberTooLong as exc:
        raise BadInput(f"{path} is not readable JSON.", f"The {role} is not what it should be: {exc}.",
                       "Re-download the file, or correct that value.") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadInput(
            f"{path} is not readable JSON.",
            f"Reading the {role} failed: {type(exc).__name__}: {exc}.",
            "Re-download the file; a truncated download is the usual cause.",
        ) from None
    if not isinstance(data, dict):
        raise BadInput(f"{path} is not a JSON object.", f"The {role} must be a JSON object.", "Re-download the file.")
    return data


def is_present(path: Path) -> bool:
    """Whether anything stands at ``path`` (a FIFO or a folder too, and a link even if dangling):
    such a config.json is there, and ``read_json`` says what it is instead of "no config.json".
    A path that cannot be looked at is ``BadInput`` (``_looked_at``)."""
    return _looked_at(path, os.lstat) is not None


def is_folder(path: Path) -> bool:
    """Whether ``path`` is a folder (or a link to one); ``BadInput`` as for ``is_present``."""
    info = _looked_at(path, os.stat)
    return info is not None and stat.S_ISDIR(info.st_mode)


def _looked_at(path: Path, look: Callable[[Path], os.stat_result]) -> os.stat_result | None:
    """``look(path)``; None where nothing stands there (or a file stands in the path's way, a link
    loops, or the path holds a NUL, which no file's does). pathlib's own checks raise the rest, which
    a user's path can meet too: a name too long, a folder on the way this user may not search."""
    try:
        return look(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise BadInput(
            f"Cannot look at {path}: {exc.strerror}.",
            "serve checks the model and drafter folders before it launches anything.",
            "Pass a path this user can reach: every folder on the way searchable (chmod a+x), "
            "each name in it at most 255 bytes long.",
        ) from None


def checkpoint_tensors(folder: Path) -> tuple[Path, dict[str, dict]]:
    """(the file to name in messages, tensor name -> header entry) of the weights in ``folder``.

    A single ``model.safetensors``, or shards listed by ``model.safetensors.index.json``.
    """
    single, index = folder / WEIGHTS_FILE, folder / INDEX_FILE
    if single.exists() or not index.is_file():
        return single, read_header(single)
    return index, _sharded(folder, index)


def read_header(path: Path) -> dict[str, dict]:
    """Tensor name -> {dtype, shape, data_offsets}, from the header alone (8-byte LE length + JSON),
    refused where the safetensors library would refuse to open the file (``tensorheader``)."""
    try:
        with open_regular(str(path)) as handle:  # a FIFO would block the open, /dev/zero never end
            size = os.fstat(handle.fileno()).st_size
            length = header_length(str(path), handle.read(8), size)
            raw = handle.read(length)
    except FileNotFoundError:
        raise BadInput(
            f"{path} not found.",
            f"An EAGLE-3 drafter folder holds config.json and {WEIGHTS_FILE} (or {INDEX_FILE} and its shards).",
            "Point --drafter at the complete variant folder.",
        ) from None
    except NotAFile as exc:
        raise BadInput(f"{path} cannot be read.", f"It is {exc.strerror}, not a file of weights.",
                       _REDOWNLOAD) from None
    except OSError as exc:
        raise BadInput(f"{path} cannot be read.", f"{exc.strerror or exc}.", _REDOWNLOAD) from None
    return check_header(str(path), parse_header(str(path), raw), data_size=size - 8 - length)


def header_length(source: str, prefix: bytes, size: int | None) -> int:
    """The length of the header that ``prefix``, a safetensors file's first 8 bytes, gives; refused
    (``BadInput``) where the file of ``size`` bytes (None: not known) cannot hold it, and past
    ``HEADER_LIMIT``."""
    if len(prefix) < 8:
        found = f"a {size}-byte file" if size is not None else f"{len(prefix)} bytes"
        raise BadInput(
            f"{source}: safetensors header is truncated.",
            f"Field `header length` (first 8 bytes): found {found}, expected at least 8 bytes.",
            _REDOWNLOAD,
        )
    length = int.from_bytes(prefix, "little")
    if size is not None and length > size - 8:
        raise BadInput(
            f"{source}: safetensors header is truncated or corrupt.",
            f"Field `header length` (first 8 bytes): found {length}, "
            f"expected at most {size - 8} (the bytes that follow it).",
            _REDOWNLOAD,
        )
    if length > HEADER_LIMIT:
        raise BadInput(
            f"{source}: safetensors header is too large for a drafter's.",
            f"Field `header length` (first 8 bytes): found {length} bytes, expected at most "
            f"{HEADER_LIMIT} (16 MiB): a drafter's header lists a few dozen tensors in a few KB.",
            "Point --drafter at an EAGLE-3 drafter's variant folder (full/ or compressed/).",
        )
    return length


def _sharded(folder: Path, index: Path) -> dict[str, dict]:
    return sharded_tensors(index, read_json(index, "sharded weights index"), lambda shard: read_header(folder / shard))


def sharded_tensors(index: Path | str, data: dict, read_shard: Callable[[str], dict[str, dict]]) -> dict[str, dict]:
    """Every tensor listed by a ``model.safetensors.index.json`` (``data``), each proven to be in its shard's header."""
    weight_map = data.get("weight_map")
    if not (isinstance(weight_map, dict) and weight_map
            and all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items())):
        malformed(str(index), "weight_map", weight_map, "a non-empty object mapping tensor names to shard file names")
    tensors: dict[str, dict] = {}
    for shard in sorted(set(weight_map.values())):
        # A shard is a file beside the index; anything else would read outside the drafter (or the
        # folder itself: an empty name), and a NUL is in no file's name.
        if not shard or "\0" in shard or PurePosixPath(shard).name != shard or shard in (".", ".."):
            malformed(str(index), "weight_map", shard, "shard file names in the same folder (no paths)")
        found = read_shard(shard)
        for name, file in weight_map.items():
            if file == shard and name not in found:
                malformed(str(index), f"weight_map.{shown(name)}", shard, f"a shard whose header lists {shown(name)}")
        tensors.update(found)
    return tensors

