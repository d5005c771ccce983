"""What eagle3-patch and the SGLang processes it starts share, written once, in the standard library.

``run`` and ``serve --in-memory`` hand the patched sources to every Python process
COMMAND starts, through the environment. Those processes run the bootstrap
(``inmemory/bootstrap/sitecustomize.py``), often in an interpreter that cannot
import eagle3-patch (another venv's Python), so the bootstrap loads this file by
its path; ``usercache``, ``inmemory/payload`` and ``errors`` import it. Here live:

- the environment variables' names;
- the exit code of a process that stops rather than run SGLang without capture;
- the payload's format and its size limits, which the parent checks before it
  hands over a memoised payload exactly as the children check it before serving;
- the user cache's trust rule (the children memoise their compiled code there).

Every Python process under ``run`` loads this file at start-up, an older one than
eagle3-patch runs on included (a helper script's): its annotations stay unevaluated,
and it imports what the interpreter has already loaded (``os``, ``stat``), the rest
only when a payload is made or read.
"""

from __future__ import annotations

import os
import stat

PAYLOAD_VAR = "EAGLE3_PATCH_INMEMORY"
NO_CACHE_VAR = "EAGLE3_PATCH_NO_CACHE"
# A process `run` started stops with this code when the file it would serve is not the one the parent
# validated, or the payload is damaged: SGLang's model registry turns an ImportError into a log line and a
# fallback class. Distinct from every code of the CLI (errors.py, README "Exit codes").
EXIT_STALE = 12

# Linux's MAX_ARG_STRLEN (32 pages) bounds one "NAME=value" string passed to exec.
MAX_VARIABLE_BYTES = 131072
# Every process SGLang starts copies the whole payload within exec's total for argv and
# environment (ARG_MAX: 2 MiB under the usual 8 MiB stack limit): half of it.
MAX_PAYLOAD_BYTES = 1 << 20
# A payload longer than one variable continues in PAYLOAD_VAR_1, _2, ...: MAX_PAYLOAD_BYTES needs 9.
MAX_PIECES = 16
# What a payload may inflate to: JSON-escaped latin-1 of a few model files (~0.1-0.8 MB).
MAX_DOCUMENT_BYTES = 32 << 20
MODULE_FIELDS = ("name", "path", "sha256", "data")

TOOL_FOLDER = "eagle3-patch"
# The children's cache: the code they compiled from a payload. A compiled 115 KB qwen3_5.py is
# ~200 KB; anything far larger is not ours.
BYTECODE = "bytecode"
MAX_BYTECODE_BYTES = 16 << 20
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted as an entry does not hang us (it is no regular file either).
_ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


# --- the payload ---------------------------------------------------------------------------

class DamagedPayload(ValueError):
    """The environment holds a payload eagle3-patch did not write whole, or one over its limits."""


def encode(tool_version: str, bytecode_key: str | None, modules: list[tuple[str, str, str, str]]) -> str:
    """The payload: "<name>,<name>;" then the base64 of the gzipped JSON document.

    ``modules`` are (name, path, sha256, data) with the patched bytes as latin-1 text
    (JSON carries no bytes). The names come first so that start-up, paid by every
    Python process, only splits a string; the sources are decoded when a listed
    module is imported.
    """
    # The bootstrap loads this module in every process SGLang starts and never encodes.
    import base64
    import gzip
    import json

    document = {"tool_version": tool_version, "bytecode_key": bytecode_key,
                "modules": [dict(zip(MODULE_FIELDS, module, strict=True)) for module in modules]}
    raw = json.dumps(document, separators=(",", ":")).encode("utf-8")
    # mtime=0: the same sources give the same bytes, so dry runs compare equal.
    return ",".join(module[0] for module in modules) + ";" + \
        base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")


