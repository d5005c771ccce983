"""Prove a drafter fits the target before launching: a wrong one must fail in a second.

Reads only ``config.json`` files and the safetensors header (no torch), so the
failure comes before SGLang spends minutes loading a 54 GB target. Every refusal
names the file, the field, what was found and what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from eagle3_patch.errors import BadInput
from eagle3_patch.serve.drafter import hub_download_command
from eagle3_patch.text.masking import shown, shown_json
from eagle3_patch.serve.checkpoint import checkpoint_tensors, is_folder, is_present, read_json

# EntryClass names of EAGLE-3 draft models in sglang/srt/models/*.py across
# 0.5.8-0.5.23 (Eagle3DeepseekV2ForCausalLM from 0.5.12). Eagle-1/2 classes
# (LlamaForCausalLMEagle, ...) take no aux hidden states and are not accepted.
EAGLE3_DRAFT_CLASSES = frozenset({"LlamaForCausalLMEagle3", "Eagle3DeepseekV2ForCausalLM"})
# Bounds no real checkpoint comes near (the widest released models are 16-25k wide, the largest
# vocabularies ~260k tokens, the deepest a few hundred layers): a value past them is a broken
# config, which SGLang would only discover allocating tensors of that size.
MAX_HIDDEN_SIZE = 2**17
MAX_VOCAB_SIZE = 2**24
MAX_LAYER_ID = 2**16


@dataclass(frozen=True)
class TargetText:
    """The target's text-decoder shape, and the config.json it came from."""

    source: Path
    hidden_size: int | None
    num_hidden_layers: int | None


@dataclass(frozen=True)
class DrafterReport:
    """A drafter that passed validation; ``notes`` says which checks ran or were skipped."""

    path: Path
    architecture: str
    hidden_size: int
    vocab_size: int | None
    draft_vocab_size: int | None
    aux_layer_ids: tuple[int, ...] | None
    notes: tuple[str, ...]


def target_text_config(model: str, revision: str | None = None) -> tuple[TargetText | None, str]:
    """The target's text config when readable locally (``revision`` of a Hub id), else None and why not."""
    folder = Path(os.path.expanduser(model))  # a "~" it cannot expand stays: see serve.drafter
    if is_folder(folder):
        config_file = folder / "config.json"
        if not is_present(config_file):
            raise BadInput(
                f"Target model folder {folder} has no config.json.",
                "--model must name a Hugging Face model folder (config.json, weights, tokenizer) or a Hub repo id.",
                "Point --model at the folder that holds config.json.",
            )
        return _text_of(config_file, read_json(config_file, "target config")), ""
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise BadInput(
            f"Target model '{model}' is neither a folder nor a Hub repo id.",
            "--model takes a local model folder or an id like Qwen/Qwen3.6-27B.",
            "Check the path (it is resolved from the current directory).",
        )
    at = f"{model}@{revision}" if revision else model
    try:  # huggingface_hub: only a Hub id, never a local model folder
        import huggingface_hub
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None, f"huggingface_hub is not installed, so the cache of {at} cannot be read"
    try:
        cached = try_to_load_from_cache(model, "config.json", revision=revision)
    except ValueError as exc:  # an id huggingface_hub itself refuses (HFValidationError)
        raise BadInput(
            f"Target model '{model}' is not a valid Hub repo id.",
            shown(str(exc).splitlines()[0]),
            "--model takes a local model folder or an id like Qwen/Qwen3.6-27B.",
        ) from None
    if cached is None:
        if huggingface_hub.constants.HF_HUB_OFFLINE:
            raise _offline_and_not_cached(model, revision, at)
        return None, f"{at} config.json is not in the local Hugging Face cache (SGLang will download it)"
    if not isinstance(cached, str):
        return None, f"the Hugging Face cache records that {at} has no config.json (a .no_exist marker)"
    return _text_of(Path(cached), read_json(Path(cached), "target config")), ""


