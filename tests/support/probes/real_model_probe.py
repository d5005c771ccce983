"""Build SGLang's real Qwen3.5 wrappers on the CPU and report where EAGLE-3 capture lands.

Run by the python of a venv that has SGLang installed (see ``realenv.py``), never
imported by pytest. For each case it builds a fresh tiny model, calls
``set_eagle3_layers_to_capture`` the way SGLang's model runner does, and reads
the ``_is_layer_to_capture`` flags off the real decoder layers.

    python real_model_probe.py --ids '[1, 3, 5]' [--moe] [--registry] [--spawn]

``--registry`` takes the wrapper classes from SGLang's own model registry (which
imports every model module and swallows import errors); ``--spawn`` does all of
it in a ``multiprocessing`` spawn child, as SGLang runs its scheduler.

stdout carries exactly one JSON object; logs and versions go to stderr.

torch, transformers and SGLang are imported inside functions: after ``main`` has pointed fd 1 away
from the report (they print, some of it from C) and set ``SGLANG_USE_CPU_ENGINE`` (SGLang decides
its platform when first imported); ``_collect`` times them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing
import os
import sys
import time
import traceback
from pathlib import Path

# The support package is two folders up: tests/, or its copy in an unprivileged user's folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from support.probereport import stdout_for_report, write_report  # noqa: E402
from support.sglang_cpu import bootstrap_sglang_on_cpu  # noqa: E402

N_LAYERS = 8


def _log(message: str) -> None:
    print(f"[real_model_probe] {message}", file=sys.stderr, flush=True)


def _text_config_kwargs() -> dict:
    return dict(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        full_attention_interval=4,
        linear_conv_kernel_dim=4,
        linear_key_head_dim=16,
        linear_value_head_dim=16,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
        torch_dtype="float32",
    )


def _vision_config_kwargs() -> dict:
    return dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        out_hidden_size=64,
        patch_size=16,
        spatial_merge_size=2,
        temporal_patch_size=2,
        num_position_embeddings=64,
        deepstack_visual_indexes=[0],
    )


def _wrapper_class(moe: bool, registry: bool):
    name = "Qwen3_5MoeForConditionalGeneration" if moe else "Qwen3_5ForConditionalGeneration"
    if registry:
        from sglang.srt.models.registry import ModelRegistry

        return ModelRegistry.resolve_model_cls([name])[0]
    from sglang.srt.models import qwen3_5

    return getattr(qwen3_5, name)


def _build(moe: bool, registry: bool):
    from sglang.srt.configs import qwen3_5 as configs
    from sglang.srt.configs.update_config import adjust_tp_num_heads_if_necessary

    text = _text_config_kwargs()
    if moe:
        text.update(
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=32,
            decoder_sparse_step=1,
            norm_topk_prob=True,
        )
        text_config = configs.Qwen3_5MoeTextConfig(**text)
        vision_config = configs.Qwen3_5MoeVisionConfig(**_vision_config_kwargs())
        config = configs.Qwen3_5MoeConfig(
            text_config=text_config.to_dict(), vision_config=vision_config.to_dict()
        )
    else:
        text_config = configs.Qwen3_5TextConfig(**text)
        vision_config = configs.Qwen3_5VisionConfig(**_vision_config_kwargs())
        config = configs.Qwen3_5Config(
            text_config=text_config.to_dict(), vision_config=vision_config.to_dict()
        )
    adjust_tp_num_heads_if_necessary(config.text_config, 1, True)
    return _wrapper_class(moe, registry)(config)


def _flagged(model) -> list[int]:
    return [
        index
        for index, layer in enumerate(model.model.layers)
        if getattr(layer, "_is_layer_to_capture", False)
    ]


def _run_case(moe: bool, registry: bool, layer_ids: list[int] | None) -> dict:
    model = _build(moe, registry)
    flagged_before = _flagged(model)
    # What ModelRunner does for a target model when the drafter uses aux hidden states.
    model.set_eagle3_layers_to_capture(layer_ids)
    return {
        "wrapper": type(model).__name__,
        "wrapper_module": type(model).__module__,
        "pid": os.getpid(),
        "decoder": type(model.model).__name__,
        "flagged_before_call": flagged_before,
        "flagged_layers": _flagged(model),
        "capture_aux_hidden_states": bool(getattr(model, "capture_aux_hidden_states", False)),
        "decoder_capture_aux_hidden_states": bool(
            getattr(model.model, "capture_aux_hidden_states", False)
        ),
        "model_layers_to_capture": list(getattr(model.model, "layers_to_capture", []) or []),
    }


def _traceback_through_the_hook(registry: bool) -> dict:
    """What a user sees when the hook fails: an id past the last layer raises inside it."""
    model = _build(False, registry)
    try:
        model.set_eagle3_layers_to_capture([N_LAYERS + 10])
        shown = ""
    except IndexError:
        shown = traceback.format_exc()
    return {"traceback": shown, "getsource": inspect.getsource(type(model).set_eagle3_layers_to_capture)}


def _run_wrapper(moe: bool, registry: bool, layer_ids: list[int]) -> dict:
    return {"ids": _run_case(moe, registry, layer_ids), "none": _run_case(moe, registry, None)}


def _collect(layer_ids: list[int], moe: bool, registry: bool) -> dict:
    started = time.monotonic()
    import torch
    import transformers

    import sglang

    if registry:  # the registry, not this probe, must be the first to import qwen3_5
        from sglang.srt.models import registry as _  # noqa: F401
    from sglang.srt.models import qwen3_5

    imported = time.monotonic()
    _log(
        f"python {sys.version.split()[0]} at {sys.executable}; sglang "
        f"{getattr(sglang, '__version__', '?')}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}; import took {imported - started:.1f}s"
    )
    bootstrap_sglang_on_cpu()
    report = {
        "sglang_file": qwen3_5.__file__,
        "sglang_version": getattr(sglang, "__version__", None),
        "n_layers": N_LAYERS,
        "layer_ids": layer_ids,
        "results": _run_wrapper(moe=False, registry=registry, layer_ids=layer_ids),
    }
    report["failure"] = _traceback_through_the_hook(registry)
    if moe:
        report["moe_results"] = _run_wrapper(moe=True, registry=registry, layer_ids=layer_ids)
    report["seconds"] = {
        "import": round(imported - started, 2),
        "build_and_call": round(time.monotonic() - imported, 2),
    }
    _log(f"built and probed in {report['seconds']['build_and_call']:.1f}s")
    return report


def _collect_in_child(queue, layer_ids: list[int], moe: bool, registry: bool) -> None:
    queue.put(_collect(layer_ids, moe, registry))


def _collect_in_spawn_child(layer_ids: list[int], moe: bool, registry: bool) -> dict:
    context = multiprocessing.get_context("spawn")  # what SGLang's engine forces
    queue = context.Queue()
    child = context.Process(target=_collect_in_child, args=(queue, layer_ids, moe, registry))
    child.start()
    report = queue.get(timeout=600)
    child.join(timeout=60)
    report["parent_pid"] = os.getpid()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", default="[1, 3, 5]", help="JSON list of drafter layer ids")
    parser.add_argument("--moe", action="store_true", help="also build the MoE wrapper")
    parser.add_argument("--registry", action="store_true", help="resolve the wrappers via ModelRegistry")
    parser.add_argument("--spawn", action="store_true", help="probe in a multiprocessing spawn child")
    args = parser.parse_args()
    layer_ids = json.loads(args.ids)

    # SGLang decides its platform at import time, so this must precede the imports.
    os.environ["SGLANG_USE_CPU_ENGINE"] = "1"
    report_fd = stdout_for_report()

    collect = _collect_in_spawn_child if args.spawn else _collect
    report = collect(layer_ids, args.moe, args.registry)
    write_report(report_fd, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
