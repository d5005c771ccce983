"""Find the EAGLE-3 drafter the user named on disk: a folder, or a variant of a local repo folder.

A variant of a Hub repo is left to ``serve.hub`` (validated before download).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from eagle3_patch.errors import BadInput
from eagle3_patch.serve.checkpoint import is_folder, is_present

DEFAULT_DRAFTER_REPO = "Ex0bit/Qwen3.6-27B-PRISM-EAGLE3"
DRAFTER_VARIANTS = ("full", "compressed")


def local_drafter(drafter: str, repo: str = DEFAULT_DRAFTER_REPO) -> Path | None:
    """The drafter folder when it is on disk; None when it is a variant to fetch from the Hub."""
    # os.path's expanduser leaves a "~" it cannot expand as it is (no such user, or no HOME and a
    # UID without a passwd entry, as containers run); pathlib's raised RuntimeError.
    folder = Path(os.path.expanduser(drafter))
    if is_present(folder / "config.json"):
        return folder.resolve()
    if drafter in DRAFTER_VARIANTS:
        repo_folder = Path(os.path.expanduser(repo))
        if is_folder(repo_folder):
            found = repo_folder / drafter
            if not is_present(found / "config.json"):
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
    if is_folder(folder):
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


def download_command(repo_id: str, variant: str, hub_version: str) -> str:
    """The CLI line that fetches one variant, in the spelling of the installed huggingface_hub."""
    return hub_download_command(hub_version, repo_id, "--include", f"{variant}/*")


def hub_download_command(hub_version: str, *args: str) -> str:
    """``hf download ARGS`` (``huggingface-cli download`` before huggingface_hub 0.34)."""
    from packaging.version import InvalidVersion, Version  # only a Hub download is spelt: not a local serve

    try:
        has_hf = Version(hub_version) >= Version("0.34")
    except InvalidVersion:
        has_hf = True
    cli = ["hf", "download"] if has_hf else ["huggingface-cli", "download"]
    return shlex.join([*cli, *args])
