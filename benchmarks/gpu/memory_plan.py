"""What a 27B server may hold on this card, and what bounds a decode step: pure arithmetic.

- ``weight_bytes``: the target's tensors by part, read from its safetensors headers.
- ``decode_read_bytes``: the bytes one batch-1 decode step must read from HBM, hence the limit
  ``bandwidth / bytes`` tok/s.
- ``linear_state_bytes``: SGLang 0.5.12's ``mamba_cache_per_req`` for a Qwen3.5 text config.
- ``plan_server``: --mem-fraction-static, --max-running-requests and --max-mamba-cache-size from
  the memory free on the card, with the table below as the reasons.
"""

from __future__ import annotations

import glob
import json
import math
import os
import struct
from dataclasses import asdict, dataclass

GIB = 2**30

# What each 27B server is given (GiB), sized from the memory free on the card when it starts:
#   context   SGLang measures free memory after its CUDA context (and cuBLAS workspace) exist, so it
#             sees this much less than nvidia-smi does on an idle card; the fraction is of what it sees
#   reserve   outside --mem-fraction-static: one 8192-token prefill chunk's activations (SGLang's
#             default chunk on 80-160 GB cards), the CUDA-graph pools up to batch 64, allocator slack
#   draft     EAGLE-3 only, on top of the drafter's measured weights: its KV and its two sets of
#             graphs. The drafter loads after the target has sized its pools, so all of it must fit
#             in what the static fraction leaves out
#   kv        full-attention KV: 64 KiB a token (16 layers x 4 heads x 256 x K,V x bf16); 64 requests
#             of under 200 tokens need 0.8
#   slots     linear-attention states per running request (47 MB per layer-set each, 147 MiB for
#             the 27B: linear_state_bytes). Plain, radix cache off: 1. EAGLE-3 under serve's config:
#             5 in the pool (SGLang caps running requests at pool // 5: 3 for the radix cache plus 2
#             for extra_buffer's ping-pong with the overlap scheduler on) plus 4 verify intermediates
#             (one per draft token, sized by --max-running-requests)
#   levels    running requests are capped at the highest load level, 64
CONTEXT_GIB = 1.0
RESERVE_GIB = 6.0
DRAFT_GIB = 2.0
KV_GIB = 2.0
SLOTS = {"plain": (1, 0), "eagle3": (5, 4)}  # (pool slots, verify intermediates) per running request
MAX_RUNNING = 64

DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "BOOL": 1, "U8": 1, "I8": 1, "F64": 8}
# The parts a batch-1 decode step reads in full: every decoder layer, the final norm and lm_head.
# Not the embedding table (one row per token), not the vision tower (text decode never runs it).
DECODE_READS = ("decoder_layers", "final_norm", "lm_head")


