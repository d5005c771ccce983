"""Malformed drafter and target inputs are exit 8 naming file and field, never an internal error;
sharded drafters are validated through their index."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
from safetensors.numpy import save_file

from eagle3_patch.cli import main
from eagle3_patch.errors import EXIT_BAD_INPUT, BadInput
from eagle3_patch.serve.checkpoint import INDEX_FILE
from eagle3_patch.serve.validate import check_drafter, target_text_config

from support.marks import first_fast
from support.releases import install_release
from support.serve_fixtures import (
    DRAFT_VOCAB, drafter_config, drafter_tensors, write_drafter, write_header, write_sharded, write_target,
)




@pytest.fixture(scope="module")
def sglang(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_release("0.5.12", tmp_path_factory.mktemp("site"))


def run_serve(sglang: Path, model: Path, drafter: Path, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    monkeypatch.setenv("PYTHONPATH", str(sglang.parent))  # the interpreter asked imports that SGLang
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--python", sys.executable, "--sglang-dir", str(sglang), "--model", str(model),
              "--drafter", str(drafter), "--dry-run", "--json"])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


HEADERS = {
    "d2t-is-a-list": b'{"d2t": [1, 2, 3]}',
    "array": b"[]",
    "string": b'"model"',
    "null": b"null",
    "number": b"12",
    "empty": b"",
    "shape-is-a-string": b'{"d2t": {"dtype": "I64", "shape": "32000", "data_offsets": [0, 8]}}',
    "shape-of-booleans": b'{"d2t": {"dtype": "I64", "shape": [true], "data_offsets": [0, 8]}}',
    "negative-dim": b'{"d2t": {"dtype": "I64", "shape": [-1], "data_offsets": [0, 8]}}',
    "dtype-number": b'{"d2t": {"dtype": 5, "shape": [32000], "data_offsets": [0, 8]}}',
    "offsets-reversed": b'{"d2t": {"dtype": "I64", "shape": [32000], "data_offsets": [8, 0]}}',
    "offsets-missing": b'{"d2t": {"dtype": "I64", "shape": [32000]}}',
    "metadata-list": b'{"__metadata__": [], "d2t": {"dtype": "I64", "shape": [32000], "data_offsets": [0, 8]}}',
    "deeply-nested": b"[" * 200_000 + b"]" * 200_000,
    "not-utf8": b'{"d2t\xff\xfe": 1}',
    "huge-number": b'{"d2t": {"dtype": "I64", "shape": [1e400], "data_offsets": [0, 8]}}',
}


@pytest.mark.parametrize("header", first_fast(*HEADERS.values()), ids=HEADERS.keys())
def test_malformed_header_is_bad_input_naming_the_file(header: bytes, tmp_path: Path, sglang: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    drafter = write_drafter(tmp_path / "compressed")
    write_header(drafter / "model.safetensors", header)

    code, out, err = run_serve(sglang, write_target(tmp_path / "target"), drafter, monkeypatch, capsys)

    assert code == EXIT_BAD_INPUT, err
    assert str(drafter / "model.safetensors") in err and "internal error" not in err
    assert json.loads(out)["exit_code"] == EXIT_BAD_INPUT   # --json: the error as one object


@pytest.mark.parametrize("length", [2**64 - 1, 2**63, 10**9, 73])
def test_header_length_beyond_the_file_is_bad_input(length: int, tmp_path: Path) -> None:
    drafter = write_drafter(tmp_path / "compressed")
    (drafter / "model.safetensors").write_bytes(length.to_bytes(8, "little") + b"{}")

    with pytest.raises(BadInput, match="`header length`"):
        check_drafter(drafter, None)


def test_randomly_corrupted_headers_never_crash(tmp_path: Path) -> None:
    drafter = write_drafter(tmp_path / "compressed")
    weights = drafter / "model.safetensors"
    pristine = weights.read_bytes()
    length = int.from_bytes(pristine[:8], "little")
    rng = random.Random(10)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(300):
        corrupt = bytearray(pristine[: 8 + length + 64])
        for _ in range(rng.randint(1, 4)):
            corrupt[rng.randrange(0, 8 + length)] = rng.randrange(256)
        weights.write_bytes(bytes(corrupt))
        try:
            check_drafter(drafter, None)
            outcomes["ok"] += 1
        except BadInput as exc:
            assert str(weights) in exc.what or str(drafter / "config.json") in exc.what
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100, outcomes


CONFIGS = {
    "hidden_size": True,
    "vocab_size": "248320",
    "draft_vocab_size": 0,
    "eagle_config": ["eagle_aux_hidden_state_layer_ids"],
    "eagle_config.eagle_aux_hidden_state_layer_ids": {"eagle_aux_hidden_state_layer_ids": [1, True, 60]},
    "architectures": "LlamaForCausalLMEagle3",
}


@pytest.mark.parametrize("field", first_fast(*CONFIGS), ids=CONFIGS.keys())
def test_malformed_drafter_config_field_is_named(field: str, tmp_path: Path, sglang: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    key = field.split(".")[0]
    drafter = write_drafter(tmp_path / "compressed", config=drafter_config(**{key: CONFIGS[field]}))

    code, _, err = run_serve(sglang, write_target(tmp_path / "target"), drafter, monkeypatch, capsys)

    assert code == EXIT_BAD_INPUT, err
    assert str(drafter / "config.json") in err and f"`{field}`" in err


@pytest.mark.parametrize(("text", "field"), first_fast(
    ([], "text_config"),
    ({"hidden_size": "5120", "num_hidden_layers": 64}, "text_config.hidden_size"),
    ({"hidden_size": 5120, "num_hidden_layers": True}, "text_config.num_hidden_layers"),
))
def test_malformed_target_config_field_is_named(text: object, field: str, tmp_path: Path, sglang: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "config.json").write_text(json.dumps({"model_type": "qwen3_5", "text_config": text}))

    code, _, err = run_serve(sglang, target, write_drafter(tmp_path / "compressed"), monkeypatch, capsys)

    assert code == EXIT_BAD_INPUT, err
    assert str(target / "config.json") in err and f"`{field}`" in err


def test_sharded_drafter_is_validated_through_its_index(tmp_path: Path, sglang: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    drafter = write_sharded(tmp_path / "compressed")

    code, out, err = run_serve(sglang, write_target(tmp_path / "target"), drafter, monkeypatch, capsys)

    assert code == 0, err
    assert json.loads(out)["argv"].count(str(drafter)) == 1
    assert any(f"reduced vocabulary {DRAFT_VOCAB}" in note for note in check_drafter(drafter, None).notes)


def test_sharded_drafter_without_d2t_is_refused_naming_the_index(tmp_path: Path) -> None:
    drafter = write_sharded(tmp_path / "compressed")
    save_file({"fc.weight": drafter_tensors()["fc.weight"]}, str(drafter / "model-00001-of-00002.safetensors"))

    with pytest.raises(BadInput) as excinfo:
        check_drafter(drafter, None)

    assert str(drafter / INDEX_FILE) in excinfo.value.what and "d2t" in excinfo.value.message


@pytest.mark.parametrize("weight_map", [
    [], {}, {"d2t": 3}, {"d2t": "../../etc/passwd"}, {"d2t": "/etc/passwd"}, {"d2t": "missing.safetensors"},
], ids=["list", "empty", "not-a-name", "parent-path", "absolute-path", "missing-shard"])
def test_malformed_index_is_bad_input(weight_map: object, tmp_path: Path) -> None:
    drafter = write_sharded(tmp_path / "compressed", weight_map)

    with pytest.raises(BadInput) as excinfo:
        check_drafter(drafter, None)

    assert "internal" not in excinfo.value.message


@pytest.mark.parametrize("shard", ["a\0b.safetensors", "", "."], ids=["nul", "empty", "dot"])
def test_an_index_naming_a_shard_no_file_can_have_is_bad_input_naming_its_weight_map(shard: str,
                                                                                     tmp_path: Path) -> None:
    # A NUL in the name was a ValueError from open(), exit 70; an empty name read the folder itself.
    drafter = write_sharded(tmp_path / "compressed", {"d2t": shard})

    with pytest.raises(BadInput) as excinfo:
        check_drafter(drafter, None)

    assert str(drafter / INDEX_FILE) in excinfo.value.what and "`weight_map`" in excinfo.value.what


FIELD_VALUES = [None, True, False, 0, -1, 5120, 2**70, 1.5, "", "x", [], [1], [True], ["a"], [[1]], {}, {"a": 1},
                {"eagle_aux_hidden_state_layer_ids": "x"}, {"eagle_aux_hidden_state_layer_ids": [99]}]


@pytest.mark.slow  # a random sweep; each kind of field error has its case above
def test_random_field_types_in_drafter_and_target_configs_never_crash(tmp_path: Path) -> None:
    drafter, target = write_drafter(tmp_path / "d"), write_target(tmp_path / "t")
    fields = ["architectures", "hidden_size", "vocab_size", "draft_vocab_size", "eagle_config"]
    rng = random.Random(10)
    refused = 0
    for _ in range(1500):
        config = drafter_config()
        for _ in range(rng.randint(1, 3)):
            config[rng.choice(fields)] = rng.choice(FIELD_VALUES)
        text = {"hidden_size": 5120, "num_hidden_layers": 64}
        text[rng.choice(["hidden_size", "num_hidden_layers"])] = rng.choice([*FIELD_VALUES, 5120, 64])
        (drafter / "config.json").write_text(json.dumps(config))
        (target / "config.json").write_text(json.dumps({"text_config": rng.choice([text, text, [], "x"])}))
        try:
            check_drafter(drafter, *target_text_config(str(target)))
        except BadInput as exc:
            named = (drafter / "config.json", drafter / "model.safetensors", target / "config.json")
            assert any(str(file) in exc.what for file in named) and "`" in exc.what
            refused += 1
    assert refused > 500
