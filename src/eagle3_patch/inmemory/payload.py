"""The patched sources as one environment variable, and the PYTHONPATH that reads it. Pure.

The channel must work on a read-only root filesystem with no writable cache
and in an interpreter without eagle3-patch: an environment variable does, and
every ``spawn`` child inherits it. gzip + base64 keeps 0.5.21's 115 KB
qwen3_5.py at ~27 KB, well under Linux's 128 KiB limit for one variable.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from eagle3_patch.errors import ValidationFailed

ENV_VAR = "EAGLE3_PATCH_INMEMORY"
BOOTSTRAP_DIR = Path(__file__).resolve().with_name("bootstrap")
# Linux's MAX_ARG_STRLEN (32 pages) bounds one "NAME=value" string passed to exec.
MAX_VARIABLE_BYTES = 131072


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


def encode(patches: list[ModulePatch], tool_version: str) -> str:
    document = {"tool_version": tool_version, "modules": [asdict(p) for p in patches]}
    import base64  # with gzip: only a hand-off that carries sources needs them
    import gzip

    raw = json.dumps(document, separators=(",", ":")).encode("utf-8")
    # mtime=0: the same sources give the same bytes, so dry runs compare equal.
    # Names first: every Python process reads them at start-up, the sources only on import.
    encoded = ",".join(p.name for p in patches) + ";" + \
        base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")
    if len(ENV_VAR) + 1 + len(encoded) + 1 > MAX_VARIABLE_BYTES:
        raise ValidationFailed(
            f"The patched sources do not fit in one environment variable "
            f"({len(encoded)} bytes compressed, the limit is {MAX_VARIABLE_BYTES}).",
            "Nothing was written and nothing was started.",
            "Patch the installation instead, as its owner: eagle3-patch apply",
        )
    return encoded


def redacted(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a log line: the payload's size instead of 30 KB of base64."""
    return {k: f"<{len(v)} bytes>" if k == ENV_VAR else v for k, v in env.items()}


def child_env(encoded: str | None, environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """The variables to add: the payload, and our bootstrap first on PYTHONPATH (the user's after it).

    ``None`` hands over no payload. Either way a payload inherited from an
    outer ``run`` is replaced (a run inside a run, or after ``apply`` inside
    one): its children would check files this invocation no longer serves.
    """
    if encoded is None:
        return {ENV_VAR: ""} if environ.get(ENV_VAR) else {}
    given = environ.get("PYTHONPATH")
    # Kept verbatim (an empty entry means the working directory); only a copy
    # of ours, from a run inside a run, is dropped.
    theirs = [entry for entry in (given.split(os.pathsep) if given else [])
              if entry != str(BOOTSTRAP_DIR)]
    return {ENV_VAR: encoded, "PYTHONPATH": os.pathsep.join([str(BOOTSTRAP_DIR), *theirs])}
