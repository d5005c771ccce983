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

from eagle3_patch.serve.checkpoint import INDEX_FILE
from eagle3_patch.serve.dialect import SPEC_V2_ENV

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


MARKER = "[EAGLE3-PATCH]"
STANDIN = """#!{real}
import json, os, sys
if sys.argv[1:3] == ["-m", "sglang.launch_server"]:
    watched = open(os.environ["STANDIN_WATCH"], encoding="utf-8").read()
    with open(os.environ["STANDIN_RECORD"], "w") as out:
        json.dump({{"argv": sys.argv, "env": dict(os.environ), "pid": os.getpid(),
                    "patched": {marker!r} in watched}}, out)
    sys.exit(int(os.environ.get("STANDIN_EXIT", "0")))
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != SPEC_V2_ENV and not k.startswith("HF_")}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


def serve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eagle3_patch", "serve", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def standin_env(tmp_path: Path, site: Path, package_dir: Path) -> tuple[Path, Path, dict[str, str]]:
    """A stand-in SGLang interpreter and the environment serve runs it in: started as
    `-m sglang.launch_server` it records its argv, environment, PID and whether qwen3_5.py
    already carried the patch, then exits with $STANDIN_EXIT; for anything else (the
    find_spec/metadata queries) it becomes the real Python."""
    standin = tmp_path / "bin" / "python"
    standin.parent.mkdir(exist_ok=True)
    standin.write_text(STANDIN.format(real=sys.executable, marker=MARKER))
    standin.chmod(0o755)
    record = tmp_path / "launch.json"
    env = base_env(PYTHONPATH=str(site), STANDIN_RECORD=str(record),
                   STANDIN_WATCH=str(package_dir / "srt" / "models" / "qwen3_5.py"))
    return standin, record, env


def write_header(path: Path, header: bytes, body: bytes = b"\0" * 64) -> None:
    path.write_bytes(len(header).to_bytes(8, "little") + header + body)


def write_sharded(folder: Path, weight_map: object | None = None) -> Path:
    """The compressed drafter split in two shards, with the index transformers writes."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(drafter_config()))
    tensors = drafter_tensors()
    first = {k: v for k, v in tensors.items() if k in ("d2t", "fc.weight")}
    second = {k: v for k, v in tensors.items() if k not in first}
    names = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    save_file(first, str(folder / names[0]))
    save_file(second, str(folder / names[1]))
    if weight_map is None:
        weight_map = {**{k: names[0] for k in first}, **{k: names[1] for k in second}}
    (folder / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": 1}, "weight_map": weight_map}))
    return folder
