"""Build the GPU proof's models locally: tiny Qwen3.5-architecture targets and EAGLE-3 drafters.

Nothing comes from the Hub. The target is transformers' own ``Qwen3_5ForConditionalGeneration``
scaled down (linear-attention and full-attention layers, a vision tower), saved with
``save_pretrained``, so its checkpoint has the layout real Qwen3.5/3.6 checkpoints have. The
drafters are written tensor by tensor in the layout SGLang's ``LlamaForCausalLMEagle3`` loads
(``midlayer.*``, ``fc``, ``norm``, ``lm_head``, ``d2t``/``t2d``), shaped like the card's
``compressed/`` variant: a reduced draft vocabulary with a ``d2t`` map.

Two targets, two drafters:
- ``target-const``: random weights except the final norm, whose weight is -1. Qwen3.5's
  RMSNorm multiplies by ``1 + weight`` (transformers' ``Qwen3_5RMSNorm`` and SGLang's
  ``GemmaRMSNorm`` alike), so the last hidden state is exactly zero, every logit is zero, and
  greedy decoding picks token 0 at every step: the output is known in advance.
- ``drafter-agree``: its final norm (plain ``x * weight``) has weight 0, so every draft logit is
  zero and it proposes draft id 0, which ``d2t`` maps to target id 0: the target accepts every
  draft and the accept length must equal ``--speculative-num-draft-tokens``.
- ``target-random``: seeded random weights with a widened ``lm_head``, so its greedy tokens vary
  and are rarely near-ties.
- ``drafter-random``: seeded random weights: its proposals are almost never right (tau near 1).

Run with any Python that has torch, transformers (with ``Qwen3_5ForConditionalGeneration``),
safetensors and tokenizers: ``python build_models.py OUT_DIR``. Same seed, same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

# The text model: the structure of Qwen3.6-27B scaled down (64 layers of which every fourth is
# full attention -> 8 layers, two full-attention ones; hidden 5120 -> 256).
TEXT = {
    "vocab_size": 1024,
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 8,
    "full_attention_interval": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128,
    "linear_value_head_dim": 128,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "attn_output_gate": True,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 10000000.0,
        "partial_rotary_factor": 0.25,
        "mrope_section": [3, 3, 2],
        "mrope_interleaved": True,
    },
}
VISION = {
    "depth": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 2,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 256,
    "num_position_embeddings": 64,
}
# The drafter's aux layers: "output of layer k" for k in these ids, spread over the 8 layers as
# the card's [1, 31, 60] spread over 64.
AUX_LAYER_IDS = [1, 3, 5]
DRAFT_VOCAB = 512

# Special tokens go after the learned ones, so token 0 is an ordinary token (the constant
# target's only output) and never an end-of-sequence.
SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]
CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 4,
    "Speculative decoding drafts several tokens with a small model and verifies them at once.",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Explain why the sky is blue in two sentences, then list three colours of the rainbow.",
    "SELECT name, count(*) FROM users GROUP BY name ORDER BY 2 DESC LIMIT 10;",
    "Once upon a time, in a land of hybrid attention layers, a drafter learned to guess.",
    "0123456789 + - * / = ( ) [ ] { } < > ! ? , . ; : ' \" # $ % & @ ^ _ ` ~ |",
]
SEED = 20261202


def build_tokenizer(out: str) -> dict[str, int]:
    """A byte-level BPE tokenizer trained on CORPUS; returns the special tokens' ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer.add_special_tokens(SPECIALS)
    tokenizer.save(os.path.join(out, "tokenizer.json"))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIALS}
    if max(ids.values()) >= TEXT["vocab_size"] or tokenizer.get_vocab_size() > TEXT["vocab_size"]:
        raise SystemExit("the tokenizer outgrew the model's vocabulary")
    _write_json(os.path.join(out, "tokenizer_config.json"), {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": TEXT["max_position_embeddings"],
        "image_token": "<|image_pad|>",
        "video_token": "<|video_pad|>",
        "vision_start_token": "<|vision_start|>",
        "vision_end_token": "<|vision_end|>",
        "chat_template": (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        ),
    })
    return ids