def decode(encoded: str) -> tuple[str | None, list[tuple[str, str, str, bytes]]]:
    """The bytecode key and the (name, path, sha256, patched bytes) ``encode`` put in ``encoded``.

    Anything else raises, whatever the exception (deep nesting raises RecursionError):
    the parent treats that as a damaged memo, the children as a damaged variable.
    Bounded on every side: a hand-made decompression bomb is refused, not inflated.
    """
    # Only when a listed module is imported: most processes SGLang starts never decode.
    import base64
    import json
    import zlib

    names, separator, sources = encoded.partition(";")
    if not separator:
        raise DamagedPayload("no module names")
    if len(encoded) > MAX_PAYLOAD_BYTES:
        raise DamagedPayload(f"{len(encoded)} bytes, over the limit of {MAX_PAYLOAD_BYTES}")
    inflate = zlib.decompressobj(wbits=31)  # gzip
    raw = inflate.decompress(base64.b64decode(sources, validate=True), MAX_DOCUMENT_BYTES)
    if len(raw) == MAX_DOCUMENT_BYTES and not inflate.eof:
        raise DamagedPayload(f"it inflates past the limit of {MAX_DOCUMENT_BYTES} bytes")
    if inflate.unused_data or not inflate.eof:
        raise DamagedPayload("its compressed stream is cut short or runs on")
    document = json.loads(raw)
    key, modules = document["bytecode_key"], document["modules"]
    if not (isinstance(document["tool_version"], str) and (key is None or isinstance(key, str))
            and isinstance(modules, list) and modules):
        raise DamagedPayload("tool_version, bytecode_key or modules of the wrong type")
    carried = [_module(entry) for entry in modules]
    if names != ",".join(module[0] for module in carried):
        raise DamagedPayload("the names before ';' are not the modules carried")
    return key, carried


def _module(entry: dict) -> tuple[str, str, str, bytes]:
    fields = [entry[field] for field in MODULE_FIELDS]
    if not all(isinstance(field, str) for field in fields):
        raise DamagedPayload(f"a module's name, path, sha256 and data must be strings, not {fields!r:.100}")
    name, path, sha256, data = fields
    return name, path, sha256, data.encode("latin-1")


def variables(encoded: str) -> dict[str, str]:
    """``encoded`` in variables of at most MAX_VARIABLE_BYTES each ("NAME=value" and its NUL): past
    one, the first reads "<names>;<count>;<first piece>" and the rest follow in PAYLOAD_VAR_1, _2..."""
    if len(PAYLOAD_VAR) + 1 + len(encoded) + 1 <= MAX_VARIABLE_BYTES:
        return {PAYLOAD_VAR: encoded}
    names, _, data = encoded.partition(";")
    room = MAX_VARIABLE_BYTES - len(f"{PAYLOAD_VAR}_99=") - 1
    first = MAX_VARIABLE_BYTES - len(f"{PAYLOAD_VAR}={names};99;") - 1
    pieces = [data[:first], *(data[at:at + room] for at in range(first, len(data), room))]
    return {PAYLOAD_VAR: f"{names};{len(pieces)};{pieces[0]}",
            **{f"{PAYLOAD_VAR}_{index}": piece for index, piece in enumerate(pieces[1:], 1)}}


def joined(environ) -> str | None:
    """The payload ``variables`` put in ``environ``, whole again; None where there is none.
    DamagedPayload where its pieces do not add up (what they carry is checked by ``decode``)."""
    value = environ.get(PAYLOAD_VAR)
    if not value:
        return None
    names, separator, encoded = value.partition(";")
    if not separator:
        raise DamagedPayload("no module names")
    count, separator, first = encoded.partition(";")
    if not separator:  # base64 has no ";": one variable holds it all
        return value
    if not (count.isascii() and count.isdigit() and 1 < int(count) <= MAX_PIECES):
        raise DamagedPayload(f"a count of {count[:20]!r} pieces")
    rest = [environ.get(f"{PAYLOAD_VAR}_{index}") for index in range(1, int(count))]
    missing = [f"{PAYLOAD_VAR}_{index}" for index, piece in enumerate(rest, 1) if not piece]
    if missing:
        raise DamagedPayload(f"it continues in {int(count) - 1} more, but {missing[0]} is missing or empty")
    return f"{names};{first}{''.join(rest)}"


