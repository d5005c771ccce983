"""The patched sources as environment variables, and the PYTHONPATH that reads them. Pure.

The channel must work on a read-only root filesystem with no writable cache
and in an interpreter without eagle3-patch: an environment variable does, and
every ``spawn`` child inherits it. gzip + base64 keeps 0.5.21's 115 KB
qwen3_5.py at ~27 KB, well under Linux's 128 KiB limit for one variable; a
payload past that limit continues in EAGLE3_PATCH_INMEMORY_1, _2, ... (the
first variable then says how many there are: "<names>;<count>;<first piece>").
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from eagle3_patch.errors import UnsupportedRelease

ENV_VAR = "EAGLE3_PATCH_INMEMORY"
BOOTSTRAP_DIR = Path(__file__).resolve().with_name("bootstrap")
# Linux's MAX_ARG_STRLEN (32 pages) bounds one "NAME=value" string passed to exec.
MAX_VARIABLE_BYTES = 131072
# Every process SGLang starts copies the whole payload within exec's total for
# argv and environment (ARG_MAX: 2 MiB under the usual 8 MiB stack limit): half of it.
MAX_PAYLOAD_BYTES = 1 << 20
# What a payload may inflate to: JSON-escaped latin-1 of a few model files (~0.1-0.8 MB).
_MAX_DOCUMENT_BYTES = 32 << 20
_MODULE_FIELDS = ("name", "path", "sha256", "data")


@dataclass(frozen=True)
class ModulePatch:
    """Serve module ``name`` from ``data``, if the file at ``path`` still hashes to ``sha256``.

    ``data`` is the patched file's bytes as latin-1 text (JSON carries no bytes;
    latin-1 maps each byte to one character), so the child compiles exactly what
    apply would write, BOM and coding cookie included.
    """

    name: str
    path: str
    sha256: str
    data: str


def encode(patches: list[ModulePatch], tool_version: str, bytecode_key: str | None = None) -> str:
    """The variable's value; ``bytecode_key`` (``memo.bytecode_key``) lets the children
    memoise what they compile, None forbids it."""
    document = {"tool_version": tool_version, "bytecode_key": bytecode_key,
                "modules": [asdict(p) for p in patches]}
    import base64  # with gzip: only a hand-off that carries sources needs them
    import gzip

    raw = json.dumps(document, separators=(",", ":")).encode("utf-8")
    # mtime=0: the same sources give the same bytes, so dry runs compare equal.
    # Names first: every Python process reads them at start-up, the sources only on import
    # (benchmarks/README.md).
    encoded = ",".join(p.name for p in patches) + ";" + \
        base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")
    if len(encoded) > MAX_PAYLOAD_BYTES:
        raise UnsupportedRelease(
            f"The patched model files are too large to hand over in memory: {len(encoded)} "
            f"bytes compressed, the limit is {MAX_PAYLOAD_BYTES}.",
            "run and serve --in-memory pass them to every process SGLang starts in environment "
            "variables, which the kernel copies within a fixed total. Nothing was written and "
            "nothing was started.",
            "Patch the installation on disk instead, as its owner: eagle3-patch apply "
            "(then serve without --in-memory, or run the command directly)",
        )
    return encoded


def decode(encoded: str) -> list[ModulePatch]:
    """The patches ``encode`` put in ``encoded``; ValueError, TypeError or KeyError for anything
    else, checked as the children check it (bootstrap/sitecustomize.py), so what passes here
    does not stop them."""
    import base64
    import zlib

    names, separator, data = encoded.partition(";")
    if len(encoded) > MAX_PAYLOAD_BYTES or not separator:
        raise ValueError("not a payload of this size and shape")
    inflate = zlib.decompressobj(wbits=31)  # gzip; bounded, so a hand-made bomb is refused, not inflated
    raw = inflate.decompress(base64.b64decode(data, validate=True), _MAX_DOCUMENT_BYTES)
    if inflate.unconsumed_tail or not inflate.eof:
        raise ValueError("a payload that inflates past its limit, or is cut short")
    document = json.loads(raw)
    modules, key = document["modules"], document["bytecode_key"]
    if not (isinstance(document["tool_version"], str) and (key is None or isinstance(key, str))
            and isinstance(modules, list) and modules):
        raise TypeError("tool_version, bytecode_key and modules of the wrong types")
    patches = [ModulePatch(*(_text(module[field]) for field in _MODULE_FIELDS)) for module in modules]
    if names != ",".join(patch.name for patch in patches):
        raise ValueError("the names before ';' are not the modules carried")
    return patches


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value


def _variables(encoded: str) -> dict[str, str]:
    """``encoded`` in variables of at most MAX_VARIABLE_BYTES each ("NAME=value" and its NUL)."""
    if len(ENV_VAR) + 1 + len(encoded) + 1 <= MAX_VARIABLE_BYTES:
        return {ENV_VAR: encoded}
    names, _, data = encoded.partition(";")
    room = MAX_VARIABLE_BYTES - len(f"{ENV_VAR}_99=") - 1
    first = MAX_VARIABLE_BYTES - len(f"{ENV_VAR}={names};99;") - 1
    pieces = [data[:first], *(data[at:at + room] for at in range(first, len(data), room))]
    return {ENV_VAR: f"{names};{len(pieces)};{pieces[0]}",
            **{f"{ENV_VAR}_{index}": piece for index, piece in enumerate(pieces[1:], 1)}}


def _is_payload(name: str) -> bool:
    index = name[len(ENV_VAR) + 1:] if name.startswith(f"{ENV_VAR}_") else ""
    return name == ENV_VAR or (index.isascii() and index.isdigit())


def redacted(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a log line: the payload's size instead of 30 KB of base64."""
    return {k: f"<{len(v)} bytes>" if _is_payload(k) and v else v for k, v in env.items()}


def child_env(encoded: str | None, environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """The variables to add: the payload, and our bootstrap first on PYTHONPATH (the user's after it).

    ``None`` hands over no payload. Either way a payload inherited from an
    outer ``run`` is replaced (a run inside a run, or after ``apply`` inside
    one): its children would check files this invocation no longer serves.
    """
    cancelled = {name: "" for name, value in environ.items() if _is_payload(name) and value}
    if encoded is None:
        return cancelled
    given = environ.get("PYTHONPATH")
    # Kept verbatim (an empty entry means the working directory); only a copy
    # of ours, from a run inside a run, is dropped.
    theirs = [entry for entry in (given.split(os.pathsep) if given else [])
              if entry != str(BOOTSTRAP_DIR)]
    return {**cancelled, **_variables(encoded),
            "PYTHONPATH": os.pathsep.join([str(BOOTSTRAP_DIR), *theirs])}
