"""The plumbing kit: tiny Qwen3.5-architecture targets and EAGLE-3 drafters whose greedy outputs
are known, for proving that the patched server drafts, verifies and reports.

The targets are transformers' own ``Qwen3_5ForConditionalGeneration`` scaled down (linear- and
full-attention layers, a vision tower), saved with ``save_pretrained``, so the checkpoint has the
layout real Qwen3.5/3.6 checkpoints have. The drafters are written tensor by tensor in the layout
SGLang's ``LlamaForCausalLMEagle3`` loads (``midlayer.*``, ``fc``, ``norm``, ``lm_head``,
``d2t``/``t2d``), shaped like the card's ``compressed/`` variant: a reduced draft vocabulary with
a ``d2t`` map.

- ``target-const``: random weights except the final norm, whose weight is -1. Qwen3.5's
  RMSNorm multiplies by ``1 + weight`` (transformers' ``Qwen3_5RMSNorm`` and SGLang's
  ``GemmaRMSNorm`` alike), so the last hidden state is exactly zero, every logit is zero, and
  greedy decoding picks token 0 at every step: the output is known in advance.
- ``drafter-agree``: its final norm (plain ``x * weight``) has weight 0, so every draft logit is
  zero and it proposes draft id 0, which ``d2t`` maps to target id 0: the target accepts every
  draft and the accept length must equal ``--speculative-num-draft-tokens``. It ignores its aux
  hidden states, so it cannot tell right layers from wrong ones (the capture kits can).
- ``target-random``: seeded random weights with a widened ``lm_head``, so its greedy tokens vary
  and are rarely near-ties.
- ``drafter-random``: seeded random weights: its proposals are almost never right (tau near 1).

Same seed, same bytes.
"""

from __future__ import annotations

import os

from model_folder import (build_tokenizer, drafter_config, restore_full_attention_interval, sha256_of,
                          target_config, write_json, write_processor_configs)
from shapes import TINY_AUX_LAYER_IDS, TINY_DRAFTER, TINY_TEXT, TINY_VISION

SEED = 20261202


def build_target(out: str, special_ids: dict[str, int], constant: bool) -> None:
    import torch
    from transformers import Qwen3_5ForConditionalGeneration

    os.makedirs(out, exist_ok=True)
    config = target_config(TINY_TEXT, TINY_VISION, special_ids)
    torch.manual_seed(SEED + (1 if constant else 2))
    model = Qwen3_5ForConditionalGeneration(config).to(torch.bfloat16).eval()
    with torch.no_grad():
        if constant:
            model.model.language_model.norm.weight.fill_(-1.0)  # (1 + w) = 0: every logit is 0
        else:
            model.lm_head.weight.mul_(25.0)  # logits spread by several nats: few near-ties
    model.save_pretrained(out, safe_serialization=True)
    restore_full_attention_interval(out, TINY_TEXT["full_attention_interval"])


def build_drafter(out: str, agree: bool) -> None:
    import torch
    from safetensors.torch import save_file

    os.makedirs(out, exist_ok=True)
    hidden, inter, vocab = TINY_DRAFTER["hidden_size"], TINY_DRAFTER["intermediate_size"], TINY_TEXT["vocab_size"]
    heads, kv_heads = TINY_DRAFTER["num_attention_heads"], TINY_DRAFTER["num_key_value_heads"]
    head_dim, draft_vocab = TINY_DRAFTER["head_dim"], TINY_DRAFTER["draft_vocab_size"]
    generator = torch.Generator().manual_seed(SEED + (3 if agree else 4))

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator) * std).to(torch.bfloat16)

    # Draft id i stands for target id 2*i: a real reduced vocabulary maps to a subset of ids,
    # so d2t (target minus draft id) is not all zeros. Draft id 0 is target id 0.
    d2t = torch.arange(draft_vocab, dtype=torch.int64)
    t2d = torch.zeros(vocab, dtype=torch.bool)
    t2d[torch.arange(draft_vocab) * 2] = True
    ones = torch.ones(hidden, dtype=torch.bfloat16)
    tensors = {
        "fc.weight": normal(hidden, hidden * len(TINY_AUX_LAYER_IDS)),
        "midlayer.hidden_norm.weight": ones.clone(),
        "midlayer.input_layernorm.weight": ones.clone(),
        "midlayer.post_attention_layernorm.weight": ones.clone(),
        "midlayer.self_attn.q_proj.weight": normal(heads * head_dim, 2 * hidden),
        "midlayer.self_attn.k_proj.weight": normal(kv_heads * head_dim, 2 * hidden),
        "midlayer.self_attn.v_proj.weight": normal(kv_heads * head_dim, 2 * hidden),
        "midlayer.self_attn.o_proj.weight": normal(hidden, heads * head_dim),
        "midlayer.mlp.gate_proj.weight": normal(inter, hidden),
        "midlayer.mlp.up_proj.weight": normal(inter, hidden),
        "midlayer.mlp.down_proj.weight": normal(hidden, inter),
        # x * weight: 0 makes every draft logit 0, so the drafter proposes draft id 0.
        "norm.weight": torch.zeros(hidden, dtype=torch.bfloat16) if agree else ones.clone(),
        "lm_head.weight": normal(draft_vocab, hidden, std=0.5),
        "d2t": d2t,
        "t2d": t2d,
    }
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(out, "config.json"), drafter_config(TINY_DRAFTER, TINY_TEXT, TINY_AUX_LAYER_IDS))


def build_all(out: str) -> dict[str, dict[str, str]]:
    """Build every model under ``out``; returns each folder's files with their SHA-256."""
    os.makedirs(out, exist_ok=True)
    for name, constant in (("target-const", True), ("target-random", False)):
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        special_ids, _ = build_tokenizer(folder, TINY_TEXT["vocab_size"], TINY_TEXT["max_position_embeddings"])
        write_processor_configs(folder, TINY_VISION)
        build_target(folder, special_ids, constant)
    build_drafter(os.path.join(out, "drafter-agree"), agree=True)
    build_drafter(os.path.join(out, "drafter-random"), agree=False)
    return {name: _digests(os.path.join(out, name)) for name in sorted(os.listdir(out))
            if os.path.isdir(os.path.join(out, name))}


def _digests(folder: str) -> dict[str, str]:
    return {name: sha256_of(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}
