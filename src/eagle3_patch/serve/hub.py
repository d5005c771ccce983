"""Drafter variants from the Hub, validated before their weights are downloaded.

``<variant>/config.json`` is fetched alone and the weights' header is read with
HTTP range requests (``HfApi.parse_safetensors_file_metadata``; sharded
variants through their index), so a wrong drafter fails in a second instead of
after a multi-hundred-MB download. Cache lookups, revisions, ``.no_exist``
markers, HF_HUB_OFFLINE, HF_TOKEN and the progress bar behave exactly as
huggingface_hub defines them. Imported only when a variant has to come from the
Hub (fast path: benchmarks/README.md).
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import huggingface_hub.constants
from huggingface_hub import HfApi, hf_hub_download, hf_hub_url, snapshot_download, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    SafetensorsParsingError,
)

from eagle3_patch.errors import BadInput
from eagle3_patch.text.jsontext import reason
from eagle3_patch.text.masking import shown
from eagle3_patch.serve.checkpoint import (INDEX_FILE, WEIGHTS_FILE, read_header, read_json,
                                           sharded_tensors)
from eagle3_patch.serve.drafter import download_command
from eagle3_patch.serve.tensorheader import check_header
from eagle3_patch.serve.validate import DrafterReport, TargetText, check_drafter, judge_drafter

# Range reads go through huggingface_hub's HTTP session as is: httpx from 1.0, requests before
# (whose errors are OSErrors).
try:
    import httpx
    _NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, httpx.HTTPError)
except ImportError:
    _NETWORK_ERRORS = (OSError,)


def fetch_hub_drafter(
    repo_id: str, variant: str, target: TargetText | None, skipped_because: str, download: bool = True
) -> DrafterReport:
    """Validate ``variant`` of ``repo_id`` from its config and header, then (if ``download``) fetch it whole."""
    command = download_command(repo_id, variant, huggingface_hub.__version__)
    offline = bool(huggingface_hub.constants.HF_HUB_OFFLINE)
    try:
        config_file = Path(hf_hub_download(repo_id, f"{variant}/config.json"))
        # snapshots/<commit>/<variant>/config.json: everything else is read at that same commit.
        commit = config_file.parent.parent.name
        config = read_json(config_file, "drafter config")
        weights, tensors = _weights_header(repo_id, variant, commit, offline)
        report = judge_drafter(config_file.parent, config_file, config, weights, tensors, target, skipped_because)
        if not download:
            return report
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
    return check_drafter(snapshot / variant, target, skipped_because)


def _weights_header(repo_id: str, variant: str, commit: str, offline: bool) -> tuple[Path | str, dict[str, dict]]:
    """The weights' tensors: from the cache when there, else by range reads from the Hub."""
    def header(filename: str) -> tuple[Path | str, dict[str, dict]] | None:
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
    url = hf_hub_url(repo_id, filename, revision=commit)
    try:
        metadata = HfApi().parse_safetensors_file_metadata(repo_id, filename, revision=commit)
    # The library's parser trusts the header's shape: a list where a dict belongs is a TypeError there.
    except (SafetensorsParsingError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise BadInput(
            f"{url}: safetensors header is malformed.",
            shown(reason(exc)),
            "This is not a usable drafter; check --drafter-repo and the variant.",
        ) from None
    header = {name: {"dtype": info.dtype, "shape": info.shape, "data_offsets": list(info.data_offsets)}
              for name, info in metadata.tensors.items()}
    return url, check_header(url, header)


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