def _offline_and_not_cached(model: str, revision: str | None, at: str) -> BadInput:
    import huggingface_hub  # loaded already: a Hub id was looked up in its cache

    download = hub_download_command(huggingface_hub.__version__, model,
                                    *(["--revision", revision] if revision else []))
    return BadInput(
        f"Target model {at} is not in the local Hugging Face cache "
        f"({huggingface_hub.constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE is set.",
        "Offline, SGLang cannot download it either: the server would fail at start-up.",
        f"Download it where the Hub is reachable, then run again:\n  {download}\n"
        "or unset HF_HUB_OFFLINE, or pass --model a local model folder.",
    )


def check_drafter(folder: Path, target: TargetText | None,
                  skipped_because: str = "no target config given") -> DrafterReport:
    """Validate the drafter in ``folder`` against ``target`` (None: only self-consistency)."""
    config_file = folder / "config.json"
    config = read_json(config_file, "drafter config")
    weights, tensors = checkpoint_tensors(folder)
    return judge_drafter(folder, config_file, config, weights, tensors, target, skipped_because)


def judge_drafter(
    folder: Path,
    config_file: Path | str,
    config: dict,
    weights: Path | str,
    tensors: dict[str, dict],
    target: TargetText | None,
    skipped_because: str = "no target config given",
) -> DrafterReport:
    """The checks on an already-read config and weights header (local files, or the Hub's before download)."""
    architectures = config.get("architectures")
    names = architectures if isinstance(architectures, list) else []
    known = [a for a in names if isinstance(a, str) and a in EAGLE3_DRAFT_CLASSES]
    if not known:
        _refuse(config_file, "architectures", architectures,
                f"a list naming an EAGLE-3 draft class SGLang knows: {', '.join(sorted(EAGLE3_DRAFT_CLASSES))}",
                "This is not an EAGLE-3 drafter; use the full/ or compressed/ variant of an EAGLE-3 drafter repo.")
    hidden = config.get("hidden_size")
    if not _count(hidden, MAX_HIDDEN_SIZE):
        _refuse(config_file, "hidden_size", hidden, f"a whole number from 1 to {MAX_HIDDEN_SIZE}",
                "Re-download the drafter's config.json.")
    vocab, draft_vocab = config.get("vocab_size"), config.get("draft_vocab_size")
    for field, value in (("vocab_size", vocab), ("draft_vocab_size", draft_vocab)):
        if value is not None and not _count(value, MAX_VOCAB_SIZE):
            _refuse(config_file, field, value, f"a whole number from 1 to {MAX_VOCAB_SIZE}",
                    "Re-download the drafter's config.json.")
    eagle_config = config.get("eagle_config")
    if eagle_config is not None and not isinstance(eagle_config, dict):
        _refuse(config_file, "eagle_config", eagle_config, "a JSON object", "Re-download the drafter's config.json.")
    aux = eagle_config.get("eagle_aux_hidden_state_layer_ids") if eagle_config else None
    # SGLang flags one target layer per id and the drafter's fc takes one hidden state per id:
    # no id, or the same id twice, leaves the drafter fed fewer states than it was trained on.
    if aux is not None and not (isinstance(aux, list) and aux and all(map(_index, aux))
                                and len(set(aux)) == len(aux)):
        _refuse(config_file, "eagle_config.eagle_aux_hidden_state_layer_ids", aux,
                f"a non-empty list of distinct layer indices from 0 to {MAX_LAYER_ID - 1}",
                "Re-download the drafter's config.json.")

    notes = [f"architecture {known[0]}"]
    if draft_vocab is not None and vocab is not None and draft_vocab < vocab:
        d2t = tensors.get("d2t")
        if d2t is None:
            _refuse(weights, "tensor d2t", _Text("absent"),
                    f"a d2t tensor (draft->target token offsets), since config.json sets "
                    f"draft_vocab_size {draft_vocab} < vocab_size {vocab}",
                    "Re-download the drafter: the compressed variant ships d2t and t2d.")
        if d2t.get("shape") != [draft_vocab]:
            _refuse(weights, "tensor d2t shape", d2t.get("shape"), f"[{draft_vocab}] (draft_vocab_size)",
                    "The weights do not belong to this config.json; re-download the variant as a whole.")
        notes.append(f"reduced vocabulary {draft_vocab} of {vocab} with d2t")

    if target is None:
        notes.append(f"hidden size and aux layer ids not checked against the target: {skipped_because}")
    elif target.hidden_size is None:
        notes.append(f"hidden size not checked: {target.source} has no text hidden_size")
    elif hidden != target.hidden_size:
        _refuse(config_file, "hidden_size", hidden,
                f"{target.hidden_size}, the target's text hidden size ({target.source})",
                "This drafter was trained for another target; use the drafter made for this model.")
    else:
        notes.append(f"hidden size {hidden} matches the target ({target.source})")

    if aux is not None and target is not None:
        if target.num_hidden_layers is None:
            notes.append(f"aux layer ids not checked: {target.source} has no text num_hidden_layers")
        else:
            layers = target.num_hidden_layers
            bad = [i for i in aux if i + 1 >= layers]
            if bad:
                _refuse(config_file, "eagle_config.eagle_aux_hidden_state_layer_ids", aux,
                        f"every id + 1 < {layers}, the target's num_hidden_layers ({target.source}); "
                        f"out of range: {shown_json(bad)}",
                        "This drafter was trained for a deeper target; use the drafter made for this model.")
            notes.append(f"aux layer ids {shown_json(aux)} fit the target's {layers} layers")

    return DrafterReport(
        path=folder,
        architecture=known[0],
        hidden_size=hidden,
        vocab_size=vocab if isinstance(vocab, int) else None,
        draft_vocab_size=draft_vocab if isinstance(draft_vocab, int) else None,
        aux_layer_ids=tuple(aux) if aux is not None else None,
        notes=tuple(notes),
    )