def safetensors_header(path: str) -> dict:
    """The JSON header of one safetensors file: name -> {dtype, shape, data_offsets}."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header


def part_of(name: str) -> str:
    """Which part of a Qwen3.5 checkpoint a tensor belongs to (transformers' names)."""
    if "visual" in name:
        return "vision"
    if "embed_tokens" in name:
        return "embedding"
    if name.startswith("lm_head"):
        return "lm_head"
    if ".layers." in name and "language_model" in name:
        return "decoder_layers"
    if name.endswith("language_model.norm.weight"):
        return "final_norm"
    return "other"  # e.g. a real checkpoint's MTP head, which decode without MTP never reads


def weight_bytes(folder: str) -> dict[str, int]:
    """Bytes per part (see ``part_of``) over every safetensors file in ``folder``."""
    parts: dict[str, int] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        for name, info in safetensors_header(path).items():
            begin, end = info["data_offsets"]
            parts[part_of(name)] = parts.get(part_of(name), 0) + end - begin
    return parts


def decode_read_bytes(parts: dict[str, int]) -> int:
    return sum(parts.get(part, 0) for part in DECODE_READS)


def linear_state_bytes(text_config: dict) -> int:
    """SGLang 0.5.12's ``mamba_cache_per_req`` (configs/mamba_utils.py, TP 1): per linear-attention
    layer a bf16 conv window ((v heads x v dim + 2 x k heads x k dim) x (kernel - 1)) and an SSM
    state (v heads x v dim x k dim) in ``mamba_ssm_dtype`` (float32 unless the config says)."""
    c = text_config
    conv_dim = c["linear_num_value_heads"] * c["linear_value_head_dim"] + 2 * c["linear_num_key_heads"] * c[
        "linear_key_head_dim"]
    conv = conv_dim * (c["linear_conv_kernel_dim"] - 1) * 2
    ssm_bytes = {"float32": 4, "bfloat16": 2, "float16": 2}[c.get("mamba_ssm_dtype") or "float32"]
    ssm = c["linear_num_value_heads"] * c["linear_value_head_dim"] * c["linear_key_head_dim"] * ssm_bytes
    types = c.get("layer_types") or [
        "full_attention" if (i + 1) % c["full_attention_interval"] == 0 else "linear_attention"
        for i in range(c["num_hidden_layers"])]
    return (conv + ssm) * sum(1 for kind in types if kind == "linear_attention")


@dataclass(frozen=True)
class ServerPlan:
    """The memory flags of one 27B server and the figures they came from (GiB)."""

    role: str
    free_gib: float
    weights_gib: float
    state_gib: float  # one linear-attention state
    mem_fraction_static: float
    max_running_requests: int
    max_mamba_cache_size: int

    @property
    def flags(self) -> list[str]:
        return ["--mem-fraction-static", f"{self.mem_fraction_static:.3f}",
                "--max-running-requests", str(self.max_running_requests),
                "--max-mamba-cache-size", str(self.max_mamba_cache_size)]

    def to_json(self) -> dict:
        return {**asdict(self), "flags": self.flags}


class DoesNotFit(Exception):
    """The card cannot hold this server with even one running request."""


def plan_server(role: str, free_gib: float, target_gib: float, drafter_gib: float, state_gib: float) -> ServerPlan:
    """The memory flags for ``role`` ("plain" or "eagle3") with ``free_gib`` free (nvidia-smi, no
    other server up)."""
    pool, intermediates = SLOTS[role]
    outside = RESERVE_GIB + (drafter_gib + DRAFT_GIB if role == "eagle3" else 0.0)
    seen = free_gib - CONTEXT_GIB
    static = seen - outside
    for_states = static - target_gib - KV_GIB
    running = min(MAX_RUNNING, math.floor(for_states / ((pool + intermediates) * state_gib)))
    if running < 1:
        raise DoesNotFit(f"{role}: {free_gib:.1f} GiB free leaves {for_states:.1f} GiB for linear-attention "
                         f"states after {target_gib:.1f} GiB of weights; one request needs "
                         f"{(pool + intermediates) * state_gib:.2f} GiB")
    fraction = math.floor(static / seen * 1000) / 1000  # rounded down: errs on the safe side
    return ServerPlan(role, round(free_gib, 2), round(target_gib + (drafter_gib if role == "eagle3" else 0), 2),
                      round(state_gib, 4), fraction, running, pool * running)


def beside_plain(plain: ServerPlan, free_gib: float, target_gib: float, drafter_gib: float,
                 state_gib: float) -> int:
    """Running requests an EAGLE-3 server could hold beside a plain one sized to its bare needs
    (``plain``'s requests, no more KV than the table's), 0 if none: why the 27B servers run one at
    a time."""
    pool, intermediates = SLOTS["plain"]
    states = (pool + intermediates) * plain.max_running_requests * state_gib
    plain_needs = CONTEXT_GIB + RESERVE_GIB + target_gib + KV_GIB + states
    try:
        return plan_server("eagle3", free_gib - plain_needs, target_gib, drafter_gib, state_gib).max_running_requests
    except DoesNotFit:
        return 0
