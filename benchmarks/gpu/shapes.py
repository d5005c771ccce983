"""The model shapes the kit builds, as data: transformers ``Qwen3_5Config`` text and vision
arguments for the targets, and the drafters' ``LlamaForCausalLMEagle3`` sizes."""

from __future__ import annotations

# The structure of Qwen3.6-27B scaled down: 64 layers of which every fourth is full attention
# -> 8 layers, two full-attention ones; hidden 5120 -> 256.
TINY_TEXT = {
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
TINY_VISION = {
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
TINY_DRAFTER = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "draft_vocab_size": 512,
}
# "Output of layer k" for k in these ids, spread over the 8 layers as the card's [1, 31, 60]
# over 64.
TINY_AUX_LAYER_IDS = [1, 3, 5]

# Qwen/Qwen3.6-27B's shape, as its public config.json gives it (native context 262144).
QWEN36_27B_TEXT = {
    "vocab_size": 248320,
    "hidden_size": 5120,
    "intermediate_size": 17408,
    "num_hidden_layers": 64,
    "full_attention_interval": 4,
    "num_attention_heads": 24,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128,
    "linear_value_head_dim": 128,
    "linear_num_key_heads": 16,
    "linear_num_value_heads": 48,
    "max_position_embeddings": 262144,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "attn_output_gate": True,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 10000000.0,
        "partial_rotary_factor": 0.25,
        "mrope_section": [11, 11, 10],
        "mrope_interleaved": True,
    },
}
QWEN36_27B_VISION = {
    "depth": 27,
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_heads": 16,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 5120,
    "num_position_embeddings": 2304,
}
# The card's compressed drafter (Ex0bit/Qwen3.6-27B-PRISM-EAGLE3): one layer, hidden 5120,
# 32000 draft ids. Its attention and MLP sizes are not published. These are the target's MLP
# and Llama-style attention (32 heads, 8 KV heads of 128): 0.59 B parameters, 1.1 GiB in bf16,
# 3.2 GiB with the full vocabulary (the card: "~0.6 B", 1.1 GB and 3.1 GB). The target's own 24
# heads cannot be used: transformers 5.6.0's LlamaConfig, which SGLang 0.5.12 pins, refuses a
# hidden size that is not a multiple of the head count.
QWEN36_27B_DRAFTER = {
    "hidden_size": 5120,
    "intermediate_size": 17408,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "draft_vocab_size": 32000,
}
QWEN36_27B_AUX_LAYER_IDS = [1, 31, 60]
