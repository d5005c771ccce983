"""Drafter variants from the Hub, validated before their weights are downloaded.

``<variant>/config.json`` is fetched alone and the weights' header is read with
HTTP range requests (through huggingface_hub's session, as its
``parse_safetensors_file_metadata`` reads them, then judged by ``tensorheader`` as a local
header is; sharded variants through their index), so a wrong drafter fails in a second instead of
after a multi-hundred-MB download. Cache lookups, revisions, ``.no_exist``
markers, HF_HUB_OFFLINE, HF_TOKEN and the progress bar behave exactly as
huggingface_hub defines them. Imported only when a variant has to come from the
Hub (fast path: benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants
from huggingface_hub import hf_hub_download, hf_hub_url, snapshot_download, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from eagle3_patch.errors import BadInput
from eagle3_patch.text.jsontext import reason
from eagle3_patch.text.masking import shown
from eagle3_patch.serve.checkpoint import (INDEX_FILE, WEIGHTS_FILE, header_length, read_header, read_json,
                                           sharded_tensors)
from eagle3_patch.serve.drafter import download_command
from eagle3_patch.serve.tensorheader import REDOWNLOAD, check_header, parse_header
from eagle3_patch.serve.validate import DrafterReport, TargetText, check_drafter, judge_drafter

# The first ranged read of a remote header, as huggingface_hub's own reader makes it: nearly
# every header fits, so one request suffices.
_FIRST_READ = 100_000
# huggingface_hub lets its HTTP library's errors through as they come (a dropped connection, a
# malformed response): requests' before 1.0 (OSErrors), httpx's in 1.x, httpx2's from 2.0.
# Its own HfHubHTTPError derives from that library's base error, whichever it is.
_NETWORK_ERRORS = (OSError, *(base for base in HfHubHTTPError.__mro__ if base.__name__ == "HTTPError"))


def fetch_hub_drafter(
    repo_id: str, variant: str, target: TargetText | None, skipped_because: str, download: bool = True
) -> DrafterReport:
    """Validate ``variant`` of ``repo_id`` from its config and header, then (if ``download``) fetch it whole."""
    command = download_command(repo_id, variant, huggingface_hub.__version__)
    offline = bool(huggingface_hub.constants.HF_HUB_OFFLINE)
    try:
        with _library_reading():
            config_file = Path(hf_hub_download(repo_id, f"{variant}/config.json"))
        # snapshots/<commit>/<variant>/config.json: everything else is read at that same commit.
        commit = config_file.parent.parent.name
        config = read_json(config_file, "drafter config")
        weights, tensors = _weights_header(repo_id, variant, commit, offline)
        report = judge_drafter(config_file.parent, config_file, config, weights, tensors, target, skipped_because)
        if not download:
            return report
        with _library_reading():
            snapshot = Path(snapshot_download(repo_id, revision=commit, allow_patterns=[f"{variant}/*"]))
    except HFValidationError as exc:
        raise BadInput(
            f"--drafter-repo '{repo_id}' is neither a local folder nor a valid Hub repo id.",
            shown(str(exc).splitlines()[0]),
            "Pass a folder that exists, or an id like Ex0bit/Qwen3.6-27B-PRISM-EAGLE3.",
        ) from None
    except LocalEntryNotFoundError as exc:
        raise _not_cached(repo_id, variant, offline, command, str(exc)) from None
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise BadInput(
            f"Cannot download drafter '{variant}' from {repo_id}: the Hub refused access.",
            shown(str(exc).splitlines()[0]),
            "Check the repo id (--drafter-repo), or log in (hf auth login / HF_TOKEN) if it is gated or private.",
        ) from None
    except EntryNotFoundError as exc:
        raise BadInput(
            f"Drafter variant '{variant}' is missing or incomplete in {repo_id} on the Hub.",
            shown(str(exc).splitlines()[0]),
            f"An EAGLE-3 variant folder holds config.json and {WEIGHTS_FILE} (or {INDEX_FILE} and shards); "
            "check --drafter and --drafter-repo.",
        ) from None
    except (HfHubHTTPError, *_NETWORK_ERRORS) as exc:
        raise BadInput(
            f"Downloading drafter '{variant}' from {repo_id} failed.",
            shown((str(exc).splitlines() or [type(exc).__name__])[0]),
            f"Retry, or download it yourself and pass the folder: {command}",
        ) from None
    except _Misread as exc:
        raise BadInput(
            f"Downloading drafter '{variant}' from {repo_id} failed: the Hub answered what huggingface_hub "
            "does not read.",
            f"huggingface_hub failed reading it: {shown(str(exc))}.",
            f"Retry; where HF_ENDPOINT names a mirror or a proxy, check what it answers. Or download it yourself "
            f"and pass the folder: {command}",
        ) from None
    return check_drafter(snapshot / variant, target, skipped_because)


def _weights_header(repo_id: str, variant: str, commit: str, offline: bool) -> tuple[Path | str, dict[str, dict]]:
    """The weights' tensors: from the cache when there, else by range reads from the Hub."""
    def header(filename: str) -> tuple[Path | str, dict[str, dict]] | None:
        with _library_reading():
            cached = try_to_load_from_cache(repo_id, filename, revision=commit)
        if isinstance(cached, str):
            return cached, read_header(Path(cached))
        if cached is not None:  # a `.no_exist` marker: the Hub said this file does not exist
            return None
        if offline:
            raise LocalEntryNotFoundError(f"{filename} is not in the cache and HF_HUB_OFFLINE is set")
        return _remote_header(repo_id, filename, commit)

    single = f"{variant}/{WEIGHTS_FILE}"
    try:
        found = header(single)
    except EntryNotFoundError as exc:
        if isinstance(exc, LocalEntryNotFoundError):
            raise
        found = None
    if found is not None:
        return found
    with _library_reading():
        index = Path(hf_hub_download(repo_id, f"{variant}/{INDEX_FILE}", revision=commit))

    def shard(name: str) -> dict[str, dict]:
        got = header(f"{variant}/{name}")
        if got is None:
            raise BadInput(f"{index}: shard {shown(name)} does not exist on the Hub.",
                           "The index names a file the repo does not hold, so the weights cannot be checked.",
                           "Check the drafter repo.")
        return got[1]

    return index, sharded_tensors(index, read_json(index, "sharded weights index"), shard)


