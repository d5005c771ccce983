"""Synthetic EAGLE-3 drafters, targets and Hub caches, in the real on-disk formats.

Drafters are config.json + model.safetensors written by the ``safetensors``
package, shaped like Ex0bit/Qwen3.6-27B-PRISM-EAGLE3's ``full/`` and
``compressed/`` (hidden 5120, vocab 248320, compressed: draft vocab 32000 with
``d2t``/``t2d``). Only the tensors the checks look at have real shapes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

HUB_REPO = "Ex0bit/Qwen3.6-27B-PRISM-EAGLE3"
HIDDEN = 5120
LAYERS = 64
VOCAB = 248320
DRAFT_VOCAB = 32000


def drafter_config(variant: str = "compressed", **overrides: object) -> dict:
    config: dict = {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": 17408,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "num_hidden_layers": 1,
        "vocab_size": VOCAB,
        "torch_dtype": "bfloat16",
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": [1, 31, 60], "use_aux_hidden_state": True},
    }
    if variant == "compressed":
        config["draft_vocab_size"] = DRAFT_VOCAB
    config.update(overrides)
    return config


def drafter_tensors(variant: str = "compressed") -> dict[str, np.ndarray]:
    tensors = {
        "fc.weight": np.zeros((4, 12), dtype=np.float16),
        "midlayer.input_layernorm.weight": np.ones((4,), dtype=np.float16),
    }
    if variant == "compressed":
        tensors["d2t"] = np.zeros((DRAFT_VOCAB,), dtype=np.int64)
        tensors["t2d"] = np.zeros((VOCAB,), dtype=np.bool_)
    return tensors


def write_drafter(
    folder: Path,
    variant: str = "compressed",
    config: dict | None = None,
    tensors: dict[str, np.ndarray] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or drafter_config(variant), indent=2))
    save_file(drafter_tensors(variant) if tensors is None else tensors, str(folder / "model.safetensors"))
    return folder


def write_target(folder: Path, hidden: int = HIDDEN, layers: int = LAYERS, nested: bool = True) -> Path:
    """A Qwen3.6-27B-shaped config.json (text config nested as in the real one, or flat)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = {"model_type": "qwen3_5_text", "hidden_size": hidden, "num_hidden_layers": layers,
            "vocab_size": VOCAB, "full_attention_interval": 4}
    config = (
        {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
         "text_config": text, "vision_config": {"hidden_size": 1152, "depth": 27}}
        if nested
        else {"architectures": ["Qwen3_5ForCausalLM"], **text}
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def hub_snapshot(hf_home: Path, repo_id: str, commit: str = "0123456789abcdef0123456789abcdef01234567") -> Path:
    """The real Hub cache layout: hub/models--org--name/{refs/main, snapshots/<commit>/}."""
    repo_dir = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def tree_digest(root: Path) -> str:
    """Hash of every path, mode and content under ``root``: proves nothing was written."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(oct(path.stat().st_mode).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_python(code: str, env_overrides: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter: huggingface_hub reads HF_* variables at import."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)