def _count(value: object, limit: int) -> bool:
    # bool is an int subclass in Python; `true` is not a size.
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= limit


def _index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_LAYER_ID


class _Text(str):
    """A finding shown as words ("absent"), not as the JSON value it would otherwise be."""


def _refuse(file: Path | str, field: str, found: object, expected: str, fix: str) -> NoReturn:
    if found is None:
        said = "no value (the field is missing)"
    else:
        # JSON, so a string "5120" reads as a string, not as the number it is not.
        said = found if isinstance(found, _Text) else shown_json(found)
    raise BadInput(
        f"Drafter check failed: {file}, field `{field}`.",
        f"Found {said}; expected {expected}.",
        fix,
    )


def _text_of(config_file: Path, config: dict) -> TargetText:
    # Qwen3.5/3.6 multimodal checkpoints nest the decoder under text_config.
    text, prefix = config, ""
    if "text_config" in config:
        text, prefix = config["text_config"], "text_config."
        if not isinstance(text, dict):
            _refuse_target(config_file, "text_config", text, "a JSON object (the text decoder's config)")
    values = []
    for field in ("hidden_size", "num_hidden_layers"):
        value = text.get(field)
        limit = MAX_HIDDEN_SIZE if field == "hidden_size" else MAX_LAYER_ID
        if value is not None and not _count(value, limit):
            _refuse_target(config_file, prefix + field, value, f"a whole number from 1 to {limit}")
        values.append(value)
    return TargetText(config_file, *values)


def _refuse_target(file: Path, field: str, found: object, expected: str) -> NoReturn:
    raise BadInput(
        f"Target check failed: {file}, field `{field}`.",
        f"Found {shown_json(found)}; expected {expected}.",
        "Re-download the target's config.json; --model must name an intact model folder or Hub repo.",
    )