def write_processor_configs(out: str) -> None:
    """SGLang loads a Qwen3.5 folder's image and video processors even for text-only requests."""
    common = {
        "processor_class": "Qwen3VLProcessor",
        "patch_size": VISION["patch_size"],
        "temporal_patch_size": VISION["temporal_patch_size"],
        "merge_size": VISION["spatial_merge_size"],
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    }
    _write_json(os.path.join(out, "preprocessor_config.json"),
                {"image_processor_type": "Qwen2VLImageProcessorFast", **common})
    _write_json(os.path.join(out, "video_preprocessor_config.json"),
                {"video_processor_type": "Qwen3VLVideoProcessor", "fps": 2, **common})


def build_target(out: str, special_ids: dict[str, int], constant: bool) -> None:
    import torch
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    os.makedirs(out, exist_ok=True)
    text = {**TEXT, "eos_token_id": special_ids["<|im_end|>"],
            "pad_token_id": special_ids["<|endoftext|>"], "tie_word_embeddings": False}
    config = Qwen3_5Config(
        text_config=text,
        vision_config=VISION,
        image_token_id=special_ids["<|image_pad|>"],
        video_token_id=special_ids["<|video_pad|>"],
        vision_start_token_id=special_ids["<|vision_start|>"],
        vision_end_token_id=special_ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    config.architectures = ["Qwen3_5ForConditionalGeneration"]
    torch.manual_seed(SEED + (1 if constant else 2))
    model = Qwen3_5ForConditionalGeneration(config).to(torch.bfloat16).eval()
    with torch.no_grad():
        if constant:
            model.model.language_model.norm.weight.fill_(-1.0)  # (1 + w) = 0: every logit is 0
        else:
            model.lm_head.weight.mul_(25.0)  # logits spread by several nats: few near-ties
    model.save_pretrained(out, safe_serialization=True)
    # transformers folds full_attention_interval into layer_types when it saves; SGLang's own
    # Qwen3_5TextConfig (0.5.12) still reads it, as real Qwen3.5 checkpoints carry it.
    path = os.path.join(out, "config.json")
    with open(path, encoding="utf-8") as handle:
        saved = json.load(handle)
    saved["text_config"]["full_attention_interval"] = TEXT["full_attention_interval"]
    _write_json(path, saved)


def build_drafter(out: str, agree: bool) -> None:
    import torch
    from safetensors.torch import save_file

    os.makedirs(out, exist_ok=True)
    hidden, heads, kv_heads, head_dim = TEXT["hidden_size"], 4, 2, 64
    inter, vocab = TEXT["intermediate_size"], TEXT["vocab_size"]
    generator = torch.Generator().manual_seed(SEED + (3 if agree else 4))

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator) * std).to(torch.bfloat16)

    # Draft id i stands for target id 2*i: a real reduced vocabulary maps to a subset of ids,
    # so d2t (target minus draft id) is not all zeros. Draft id 0 is target id 0.
    d2t = torch.arange(DRAFT_VOCAB, dtype=torch.int64)
    t2d = torch.zeros(vocab, dtype=torch.bool)
    t2d[torch.arange(DRAFT_VOCAB) * 2] = True
    ones = torch.ones(hidden, dtype=torch.bfloat16)
    tensors = {
        "fc.weight": normal(hidden, hidden * len(AUX_LAYER_IDS)),
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
        "lm_head.weight": normal(DRAFT_VOCAB, hidden, std=0.5),
        "d2t": d2t,
        "t2d": t2d,
    }
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    _write_json(os.path.join(out, "config.json"), {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": hidden,
        "target_hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": 1,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": TEXT["max_position_embeddings"],
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000000.0,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "draft_vocab_size": DRAFT_VOCAB,
        "torch_dtype": "bfloat16",
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": AUX_LAYER_IDS},
    })


def build_all(out: str) -> dict[str, dict[str, str]]:
    """Build every model under ``out``; returns each folder's files with their SHA-256."""
    os.makedirs(out, exist_ok=True)
    for name, constant in (("target-const", True), ("target-random", False)):
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        special_ids = build_tokenizer(folder)
        write_processor_configs(folder)
        build_target(folder, special_ids, constant)
    build_drafter(os.path.join(out, "drafter-agree"), agree=True)
    build_drafter(os.path.join(out, "drafter-random"), agree=False)
    return {name: _digests(os.path.join(out, name)) for name in sorted(os.listdir(out))
            if os.path.isdir(os.path.join(out, name))}


def _digests(folder: str) -> dict[str, str]:
    result = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as handle:
            result[name] = hashlib.sha256(handle.read()).hexdigest()
    return result


def _write_json(path: str, value: object) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to build the four model folders in")
    args = parser.parse_args(argv)
    json.dump(build_all(args.out), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
