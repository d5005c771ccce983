"""How the installed SGLang spells the two launch switches that changed across releases.

Decided from the package's source, never by importing it (that pulls CUDA), so
dev builds and forks get what their code actually accepts. The release number is
consulted only when the source says nothing either way.

- Hybrid (GatedDeltaNet) cache strategy: ``--mamba-scheduler-strategy`` up to
  0.5.13; from 0.5.14 the ``ServerArgs`` field ``mamba_radix_cache_strategy``
  generates ``--mamba-radix-cache-strategy`` (the old name stays a deprecated
  alias until 0.5.20 drops it). From 0.5.20 the field lives under
  ``sglang/srt/arg_groups/fields/``.
- ``SGLANG_ENABLE_SPEC_V2``: declared in ``sglang/srt/environ.py`` through
  0.5.13.x (default off before 0.5.11, on from 0.5.11). The validated config
  runs spec V2, and SGLang's own error for spec + radix cache on hybrid models
  says to set it to 1, so it is set wherever it is still declared. From 0.5.14
  the declaration is gone and setting it only logs "has been removed" (later
  releases ignore it), so it is not set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from packaging.version import Version

from eagle3_patch.site.filebytes import read_bytes
from eagle3_patch.text.masking import shown

RADIX_FLAG = "--mamba-radix-cache-strategy"
SCHEDULER_FLAG = "--mamba-scheduler-strategy"
SPEC_V2_ENV = "SGLANG_ENABLE_SPEC_V2"

# First release where each spelling change happened; used only when the source is silent.
_RADIX_SINCE = Version("0.5.14")

# A definition, not a mention in a help string: an annotated dataclass field
# (ServerArgs or an arg_groups/fields class — the CLI flag is generated from it)
# or the first name given to parser.add_argument. Indentation is [ \t]+, not \s+: \s spans
# lines, so each line of a long blank run rescanned the rest of it (quadratic).
_DEFINES = {
    RADIX_FLAG: re.compile(
        r"^[ \t]+mamba_radix_cache_strategy\s*:|add_argument\(\s*[\"']--mamba-radix-cache-strategy[\"']",
        re.MULTILINE,
    ),
    SCHEDULER_FLAG: re.compile(
        r"^[ \t]+mamba_scheduler_strategy\s*:|add_argument\(\s*[\"']--mamba-scheduler-strategy[\"']",
        re.MULTILINE,
    ),
}
_SPEC_V2_DECLARED = re.compile(r"^[ \t]+SGLANG_ENABLE_SPEC_V2[ \t]*[:=][^\n]*", re.MULTILINE)


@dataclass(frozen=True)
class LaunchDialect:
    """What the installed SGLang accepts, with the file that said so (for --dry-run)."""

    strategy_flag: str
    strategy_evidence: str
    spec_v2: bool
    spec_v2_evidence: str

    @property
    def env(self) -> dict[str, str]:
        """The variables the launch adds to the environment (only ours)."""
        return {SPEC_V2_ENV: "1"} if self.spec_v2 else {}


def detect_dialect(package_dir: str, version: Version | None) -> LaunchDialect:
    """Read ``package_dir`` (the ``sglang`` folder) and decide the flag spelling and env."""
    sources = _argument_sources(package_dir)
    flag, flag_evidence = _strategy_flag(sources, version)
    spec_v2, spec_v2_evidence = _spec_v2(package_dir, sources, version)
    return LaunchDialect(flag, flag_evidence, spec_v2, spec_v2_evidence)


def _argument_sources(package_dir: str) -> list[tuple[str, str]]:
    """(path relative to site-packages, text) of every file that can define a CLI flag."""
    srt = os.path.join(package_dir, "srt")
    arg_groups = os.path.join(srt, "arg_groups")
    grouped = [os.path.join(folder, name) for folder, _, names in os.walk(arg_groups)
               for name in names if name.endswith(".py")]
    candidates = [os.path.join(srt, "server_args.py"), *sorted(grouped, key=lambda path: path.split(os.sep))]
    found = []
    for path in candidates:
        try:
            text = read_bytes(path).decode("utf-8", errors="replace")
        except OSError:
            continue
        found.append((_relative(path, package_dir), text))
    return found


def _relative(path: str, package_dir: str) -> str:
    """``path`` as site-packages names it: ``sglang/srt/...``, with forward slashes."""
    return os.path.relpath(path, os.path.dirname(package_dir)).replace(os.sep, "/")


def _strategy_flag(sources: list[tuple[str, str]], version: Version | None) -> tuple[str, str]:
    # The new name first: 0.5.14-0.5.19 define both, and there the old one is a deprecated alias.
    for flag in (RADIX_FLAG, SCHEDULER_FLAG):
        for relpath, text in sources:
            if _DEFINES[flag].search(text):
                return flag, f"{relpath} defines {flag}"
    if version is not None:
        flag = RADIX_FLAG if version.release >= _RADIX_SINCE.release else SCHEDULER_FLAG
        return flag, f"no definition of either flag found in the source; chosen by release {version}"
    return RADIX_FLAG, "no definition of either flag found and the release is unknown; using the current spelling"


def _spec_v2(
    package_dir: str, sources: list[tuple[str, str]], version: Version | None
) -> tuple[bool, str]:
    environ = os.path.join(package_dir, "srt", "environ.py")
    relpath = _relative(environ, package_dir)
    try:
        text = read_bytes(environ).decode("utf-8", errors="replace")
    except OSError:
        text = None
    if text is not None:
        declared = _SPEC_V2_DECLARED.search(text)
        if declared:
            return True, f"{relpath} declares `{shown(declared.group(0).strip())}`"
    for other, source in sources:
        if SPEC_V2_ENV in source and "has been removed" in source:
            return False, f"{relpath} does not declare {SPEC_V2_ENV}; {other} only reports it as removed"
    if text is not None:
        return False, f"{relpath} does not declare {SPEC_V2_ENV}; this SGLang ignores it"
    if version is not None:
        wanted = version.release < _RADIX_SINCE.release
        return wanted, f"{relpath} is missing; decided by release {version}"
    return False, f"{relpath} is missing and the release is unknown; not set"
