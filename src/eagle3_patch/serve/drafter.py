"""Find the EAGLE-3 drafter the user named: a folder, or a variant of a local or Hub repo.

``huggingface_hub`` is imported only when a variant has to come from the Hub
(importing it costs about half the hand-off budget). Its progress bar, HF_HOME,
HF_HUB_OFFLINE and HF_TOKEN then behave exactly as in any other Hub tool.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from eagle3_patch.errors import BadInput

DEFAULT_DRAFTER_REPO = "Ex0bit/Qwen3.6-27B-PRISM-EAGLE3"
DRAFTER_VARIANTS = ("full", "compressed")


def resolve_drafter(drafter: str, repo: str = DEFAULT_DRAFTER_REPO) -> Path:
    """The folder holding the drafter's config.json: ``drafter`` itself, or a variant of ``repo``."""
    return local_drafter(drafter, repo) or hub_variant(repo, drafter)


def local_drafter(drafter: str, repo: str = DEFAULT_DRAFTER_REPO) -> Path | None:
    """The drafter folder when it is on disk; None when it is a variant to fetch from the Hub."""
    folder = Path(drafter).expanduser()
    if (folder / "config.json").is_file():
        return folder.resolve()
    if drafter in DRAFTER_VARIANTS:
        repo_folder = Path(repo).expanduser()
        if repo_folder.is_dir():
            found = repo_folder / drafter
            if not (found / "config.json").is_file():
                raise BadInput(
                    f"Drafter variant '{drafter}' not found in the local folder {repo_folder}: "
                    f"{found / 'config.json'} does not exist.",
                    f"--drafter-repo names a folder, so '{drafter}' must be its subfolder "
                    "holding config.json and model.safetensors.",
                    f"Pass the folder itself (--drafter {shlex.quote(str(found))}) once it holds "
                    "the drafter, or drop --drafter-repo to download it from the Hub.",
                )
            return found.resolve()
        return None
    if folder.is_dir():
        raise BadInput(
            f"Drafter folder {folder} has no config.json.",
            "--drafter must name a folder holding config.json and model.safetensors, "
            f"or one of the variants {', '.join(DRAFTER_VARIANTS)}.",
            "Point --drafter at the variant folder itself (e.g. .../compressed), not its parent.",
        )
    raise BadInput(
        f"Drafter '{drafter}' is neither a folder nor a known variant.",
        f"--drafter takes a folder holding config.json, or one of: {', '.join(DRAFTER_VARIANTS)} "
        f"(resolved inside --drafter-repo, default {DEFAULT_DRAFTER_REPO}).",
        "Example: eagle3-patch serve --drafter compressed",
    )


def hub_variant(repo_id: str, variant: str) -> Path:
    """Download (or find in the Hub cache) one variant folder of ``repo_id``; its path."""
    try:
        import huggingface_hub
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:
        raise BadInput(
            f"Cannot download drafter '{variant}' from {repo_id}: huggingface_hub is not installed.",
            "Hub drafters are fetched with huggingface_hub.",
            "pip install huggingface_hub, or pass --drafter a local folder.",
        ) from None
    command = download_command(repo_id, variant, huggingface_hub.__version__)
    offline = bool(huggingface_hub.constants.HF_HUB_OFFLINE)
    try:
        snapshot = Path(snapshot_download(repo_id, allow_patterns=[f"{variant}/*"]))
    except LocalEntryNotFoundError as exc:
        raise _not_cached(repo_id, variant, offline, command, str(exc)) from None
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise BadInput(
            f"Cannot download drafter '{variant}' from {repo_id}: the Hub refused access.",
            str(exc).splitlines()[0],
            "Check the repo id (--drafter-repo), or log in (hf auth login / HF_TOKEN) if it is gated or private.",
        ) from None
    except HfHubHTTPError as exc:
        raise BadInput(
            f"Downloading drafter '{variant}' from {repo_id} failed.",
            str(exc).splitlines()[0],
            f"Retry, or download it yourself and pass the folder: {command}",
        ) from None
    found = snapshot / variant
    if not (found / "config.json").is_file():
        # Offline with the repo cached but not this variant: snapshot_download returns the snapshot anyway.
        raise _not_cached(repo_id, variant, offline, command, f"{found / 'config.json'} is missing")
    return found


def _not_cached(repo_id: str, variant: str, offline: bool, command: str, detail: str) -> BadInput:
    import huggingface_hub.constants

    why = (
        "HF_HUB_OFFLINE is set, so nothing can be downloaded now."
        if offline
        else f"The Hub could not be reached ({detail.splitlines()[0] if detail else 'no detail'})."
    )
    return BadInput(
        f"Drafter '{variant}' of {repo_id} is not in the local Hugging Face cache "
        f"({huggingface_hub.constants.HF_HUB_CACHE}).",
        why,
        f"Download it where the Hub is reachable:\n  {command}\n"
        "or pass --drafter a local folder holding config.json and model.safetensors.",
    )


def download_command(repo_id: str, variant: str, hub_version: str) -> str:
    """The CLI line that fetches one variant, in the spelling of the installed huggingface_hub."""
    from packaging.version import InvalidVersion, Version

    try:
        has_hf = Version(hub_version) >= Version("0.34")
    except InvalidVersion:
        has_hf = True
    cli = ["hf", "download"] if has_hf else ["huggingface-cli", "download"]
    return shlex.join([*cli, repo_id, "--include", f"{variant}/*"])
