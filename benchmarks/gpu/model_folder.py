"""What the kit's model folders hold besides weights: a tokenizer, the image and video processor
configs SGLang loads for a target, ``config.json`` files SGLang 0.5.12 accepts for targets and
drafters; plus the file helpers every kit shares."""

from __future__ import annotations

import hashlib
import json
import os

# Special tokens go after the learned ones, so token 0 is an ordinary token (the constructed
# targets' only output) and never an end-of-sequence.
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


def build_tokenizer(out: str, vocab_size: int, max_length: int) -> tuple[dict[str, int], int]:
    """A byte-level BPE tokenizer trained on CORPUS.

    Returns the special tokens' ids and the tokenizer's vocabulary size (every id it can produce
    is below it). Any text encodes: the byte alphabet is part of the vocabulary.
    """
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
    if max(ids.values()) >= vocab_size or tokenizer.get_vocab_size() > vocab_size:
        raise SystemExit("the tokenizer outgrew the model's vocabulary")
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": max_length,
        "image_token": "<|image_pad|>",
        "video_token": "<|video_pad|>",
        "vision_start_token": "<|vision_start|>",
        "vision_end_token": "<|vision_end|>",
        "chat_template": (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        ),
    })
    return ids, tokenizer.get_vocab_size()


def write_processor_configs(out: str, vision: dict) -> None:
    """SGLang loads a Qwen3.5 folder's image and video processors even for text-only requests."""
    common = {
        "processor_class": "Qwen3VLProcessor",
        "patch_size": vision["patch_size"],
        "temporal_patch_size": vision["temporal_patch_size"],
        "merge_size": vision["spatial_merge_size"],
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    }
    write_json(os.path.join(out, "preprocessor_config.json"),
               {"image_processor_type": "Qwen2VLImageProcessorFast", **common})
    write_json(os.path.join(out, "video_preprocessor_config.json"),
               {"video_processor_type": "Qwen3VLVideoProcessor", "fps": 2, **common})


def target_config(text: dict, vision: dict, special_ids: dict[str, int]):
    """transformers' ``Qwen3_5Config`` for a target of this shape and tokenizer."""
    from transformers import Qwen3_5Config

    text = {**text, "eos_token_id": special_ids["<|im_end|>"],
            "pad_token_id": special_ids["<|endoftext|>"], "tie_word_embeddings": False}
    config = Qwen3_5Config(
        text_config=text,
        vision_config=vision,
        image_token_id=special_ids["<|image_pad|>"],
        video_token_id=special_ids["<|video_pad|>"],
        vision_start_token_id=special_ids["<|vision_start|>"],
        vision_end_token_id=special_ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    config.architectures = ["Qwen3_5ForConditionalGeneration"]
    return config


def drafter_config(drafter: dict, text: dict, aux_layer_ids: list[int]) -> dict:
    """The ``config.json`` of an EAGLE-3 drafter for a target with this text config."""
    return {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": drafter["hidden_size"],
        "target_hidden_size": text["hidden_size"],
        "intermediate_size": drafter["intermediate_size"],
        "num_hidden_layers": 1,
        "num_attention_heads": drafter["num_attention_heads"],
        "num_key_value_heads": drafter["num_key_value_heads"],
        "head_dim": drafter["head_dim"],
        "hidden_act": "silu",
        "max_position_embeddings": text["max_position_embeddings"],
        "rms_norm_eps": text["rms_norm_eps"],
        "rope_theta": text["rope_parameters"]["rope_theta"],
        "tie_word_embeddings": False,
        "vocab_size": text["vocab_size"],
        "draft_vocab_size": drafter["draft_vocab_size"],
        "torch_dtype": "bfloat16",
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": aux_layer_ids},
    }


def restore_full_attention_interval(out: str, interval: int) -> None:
    """transformers folds ``full_attention_interval`` into ``layer_types`` when it saves a config;
    SGLang 0.5.12's own Qwen3_5TextConfig still reads it, as real Qwen3.5 checkpoints carry it."""
    path = os.path.join(out, "config.json")
    with open(path, encoding="utf-8") as handle:
        saved = json.load(handle)
    saved["text_config"]["full_attention_interval"] = interval
    write_json(path, saved)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: str, value: object) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")