def is_payload_variable(name: str) -> bool:
    index = name[len(PAYLOAD_VAR) + 1:] if name.startswith(f"{PAYLOAD_VAR}_") else ""
    return name == PAYLOAD_VAR or (index.isascii() and index.isdigit())


# --- the user cache's trust rule -----------------------------------------------------------

def cache_disabled() -> bool:
    """Whether ``EAGLE3_PATCH_NO_CACHE`` turns every cache off."""
    return os.environ.get(NO_CACHE_VAR, "") not in ("", "0")


def cache_root() -> str | None:
    """``$XDG_CACHE_HOME`` or ``~/.cache``; None where neither is an absolute path."""
    root = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(root):  # the XDG spec says to ignore a relative value
        return root
    # Without HOME, the passwd entry (expanduser; "~" unchanged when there is none). A relative
    # HOME (a container user without a passwd entry) would put the cache in whatever folder the
    # command runs in, and an empty one is no home either (expanduser would make it "/").
    home = os.environ["HOME"] if "HOME" in os.environ else os.path.expanduser("~")
    return os.path.join(home, ".cache") if os.path.isabs(home) else None


def open_folder(cache: str, create: bool) -> int | None:
    """A descriptor of ``<root>/eagle3-patch/<cache>``, each step checked; made if ``create``.
    None where the rule does not hold (or the folder cannot be had): no cache."""
    root = cache_root()
    if root is None:
        return None
    fd = -1
    try:
        if create:
            os.makedirs(root, mode=0o700, exist_ok=True)
        fd = _trusted(os.open(root, _FOLDER_FLAGS))
        for name in (TOOL_FOLDER, cache):
            if create:
                # Only below a root that passed: nothing of ours in someone else's cache.
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            parent, fd = fd, -1
            try:
                fd = _trusted(os.open(name, _FOLDER_FLAGS | os.O_NOFOLLOW, dir_fd=parent))
            finally:
                os.close(parent)
        return fd
    except OSError:
        if fd >= 0:
            os.close(fd)
        return None


def read_entry(cache: str, name: str, limit: int) -> bytes | None:
    """The entry ``name`` of ``cache`` (at most ``limit`` bytes), if the rule holds for it and every
    folder above; None otherwise."""
    folder = open_folder(cache, create=False)
    if folder is None:
        return None
    try:
        fd = os.open(name, _ENTRY_FLAGS, dir_fd=folder)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or not _ours(info) or info.st_size > limit:
                return None
            return _read_at_most(fd, limit)
        finally:
            os.close(fd)
    except OSError:
        return None
    finally:
        os.close(folder)


def write_entry(cache: str, name: str, data: bytes) -> None:
    """Make ``data`` the entry ``name`` of ``cache`` (whole or not at all), where the rule holds."""
    folder = open_folder(cache, create=True)
    if folder is None:
        return
    # Not ".tmp": that names site/install.py's temp files beside SGLang's, which it reports as debris.
    partial = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.partial"
    try:
        create_private(folder, partial, data)
        # No fsync: an entry torn by a crash fails to parse, which is a miss.
        # Tensor-parallel workers may race here: each replaces the entry whole.
        os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        try:
            os.unlink(partial, dir_fd=folder)
        except OSError:
            pass
    finally:
        os.close(folder)


def create_private(folder: int, name: str, data: bytes) -> None:
    """A new file ``name`` in ``folder`` (never an existing one, never through a link), mode
    0600, holding ``data``; OSError when it cannot be made or written whole."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
    try:
        view = memoryview(data)
        while view:  # a short write (disk full) is retried, so it raises
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _ours(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _trusted(fd: int) -> int:
    """``fd``, if the folder it opened passes the rule; else it is closed and PermissionError raised."""
    if _ours(os.fstat(fd)):
        return fd
    os.close(fd)
    raise PermissionError(f"{fd} is not this user's, or others may write it")


def _read_at_most(fd: int, limit: int) -> bytes | None:
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None  # grew past the limit since fstat
