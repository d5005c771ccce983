"""Run a capture kit (benchmarks/gpu/build_models.py --kit capture-*) on the CPU: transformers'
target gives the hidden states, SGLang's real drafter proposes from them.

Run by the python of the real-SGLang venv (``realenv.py``), never imported by pytest.

    python capture_probe.py KIT_DIR TEXT

For the target in ``KIT_DIR/target``: its greedy tokens and largest |logit| over TEXT's tokens
(SGLang's own tokenizer loader encodes it). For each ``KIT_DIR/drafter-*``: SGLang 0.5.12's
``LlamaForCausalLMEagle3`` is built, loads the file through SGLang's weight iterator and its own
``load_weights`` (``d2t`` becomes its ``hot_token_id``), shares the target's embedding as SGLang's
EAGLE-3 worker does, and runs with SGLang's torch-native attention backend:

- a draft extend over every position, its aux input the concatenated ``hidden_states[k + 1]``
  (the output of layer k) for the ids the drafter configures (what the patched SGLang captures)
  or, with ``--deliveries``, for other layers (what a wrong capture would deliver);
- one draft decode step from the last position, fed the drafter's own hidden state (``fc``
  skipped), as SGLang's later draft steps are.

Each proposal is mapped to a target id through ``hot_token_id``; the report gives every
position's proposal and the smallest gap between the best and second-best draft logit.
stdout carries exactly one JSON object.

torch, transformers and SGLang are imported inside functions: after ``main`` has pointed fd 1 away
from the report (they print, some of it from C) and set ``SGLANG_USE_CPU_ENGINE`` (SGLang decides
its platform when first imported).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path
from unittest import mock

# The support package is two folders up: tests/, or its copy in an unprivileged user's folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from support.probereport import stdout_for_report, write_report  # noqa: E402
from support.sglang_cpu import bootstrap_sglang_on_cpu  # noqa: E402


def target_pass(folder: str, input_ids) -> dict:
    import torch
    from transformers import Qwen3_5ForConditionalGeneration

    model = Qwen3_5ForConditionalGeneration.from_pretrained(folder, dtype=torch.bfloat16).eval()
    with torch.no_grad():
        out = model(input_ids=input_ids[None], output_hidden_states=True)
    logits = out.logits[0].float()
    # hidden_states[k + 1] is the output of layer k (the last entry is after the final norm).
    hidden_states = [state[0] for state in out.hidden_states]
    return {
        "argmax": logits.argmax(-1).tolist(),
        "max_abs_logit": logits.abs().max().item(),
        "stream": _stream(hidden_states),
        "hidden_states": hidden_states,
        "embed": model.get_input_embeddings().weight.detach(),
    }


def _stream(hidden_states) -> dict:
    """What the residual stream holds after each layer but the last (whose entry is normalised):
    the value in channel k after layer k, at every position, and the largest |value| anywhere
    else but channels 0..k and the bias channel L."""
    layers = len(hidden_states) - 1
    written, stray = [], 0.0
    for k in range(layers - 1):
        state = hidden_states[k + 1].float()
        written += state[:, k].tolist()
        rest = state.clone()
        rest[:, : k + 1] = 0
        rest[:, layers] = 0
        stray = max(stray, rest.abs().max().item())
    bias = hidden_states[layers - 1][:, layers].float()
    return {"written_min": min(written), "written_max": max(written), "stray_max": stray,
            "bias_min": bias.min().item(), "bias_max": bias.max().item()}


def drafter_pass(folder: str, hidden_states: list, embed, input_ids, deliveries: dict) -> dict:
    """Build the drafter once; run it on each delivery (a name -> the layers whose outputs fill its
    aux slots, None for the ids it configures)."""
    import torch

    from sglang.srt.model_loader.weight_utils import safetensors_weights_iterator
    from sglang.srt.models.llama_eagle3 import LlamaForCausalLMEagle3
    from sglang.srt.utils.hf_transformers_utils import get_config

    config = get_config(folder, trust_remote_code=False)
    configured = config.eagle_config["eagle_aux_hidden_state_layer_ids"]
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # what SGLang's loader does while it builds the model
    try:
        model = LlamaForCausalLMEagle3(config).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    model.load_weights(safetensors_weights_iterator([os.path.join(folder, "model.safetensors")]))
    # set_embed ends by emptying and synchronising the CUDA cache: nothing to do on a CPU.
    with mock.patch("torch.cuda.empty_cache"), mock.patch("torch.cuda.synchronize"):
        model.set_embed(embed)
    runs = {}
    for label, layers in deliveries.items():
        layers = configured if layers is None else layers
        aux = torch.cat([hidden_states[k + 1] for k in layers], dim=-1)
        runs[label] = {"delivered": layers, **_draft(model, config, input_ids, aux)}
    return {"configured_ids": configured, "runs": runs}


def _draft(model, config, input_ids, aux) -> dict:
    """A draft extend over every position, then one draft decode step from the last one."""
    import torch

    cache = _Cache(config, slots=len(input_ids) + 1)
    positions = torch.arange(len(input_ids))
    with torch.no_grad():
        extend_logits, feedback = _run(model, cache.batch(input_ids, positions, aux, decode=False))
        extend = _proposals(model, extend_logits)
        step_ids = torch.tensor(extend["target_ids"][-1:])
        decode_logits, _ = _run(model, cache.batch(step_ids, positions[-1:] + 1, feedback[-1:], decode=True))
        decode = _proposals(model, decode_logits)
    return {
        "extend": extend["target_ids"],
        "decode": decode["target_ids"],
        "top_two_logits": extend["top_two"][0],
        "min_gap": min(extend["min_gap"], decode["min_gap"]),
        "fed_back_width": int(feedback.shape[-1]),
    }


def _run(model, batch):
    """LlamaForCausalLMEagle3's forward up to its logits processor, whose product with ``lm_head``
    is the one step taken here; returns the logits and the hidden state fed back to the next step."""
    logits_input, aux = model.model(batch.input_ids, batch.positions, batch)
    return logits_input.float() @ model.lm_head.weight.float().T, aux[0]


def _proposals(model, logits) -> dict:
    import torch

    top = torch.topk(logits, 2, dim=-1)
    draft_ids = top.indices[:, 0]
    return {
        "target_ids": model.get_hot_token_id()[draft_ids].tolist(),
        "top_two": top.values.tolist(),
        "min_gap": (top.values[:, 0] - top.values[:, 1]).min().item(),
    }


class _Cache:
    """SGLang's request-to-token map and KV pool for one request, on the CPU."""

    def __init__(self, config, slots: int):
        import torch

        from sglang.srt.layers.attention.torch_native_backend import TorchNativeAttnBackend
        from sglang.srt.mem_cache.memory_pool import MHATokenToKVPool, ReqToTokenPool

        self.req_to_token = ReqToTokenPool(size=1, max_context_len=slots, device="cpu", enable_memory_saver=False)
        self.kv = MHATokenToKVPool(slots, page_size=1, dtype=torch.bfloat16, head_num=config.num_key_value_heads,
                                   head_dim=config.head_dim, layer_num=1, device="cpu", enable_memory_saver=False)
        self.backend = TorchNativeAttnBackend(types.SimpleNamespace(device="cpu"))
        self.request = 1  # row 0 is the pool's padding row

    def batch(self, input_ids, positions, hidden_states, decode: bool):
        import torch

        from sglang.srt.model_executor.forward_batch_info import ForwardBatch, ForwardMode

        locations = positions.to(torch.int64)
        self.req_to_token.req_to_token[self.request, locations] = locations.to(torch.int32)
        seq_len = int(positions[-1]) + 1
        extend = {} if decode else {
            "extend_seq_lens": torch.tensor([len(positions)]), "extend_prefix_lens": torch.tensor([0]),
            "extend_num_tokens": len(positions)}
        return ForwardBatch(
            forward_mode=ForwardMode.DECODE if decode else ForwardMode.EXTEND,
            batch_size=1, input_ids=input_ids, req_pool_indices=torch.tensor([self.request]),
            seq_lens=torch.tensor([seq_len]), out_cache_loc=locations, seq_lens_sum=seq_len,
            positions=positions, attn_backend=self.backend, token_to_kv_pool=self.kv,
            req_to_token_pool=self.req_to_token, spec_info=types.SimpleNamespace(hidden_states=hidden_states),
            **extend,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kit", help="a folder build_models.py --kit capture-* made")
    parser.add_argument("text", help="the prompt")
    parser.add_argument("--deliveries", default='{"configured": null}',
                        help="JSON: a name -> the layers whose outputs fill the aux slots (null: the "
                             "drafter's configured ids)")
    args = parser.parse_args()
    os.environ["SGLANG_USE_CPU_ENGINE"] = "1"  # before SGLang's first import
    report_fd = stdout_for_report()

    import torch
    import transformers

    import sglang
    from sglang.srt.utils.hf_transformers_utils import get_tokenizer

    target_dir = os.path.join(args.kit, "target")
    input_ids = torch.tensor(get_tokenizer(target_dir).encode(args.text))
    target = target_pass(target_dir, input_ids)
    bootstrap_sglang_on_cpu(hidden_size=target["embed"].shape[1], dtype=torch.bfloat16)
    report = {
        "versions": {"sglang": sglang.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
        "input_ids": input_ids.tolist(),
        "layers": len(target["hidden_states"]) - 1,
        "target": {"argmax": target["argmax"], "max_abs_logit": target["max_abs_logit"],
                   "stream": target["stream"]},
        "drafters": {
            name: drafter_pass(os.path.join(args.kit, name), target["hidden_states"], target["embed"], input_ids,
                               json.loads(args.deliveries))
            for name in sorted(os.listdir(args.kit)) if name.startswith("drafter-")
        },
    }
    write_report(report_fd, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
