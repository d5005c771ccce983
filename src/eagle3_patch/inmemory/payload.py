"""The patched sources as environment variables, and the PYTHONPATH that reads them. Pure.

The channel must work on a read-only root filesystem with no writable cache
and in an interpreter without eagle3-patch: an environment variable does, and
every ``spawn`` child inherits it. gzip + base64 keeps 0.5.21's 115 KB
qwen3_5.py at ~27 KB, well under Linux's 128 KiB limit for one variable; a
longer payload continues in further variables. The format and its limits are
``sharedrules``', which the children's bootstrap loads too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from eagle3_patch import sharedrules
from eagle3_patch.errors import UnsupportedRelease

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "bootstrap")


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
    encoded = sharedrules.encode(tool_version, bytecode_key, [(p.name, p.path, p.sha256, p.data) for p in patches])
    if len(encoded) > sharedrules.MAX_PAYLOAD_BYTES:
        raise UnsupportedRelease(
            f"The patched model files are too large to hand over in memory: {len(encoded)} "
            f"bytes compressed, the limit is {sharedrules.MAX_PAYLOAD_BYTES}.",
            "run and serve --in-memory pass them to every process SGLang starts in environment "
            "variables, which the kernel copies within a fixed total. Nothing was written and "
            "nothing was started.",
            "Patch the installation on disk instead, as its owner: eagle3-patch apply "
            "(then serve without --in-memory, or run the command directly)",
        )
    return encoded


def decode(encoded: str) -> list[ModulePatch]:
    """The patches ``encode`` put in ``encoded``, checked as the children check them
    (``sharedrules.decode``), so what passes here does not stop them; raises for anything else."""
    _, modules = sharedrules.decode(encoded)
    return [ModulePatch(name, path, sha256, data.decode("latin-1")) for name, path, sha256, data in modules]


def redacted(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a log line: the payload's size instead of 30 KB of base64."""
    return {k: f"<{len(v)} bytes>" if sharedrules.is_payload_variable(k) and v else v for k, v in env.items()}


def child_env(encoded: str | None, environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """The variables to add: the payload, and our bootstrap first on PYTHONPATH (the user's after it).

    ``None`` hands over no payload. Either way a payload inherited from an
    outer ``run`` is replaced (a run inside a run, or after ``apply`` inside
    one): its children would check files this invocation no longer serves.
    """
    cancelled = {name: "" for name, value in environ.items() if sharedrules.is_payload_variable(name) and value}
    if encoded is None:
        return cancelled
    given = environ.get("PYTHONPATH")
    # Kept verbatim (an empty entry means the working directory); only a copy
    # of ours, from a run inside a run, is dropped.
    theirs = [entry for entry in (given.split(os.pathsep) if given else [])
              if entry != BOOTSTRAP_DIR]
    return {**cancelled, **sharedrules.variables(encoded),
            "PYTHONPATH": os.pathsep.join([BOOTSTRAP_DIR, *theirs])}
