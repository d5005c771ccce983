"""Drafter validation on real-format files: each refusal names file, field, found and expected."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest

from eagle3_patch.errors import BadInput
from eagle3_patch.serve.checkpoint import read_header as read_safetensors_header
from eagle3_patch.serve.validate import TargetText, check_drafter, target_text_config

from support.serve_fixtures import (
    DRAFT_VOCAB, HIDDEN, LAYERS, VOCAB, drafter_config, drafter_tensors, hub_snapshot, write_drafter,
    write_target,
)



@pytest.fixture
def target(tmp_path: Path) -> TargetText:
    text, _ = target_text_config(str(write_target(tmp_path / "Qwen3.6-27B")))
    assert text is not None
    return text


def refusal(excinfo: pytest.ExceptionInfo[BadInput]) -> str:
    return excinfo.value.message


@pytest.mark.parametrize("variant", ["compressed", "full"])
def test_good_drafter_passes_every_check(variant: str, tmp_path: Path, target: TargetText) -> None:
    folder = write_drafter(tmp_path / variant, variant)

    report = check_drafter(folder, target)

    assert report.architecture == "LlamaForCausalLMEagle3"
    assert (report.hidden_size, report.aux_layer_ids) == (HIDDEN, (1, 31, 60))
    assert report.draft_vocab_size == (DRAFT_VOCAB if variant == "compressed" else None)
    assert any("matches the target" in note for note in report.notes)
    assert any(f"fit the target's {LAYERS} layers" in note for note in report.notes)


def test_reads_text_config_nested_or_flat(tmp_path: Path) -> None:
    nested, _ = target_text_config(str(write_target(tmp_path / "vl", 4096, 36, nested=True)))
    flat, _ = target_text_config(str(write_target(tmp_path / "text", 2048, 28, nested=False)))

    assert (nested.hidden_size, nested.num_hidden_layers) == (4096, 36)
    assert (flat.hidden_size, flat.num_hidden_layers) == (2048, 28)


def test_target_from_the_local_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_target(hub_snapshot(tmp_path, "Qwen/Qwen3.6-27B"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    text, skipped = target_text_config("Qwen/Qwen3.6-27B")

    assert (text.hidden_size, text.num_hidden_layers, skipped) == (HIDDEN, LAYERS, "")
    assert "snapshots" in str(text.source)


def test_target_not_cached_skips_the_checks_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # online, SGLang can fetch it
    text, skipped = target_text_config("Qwen/Qwen3.6-27B")

    report = check_drafter(write_drafter(tmp_path / "compressed"), text, skipped)

    assert text is None
    assert [n for n in report.notes if "not checked" in n] == [
        "hidden size and aux layer ids not checked against the target: "
        "Qwen/Qwen3.6-27B config.json is not in the local Hugging Face cache (SGLang will download it)"
    ]


def test_wrong_architecture(tmp_path: Path, target: TargetText) -> None:
    folder = write_drafter(tmp_path / "d", config=drafter_config(architectures=["LlamaForCausalLMEagle"]))

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, target)

    message = refusal(excinfo)
    assert str(folder / "config.json") in message and "`architectures`" in message
    assert 'Found ["LlamaForCausalLMEagle"]' in message and "LlamaForCausalLMEagle3" in message


def test_hidden_size_mismatch(tmp_path: Path, target: TargetText) -> None:
    folder = write_drafter(tmp_path / "d", config=drafter_config(hidden_size=4096))

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, target)

    message = refusal(excinfo)
    assert str(folder / "config.json") in message and "`hidden_size`" in message
    assert "Found 4096; expected 5120" in message and str(target.source) in message


@pytest.mark.parametrize("last_id", [63, 70])
def test_aux_layer_id_beyond_the_target(last_id: int, tmp_path: Path, target: TargetText) -> None:
    config = drafter_config(eagle_config={"eagle_aux_hidden_state_layer_ids": [1, 31, last_id]})
    folder = write_drafter(tmp_path / "d", config=config)

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, target)

    message = refusal(excinfo)
    assert "`eagle_config.eagle_aux_hidden_state_layer_ids`" in message and str(folder / "config.json") in message
    assert f"Found [1, 31, {last_id}]" in message and f"id + 1 < {LAYERS}" in message
    assert f"out of range: [{last_id}]" in message


@pytest.mark.parametrize(("overrides", "field", "found"), [
    ({"eagle_config": {"eagle_aux_hidden_state_layer_ids": []}}, "eagle_config.eagle_aux_hidden_state_layer_ids",
     "Found []"),
    ({"eagle_config": {"eagle_aux_hidden_state_layer_ids": [1, 1, 60]}},
     "eagle_config.eagle_aux_hidden_state_layer_ids", "Found [1, 1, 60]"),
    ({"eagle_config": {"eagle_aux_hidden_state_layer_ids": [1, 31, 10**20]}},
     "eagle_config.eagle_aux_hidden_state_layer_ids", f"Found [1, 31, {10**20}]"),
    ({"hidden_size": "5120"}, "hidden_size", 'Found "5120"'),
    ({"hidden_size": 10**30}, "hidden_size", f"Found {10**30}"),
    ({"hidden_size": 2**20}, "hidden_size", f"Found {2**20}"),
    ({"vocab_size": 10**12}, "vocab_size", f"Found {10**12}"),
    ({"draft_vocab_size": 2**40}, "draft_vocab_size", f"Found {2**40}"),
], ids=["aux-empty", "aux-repeated", "aux-absurd", "hidden-string", "hidden-absurd", "hidden-huge", "vocab-absurd",
        "draft-vocab-absurd"])
def test_a_drafter_config_value_no_drafter_can_have_is_exit_8_naming_the_field(
        overrides: dict, field: str, found: str, tmp_path: Path) -> None:
    folder = write_drafter(tmp_path / "d", config=drafter_config(**overrides))

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, None)  # no target to compare with: the config must hold up on its own

    assert excinfo.value.exit_code == 8
    assert f"field `{field}`" in excinfo.value.what and found in excinfo.value.why


def test_an_absurd_target_hidden_size_is_refused_naming_the_field(tmp_path: Path) -> None:
    model = write_target(tmp_path / "model", hidden=10**30)

    with pytest.raises(BadInput) as excinfo:
        target_text_config(str(model))

    assert "field `text_config.hidden_size`" in excinfo.value.what and f"Found {10**30}" in excinfo.value.why


def test_last_aux_id_that_fits(tmp_path: Path, target: TargetText) -> None:
    config = drafter_config(eagle_config={"eagle_aux_hidden_state_layer_ids": [1, 31, LAYERS - 2]})

    report = check_drafter(write_drafter(tmp_path / "d", config=config), target)

    assert report.aux_layer_ids == (1, 31, LAYERS - 2)


def test_reduced_vocab_without_d2t(tmp_path: Path, target: TargetText) -> None:
    tensors = drafter_tensors("compressed")
    del tensors["d2t"]
    folder = write_drafter(tmp_path / "d", "compressed", tensors=tensors)

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, target)

    message = refusal(excinfo)
    assert str(folder / "model.safetensors") in message and "`tensor d2t`" in message
    assert "Found absent" in message and f"draft_vocab_size {DRAFT_VOCAB} < vocab_size {VOCAB}" in message


def test_d2t_of_another_draft_vocab(tmp_path: Path, target: TargetText) -> None:
    tensors = {**drafter_tensors("compressed"), "d2t": np.zeros((16000,), dtype=np.int64)}
    folder = write_drafter(tmp_path / "d", "compressed", tensors=tensors)

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, target)

    assert "Found [16000]; expected [32000]" in refusal(excinfo)


def test_missing_config_json(tmp_path: Path, target: TargetText) -> None:
    folder = write_drafter(tmp_path / "d")
    (folder / "config.json").unlink()

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, target)

    assert f"{folder / 'config.json'} not found" in refusal(excinfo)


def test_missing_weights(tmp_path: Path, target: TargetText) -> None:
    folder = write_drafter(tmp_path / "d")
    (folder / "model.safetensors").unlink()

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, target)

    assert f"{folder / 'model.safetensors'} not found" in refusal(excinfo)


@pytest.mark.parametrize(
    ("keep", "found", "expected"),
    [(4, "found a 4-byte file", "expected at least 8 bytes"), (200, "found ", "expected at most 192")],
    ids=["shorter-than-length-field", "header-cut-short"],
)
def test_truncated_safetensors_header(keep: int, found: str, expected: str, tmp_path: Path) -> None:
    folder = write_drafter(tmp_path / "d")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:keep])

    with pytest.raises(BadInput) as excinfo:
        read_safetensors_header(weights)

    message = refusal(excinfo)
    assert str(weights) in message and "`header length`" in message
    assert found in message and expected in message


def test_header_that_is_not_json(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes((6).to_bytes(8, "little") + b"{nope!" + b"\0" * 64)

    with pytest.raises(BadInput) as excinfo:
        read_safetensors_header(weights)

    assert str(weights) in refusal(excinfo) and "not valid JSON" in refusal(excinfo)


def test_header_is_read_without_loading_tensors(tmp_path: Path) -> None:
    folder = write_drafter(tmp_path / "d")

    header = read_safetensors_header(folder / "model.safetensors")

    assert header["d2t"]["shape"] == [DRAFT_VOCAB] and header["d2t"]["dtype"] == "I64"
    assert "__metadata__" not in header


def test_unreadable_config_json(tmp_path: Path, target: TargetText) -> None:
    folder = write_drafter(tmp_path / "d")
    (folder / "config.json").write_text(json.dumps(drafter_config())[:40])

    with pytest.raises(BadInput) as excinfo:
        check_drafter(folder, target)

    assert f"{folder / 'config.json'} is not readable JSON" in refusal(excinfo)


def test_model_folder_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty-model").mkdir()

    with pytest.raises(BadInput) as excinfo:
        target_text_config(str(tmp_path / "empty-model"))

    assert "has no config.json" in refusal(excinfo)


def test_model_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as excinfo:
        target_text_config(str(tmp_path / "nowhere"))

    assert "neither a folder nor a Hub repo id" in refusal(excinfo)
