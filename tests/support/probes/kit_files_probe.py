"""Read a capture kit's files (benchmarks/gpu/build_models.py --kit capture-*) the way SGLang and
transformers read them, without running the models: the check for the 27B shape, too large to run
on a CPU.

Run by the python of the real-SGLang venv (``realenv.py``), never imported by pytest.

    python kit_files_probe.py KIT_DIR SUMMARY_JSON

SUMMARY_JSON is what build_models.py printed; it says which layers each drafter was built for.

Reports, as one JSON object on stdout:
- what SGLang 0.5.12's own config, tokenizer and processor loaders make of the target folder, and
  its config loader of each drafter folder;
- the target's tensors as the safetensors headers name them, beside what transformers'
  ``Qwen3_5ForConditionalGeneration`` names for the folder's config.json (built on the meta
  device, no memory), and the index's weight map;
- whether every non-zero block the construction (capture_weights.py) defines reads back exactly
  through ``safetensors.safe_open``, and whether the rows after each block, and per file one
  tensor the construction leaves at zero, read as zeros.

torch, transformers, safetensors and SGLang (and capture_weights.py, which imports torch) are
imported inside functions: after ``main`` has pointed fd 1 away from the report (they print, some
of it from C) and set ``SGLANG_USE_CPU_ENGINE`` (SGLang decides its platform when first imported).
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from pathlib import Path

# The support package is two folders up: tests/, or its copy in an unprivileged user's folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from support.paths import REPO  # noqa: E402
from support.probereport import stdout_for_report, write_report  # noqa: E402

KIT = REPO / "benchmarks" / "gpu"


def headers(folder: str) -> dict[str, dict]:
    """Every tensor's header entry, with the file holding it."""
    tensors = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            with open(os.path.join(folder, name), "rb") as handle:
                header = json.loads(handle.read(struct.unpack("<Q", handle.read(8))[0]))
            header.pop("__metadata__", None)
            tensors.update({tensor: {**entry, "file": name} for tensor, entry in header.items()})
    return tensors


def transformers_plan(folder: str) -> dict[str, list]:
    import torch
    from transformers import AutoConfig, Qwen3_5ForConditionalGeneration

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = Qwen3_5ForConditionalGeneration(config).to(torch.bfloat16)
    return {name: [str(tensor.dtype), list(tensor.shape)] for name, tensor in model.state_dict().items()}


def read_back(folder: str, expected: dict, tensors: dict) -> dict:
    """Each expected block against the file's leading rows and the next rows against zeros; per
    file, its smallest tensor the construction leaves at zero (whole, or its first 1024 rows)."""
    import torch
    from safetensors import safe_open

    exact, zero_after, zero_whole = {}, {}, {}
    files = sorted({entry["file"] for entry in tensors.values()})
    for filename in files:
        names = [name for name, entry in tensors.items() if entry["file"] == filename]
        with safe_open(os.path.join(folder, filename), "pt") as handle:
            for name in sorted(set(names) & set(expected)):
                block = expected[name]
                exact[name] = torch.equal(handle.get_slice(name)[: block.shape[0]], block)
                after = handle.get_slice(name)[block.shape[0]: block.shape[0] + 64]
                zero_after[name] = bool((after == 0).all()) if after.numel() else None
            holes = [name for name in names if name not in expected]
            if holes:
                smallest = min(holes, key=lambda name: (math.prod(tensors[name]["shape"]), name))
                # Up to 1024 rows: the last shard holds only lm_head, 2.5 GB of holes.
                zero_whole[filename] = [smallest, bool((handle.get_slice(smallest)[:1024] == 0).all())]
    return {"exact": exact, "zero_after": zero_after, "zero_whole": zero_whole}


def main() -> int:
    kit = sys.argv[1]
    with open(sys.argv[2], encoding="utf-8") as handle:
        built_for = json.load(handle)["construction"]["built_for"]
    os.environ["SGLANG_USE_CPU_ENGINE"] = "1"  # before SGLang's first import
    report_fd = stdout_for_report()

    import sglang  # noqa: F401  (registers SGLang's own config classes)
    from sglang.srt.utils.hf_transformers_utils import get_config, get_processor, get_tokenizer

    sys.path.insert(0, str(KIT))
    from capture_weights import drafter_rows, target_rows

    target_dir = os.path.join(kit, "target")
    config = get_config(target_dir, trust_remote_code=True)
    text = config.text_config
    tokenizer = get_tokenizer(target_dir, trust_remote_code=True)
    tokens = len(tokenizer)
    sample = "Explain why the sky is blue."
    tensors = headers(target_dir)
    expected = target_rows(text.hidden_size, text.num_hidden_layers, text.intermediate_size, text.vocab_size,
                           tokens, text.rms_norm_eps)
    index_path = os.path.join(target_dir, "model.safetensors.index.json")
    index = json.load(open(index_path))["weight_map"] if os.path.exists(index_path) else None
    report = {
        "target": {
            "config": type(config).__name__,
            "layers_block_type": text.layers_block_type,
            "hidden_size": text.hidden_size,
            "vocab_size": text.vocab_size,
            "round_trip": tokenizer.decode(tokenizer.encode(sample)) == sample,
            "tokens": tokens,
            "processor": type(get_processor(target_dir, trust_remote_code=True)).__name__,
            "headers": {name: [entry["dtype"], entry["shape"]] for name, entry in tensors.items()},
            "transformers": transformers_plan(target_dir),
            "index_matches_files": None if index is None else index == {n: e["file"] for n, e in tensors.items()},
            "read_back": read_back(target_dir, expected, tensors),
        },
        "drafters": {},
    }
    for name in sorted(os.listdir(kit)):
        if not name.startswith("drafter-"):
            continue
        folder = os.path.join(kit, name)
        drafter = get_config(folder, trust_remote_code=True)
        rows = drafter_rows(drafter.hidden_size, drafter.vocab_size, drafter.draft_vocab_size, built_for[name],
                            text.num_hidden_layers)
        drafter_tensors = headers(folder)
        report["drafters"][name] = {
            "architectures": drafter.architectures,
            "draft_vocab_size": drafter.draft_vocab_size,
            "aux_layer_ids": drafter.eagle_config["eagle_aux_hidden_state_layer_ids"],
            "headers": {n: [entry["dtype"], entry["shape"]] for n, entry in drafter_tensors.items()},
            "read_back": read_back(folder, rows, drafter_tensors),
        }
    write_report(report_fd, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
