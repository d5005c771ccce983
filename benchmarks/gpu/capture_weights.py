"""The non-zero weights of the capture-correctness models: a target whose residual stream says
which layer it has passed, and drafters that propose target token 0 only when their aux hidden
states are the outputs of the layers they were built for.

Every other weight is zero (the files leave it as a hole), which is what makes the construction
exact:

- **Target.** Every token id the tokenizer has embeds to ``e_c`` (hidden channel ``c = L``, the
  "bias channel"). Attention and linear attention add nothing: their output projections
  (``o_proj``, ``out_proj``) are zero. Layer ``l``'s MLP writes 1.0 into channel ``l``: one
  intermediate unit reads channel ``c`` through the post-attention RMSNorm, whose weight 0 means a
  factor ``1 + 0`` in Qwen3.5's norm, so the unit's input is ``1 / rms`` with the stream's RMS
  known in advance (channel c and channels 0..l-1 hold 1). So the output of layer ``k`` (what
  transformers returns as ``hidden_states[k + 1]``, and SGLang captures at the input of layer
  ``k + 1``) holds 1 in channels ``0..k`` and ``c``, 0 elsewhere, at every position.
  ``lm_head`` is zero, so every logit is 0 and greedy decoding picks token 0.
- **Drafter.** Its midlayer's ``o_proj`` and ``down_proj`` are zero, so its output is
  ``norm(fc(aux))``, and the hidden state it feeds back to its next draft step is ``fc(aux)``
  again (SGLang skips ``fc`` for a state of hidden size): every step proposes the same token.
  ``fc`` makes, for aux slot ``j`` built for layer ``b_j``, the feature ``x_j[b_j] - x_j[b_j + 1]``:
  1 when slot j holds the output of layer ``b_j``, 0 when it holds the output of the layer before
  or after. A fourth channel copies the bias channel (always 1). ``lm_head`` row 0 sums the three
  features; row 1 reads the bias channel with weight 2.5. Right layers: 3 > 2.5, draft id 0,
  which ``d2t`` maps to target id 0. Any slot wrong: at most 2 < 2.5, draft id 1 -> target id 2,
  which the target rejects.
"""

from __future__ import annotations

import math

import torch

TARGET_PREFIX = "model.language_model."
# The wrong proposal's weight on the bias channel: between 2 (two of three slots right) and
# 3 (all right), as far from both as it can be.
BIAS_LOGIT = 2.5
# Draft id i stands for target id 2 * i (a reduced vocabulary maps to a subset of target ids,
# so d2t is not all zeros); draft id 0 is target id 0, draft id 1 is target id 2.
DRAFT_STRIDE = 2


def target_rows(hidden: int, layers: int, intermediate: int, vocab: int, tokens: int,
                eps: float) -> dict[str, torch.Tensor]:
    """The target's non-zero weights, as leading rows, under transformers' state_dict names.

    ``tokens``: the tokenizer's vocabulary size; ids ``0..tokens-1`` embed to ``e_c``.
    ``eps``: the config's ``rms_norm_eps``, part of the RMS the MLP units are scaled for.
    """
    bias = bias_channel(hidden, layers)
    if tokens > vocab:
        raise ValueError(f"{tokens} token ids do not fit a vocabulary of {vocab}")
    embed = torch.zeros(tokens, hidden, dtype=torch.bfloat16)
    embed[:, bias] = 1.0
    rows = {f"{TARGET_PREFIX}embed_tokens.weight": embed}
    for layer in range(layers):
        gate, up, down = _mlp_unit(hidden, layer, eps)
        prefix = f"{TARGET_PREFIX}layers.{layer}.mlp."
        rows[prefix + "gate_proj.weight"] = _one_hot_row(0, hidden, bias, gate)
        rows[prefix + "up_proj.weight"] = _one_hot_row(0, hidden, bias, up)
        rows[prefix + "down_proj.weight"] = _one_hot_row(layer, intermediate, 0, down)
    return rows


def drafter_rows(hidden: int, vocab: int, draft_vocab: int, built_for: list[int],
                 layers: int) -> dict[str, torch.Tensor]:
    """The drafter's non-zero weights, as leading rows, under the names SGLang's
    ``LlamaForCausalLMEagle3`` loads. ``built_for``: the layer whose output each aux slot expects."""
    bias = bias_channel(hidden, layers)
    if not all(0 <= layer < layers - 1 for layer in built_for):
        raise ValueError(f"layers {built_for}: a feature needs layer b and b + 1 among 0..{layers - 1}")
    slots = len(built_for)
    fc = torch.zeros(slots + 1, slots * hidden, dtype=torch.bfloat16)
    for slot, layer in enumerate(built_for):
        fc[slot, slot * hidden + layer] = 1.0
        fc[slot, slot * hidden + layer + 1] = -1.0
    fc[slots, bias] = 1.0  # slot 0's bias channel: 1 whatever layer arrived
    lm_head = torch.zeros(2, hidden, dtype=torch.bfloat16)
    lm_head[0, :slots] = 1.0
    lm_head[1, slots] = BIAS_LOGIT
    draft_ids = torch.arange(draft_vocab, dtype=torch.int64)
    target_ids = draft_ids * DRAFT_STRIDE
    d2t = target_ids - draft_ids  # what SGLang adds to a draft id to get the target id
    t2d = torch.zeros(vocab, dtype=torch.bool)
    t2d[target_ids] = True
    ones = torch.ones(hidden, dtype=torch.bfloat16)
    return {
        "fc.weight": fc,
        "lm_head.weight": lm_head,
        "d2t": d2t,
        "t2d": t2d,
        "norm.weight": ones,
        # Only the final norm matters (weight 0 would zero every draft logit); the midlayer's
        # norms feed projections that are zero, and get the value a trained drafter starts from.
        "midlayer.hidden_norm.weight": ones,
        "midlayer.input_layernorm.weight": ones,
        "midlayer.post_attention_layernorm.weight": ones,
    }


def bias_channel(hidden: int, layers: int) -> int:
    """Channel ``L``: channels 0..L-1 record the layers, so the model needs ``hidden > L``."""
    if hidden <= layers:
        raise ValueError(f"hidden size {hidden} leaves no bias channel beside {layers} layer channels")
    return layers


def _mlp_unit(hidden: int, layer: int, eps: float) -> tuple[float, float, float]:
    """gate, up and down weights with which layer ``layer``'s MLP unit writes 1.0.

    The unit's input is channel c after RMSNorm: ``1 / rms``, ``rms = sqrt((1 + layer) / H + eps)``
    (channel c and channels 0..layer-1 hold 1). gate and up scale it to 1 each; down undoes
    ``silu(1) * 1``, computed from the bf16-rounded gate and up, so only down's own rounding
    (2^-9 relative) and the run's bf16 arithmetic remain.
    """
    normed = 1.0 / math.sqrt((1 + layer) / hidden + eps)
    gate = _bf16(1.0 / normed)
    up = _bf16(1.0 / normed)
    pre = gate * normed
    unit = pre / (1.0 + math.exp(-pre)) * (up * normed)
    return gate, up, _bf16(1.0 / unit)


def _one_hot_row(row: int, width: int, column: int, value: float) -> torch.Tensor:
    rows = torch.zeros(row + 1, width, dtype=torch.bfloat16)
    rows[row, column] = value
    return rows


def _bf16(value: float) -> float:
    return torch.tensor(value, dtype=torch.bfloat16).item()