def _remote_header(repo_id: str, filename: str, commit: str) -> tuple[str, dict[str, dict]]:
    """The tensors a Hub file's header lists, read by HTTP range requests as huggingface_hub's
    ``parse_safetensors_file_metadata`` reads them (its session, URL, credentials and timeout),
    and judged as a local header is (``tensorheader``). The library's own parser is not used: it
    multiplies out every shape before returning, and a header of a few MB of 4000-digit sizes
    kept it busy for minutes, deaf to Ctrl-C."""
    url = hf_hub_url(repo_id, filename, revision=commit)

    def read(first: int, last: int) -> bytes:
        with _library_reading():
            response = get_session().get(url, headers={**build_hf_headers(), "range": f"bytes={first}-{last}"},
                                         timeout=huggingface_hub.constants.HF_HUB_DOWNLOAD_TIMEOUT)
            hf_raise_for_status(response)
        return response.content[:last - first + 1]  # a server that ignores the range sends it all

    start = read(0, _FIRST_READ)
    length = header_length(url, start[:8], None)
    raw = start[8:8 + length] if len(start) >= 8 + length else read(8, 7 + length)
    if len(raw) < length:
        raise BadInput(f"{url}: safetensors header is truncated.",
                       f"Field `header`: {len(raw)} of the {length} bytes its length gives came.", REDOWNLOAD)
    return url, check_header(url, parse_header(url, raw))


class _Misread(Exception):
    """huggingface_hub failed reading an answer it did not expect; the message says how."""


# huggingface_hub trusts the shape of the Hub's answers: a list where it indexes an object, a
# number past Python's digit limit, JSON nested past the recursion limit or no JSON at all end in
# these, and a mirror or proxy at HF_ENDPOINT can answer anything.
_LIBRARY_SLIPS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)


@contextlib.contextmanager
def _library_reading() -> Iterator[None]:
    """A huggingface_hub call: a builtin error it raises is its misreading of an answer
    (``_Misread``); its own errors (a refused repo, a missing file) keep their types."""
    try:
        yield
    except _LIBRARY_SLIPS as exc:
        if type(exc).__module__.startswith("huggingface_hub"):
            raise
        raise _Misread(reason(exc)) from exc


def _not_cached(repo_id: str, variant: str, offline: bool, command: str, detail: str) -> BadInput:
    why = (
        "HF_HUB_OFFLINE is set, so nothing can be downloaded now."
        if offline
        else f"The Hub could not be reached ({shown(detail.splitlines()[0]) if detail else 'no detail'})."
    )
    return BadInput(
        f"Drafter '{variant}' of {repo_id} is not in the local Hugging Face cache "
        f"({huggingface_hub.constants.HF_HUB_CACHE}).",
        why,
        f"Download it where the Hub is reachable:\n  {command}\n"
        "or pass --drafter a local folder holding config.json and model.safetensors.",
    )
