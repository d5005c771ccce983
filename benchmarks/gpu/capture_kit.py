"""The capture-correctness kits: a target and three drafters that all configure the same
``eagle_aux_hidden_state_layer_ids`` but were built for different layers (capture_weights.py
says how). On a server whose capture is right:

- ``drafter-right`` (built for the configured ids) has every draft accepted: tau equals
  ``--speculative-num-draft-tokens``;
- ``drafter-later`` (built for ids + 1: what a capture one layer too late delivers) and
  ``drafter-earlier`` (built for ids - 1: what arrives when the decoder flags layer k instead of
  k + 1, the "+1" forgotten) have every draft rejected: tau 1.

A wrong capture turns this around. The target's tensors are named, shaped and sharded as
transformers' ``save_pretrained`` would write them for the same config (read off the real class
built on the meta device, no memory); every weight the construction leaves at zero is a hole.
"""

from __future__ import annotations

import dataclasses
import os
import time

from capture_weights import DRAFT_STRIDE, drafter_rows, target_rows
from model_folder import (build_tokenizer, drafter_config, restore_full_attention_interval, sha256_of,
                          target_config, write_json, write_processor_configs)
from shapes import (QWEN36_27B_AUX_LAYER_IDS, QWEN36_27B_DRAFTER, QWEN36_27B_TEXT, QWEN36_27B_VISION,
                    TINY_AUX_LAYER_IDS, TINY_DRAFTER, TINY_TEXT, TINY_VISION)
from sparse_safetensors import write_index, write_sparse

# Each drafter's layers relative to the configured ids.
DRAFTERS = {"drafter-right": 0, "drafter-later": 1, "drafter-earlier": -1}
# Shards of at most 5 GB with their index, as large Hub checkpoints come: SGLang then takes the
# index path it takes for a real one. Its loader reads the files one after another, so the count
# changes no timing. The tiny target fits one file, as save_pretrained writes it.
MAX_SHARD_SIZE = "5GB"


@dataclasses.dataclass(frozen=True)
class KitSpec:
    """One capture kit: the target's ``Qwen3_5Config`` text and vision arguments, the drafters'
    sizes and the aux layer ids they all configure."""

    name: str
    text: dict
    vision: dict
    drafter: dict
    aux_layer_ids: list[int]


CAPTURE_KITS = {
    "capture-tiny": KitSpec("capture-tiny", TINY_TEXT, TINY_VISION, TINY_DRAFTER, TINY_AUX_LAYER_IDS),
    "capture-27b": KitSpec("capture-27b", QWEN36_27B_TEXT, QWEN36_27B_VISION, QWEN36_27B_DRAFTER,
                           QWEN36_27B_AUX_LAYER_IDS),
}


def build_kit(out: str, spec: KitSpec) -> dict:
    """Build ``out/<spec.name>/{target,drafter-right,drafter-later,drafter-earlier}``; returns the
    summary: per file its SHA-256, or for weights its sizes and header/content hashes."""
    import torch
    import transformers

    started = time.monotonic()
    root = os.path.join(out, spec.name)
    records: dict[str, dict[str, dict]] = {}
    tokens = build_target(os.path.join(root, "target"), spec, records.setdefault("target", {}))
    built_for = {}
    for name, shift in DRAFTERS.items():
        built_for[name] = [layer + shift for layer in spec.aux_layer_ids]
        build_drafter(os.path.join(root, name), spec, built_for[name], records.setdefault(name, {}))
    for folder, files in records.items():
        for name in sorted(set(os.listdir(os.path.join(root, folder))) - set(files)):
            files[name] = {"sha256": sha256_of(os.path.join(root, folder, name))}
        records[folder] = dict(sorted(files.items()))
    weights = [record for files in records.values() for record in files.values() if "apparent_bytes" in record]
    return {
        "kit": spec.name,
        "path": root,
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
        "seconds": round(time.monotonic() - started, 2),
        "construction": {
            "aux_layer_ids": spec.aux_layer_ids,
            "built_for": built_for,
            "embedded_token_ids": [0, tokens - 1],
            "draft_to_target": {"0": 0, "1": DRAFT_STRIDE},
        },
        "apparent_bytes": sum(record["apparent_bytes"] for record in weights),
        "allocated_bytes": sum(record["allocated_bytes"] for record in weights),
        "folders": records,
    }


def build_target(folder: str, spec: KitSpec, records: dict) -> int:
    """Write the target folder; returns the tokenizer's vocabulary size (ids 0..n-1 embed)."""
    import torch
    import transformers
    from huggingface_hub import split_torch_state_dict_into_shards
    from transformers import GenerationConfig, Qwen3_5ForConditionalGeneration

    os.makedirs(folder, exist_ok=True)
    text = spec.text
    special_ids, tokens = build_tokenizer(folder, text["vocab_size"], text["max_position_embeddings"])
    write_processor_configs(folder, spec.vision)
    config = target_config(text, spec.vision, special_ids)
    config.dtype = torch.bfloat16
    with torch.device("meta"):
        model = Qwen3_5ForConditionalGeneration(config).to(torch.bfloat16)
    state = model.state_dict()
    config.save_pretrained(folder)
    GenerationConfig.from_model_config(config).save_pretrained(folder)
    restore_full_attention_interval(folder, text["full_attention_interval"])
    rows = target_rows(text["hidden_size"], text["num_hidden_layers"], text["intermediate_size"],
                       text["vocab_size"], tokens, text["rms_norm_eps"])
    missing = sorted(set(rows) - set(state))
    if missing:
        raise RuntimeError(f"transformers {transformers.__version__} names no tensors {missing}")
    shards = split_torch_state_dict_into_shards(state, max_shard_size=MAX_SHARD_SIZE)
    for filename, names in shards.filename_to_tensors.items():
        specs = {name: (state[name].dtype, tuple(state[name].shape)) for name in names}
        records[filename] = write_sparse(os.path.join(folder, filename), specs,
                                         {name: rows[name] for name in names if name in rows})
    if shards.is_sharded:
        write_index(folder, shards.filename_to_tensors, shards.metadata["total_size"])
    return tokens


def build_drafter(folder: str, spec: KitSpec, built_for: list[int], records: dict) -> None:
    os.makedirs(folder, exist_ok=True)
    text, drafter = spec.text, spec.drafter
    rows = drafter_rows(drafter["hidden_size"], text["vocab_size"], drafter["draft_vocab_size"], built_for,
                        text["num_hidden_layers"])
    records["model.safetensors"] = write_sparse(os.path.join(folder, "model.safetensors"),
                                                drafter_specs(spec), rows)
    write_json(os.path.join(folder, "config.json"), drafter_config(drafter, text, spec.aux_layer_ids))


def drafter_specs(spec: KitSpec) -> dict:
    """Names, dtypes and shapes of the tensors SGLang's ``LlamaForCausalLMEagle3`` loads."""
    import torch

    bf16 = torch.bfloat16
    drafter, vocab = spec.drafter, spec.text["vocab_size"]
    hidden, inter = drafter["hidden_size"], drafter["intermediate_size"]
    q_width = drafter["num_attention_heads"] * drafter["head_dim"]
    kv_width = drafter["num_key_value_heads"] * drafter["head_dim"]
    aux_width = spec.text["hidden_size"] * len(spec.aux_layer_ids)
    return {
        "fc.weight": (bf16, (hidden, aux_width)),
        "midlayer.hidden_norm.weight": (bf16, (hidden,)),
        "midlayer.input_layernorm.weight": (bf16, (hidden,)),
        "midlayer.post_attention_layernorm.weight": (bf16, (hidden,)),
        # The first (only) layer's attention reads [embeds, hidden]: twice the hidden size.
        "midlayer.self_attn.q_proj.weight": (bf16, (q_width, 2 * hidden)),
        "midlayer.self_attn.k_proj.weight": (bf16, (kv_width, 2 * hidden)),
        "midlayer.self_attn.v_proj.weight": (bf16, (kv_width, 2 * hidden)),
        "midlayer.self_attn.o_proj.weight": (bf16, (hidden, q_width)),
        "midlayer.mlp.gate_proj.weight": (bf16, (inter, hidden)),
        "midlayer.mlp.up_proj.weight": (bf16, (inter, hidden)),
        "midlayer.mlp.down_proj.weight": (bf16, (hidden, inter)),
        "norm.weight": (bf16, (hidden,)),
        "lm_head.weight": (bf16, (drafter["draft_vocab_size"], hidden)),
        "d2t": (torch.int64, (drafter["draft_vocab_size"],)),
        "t2d": (torch.bool, (vocab,)),
    }
