"""The capture kits of the GPU proof (benchmarks/gpu/build_models.py --kit capture-*), checked on
the CPU: the construction against transformers' ``output_hidden_states`` and SGLang 0.5.12's real
drafter (capture_probe.py), and the 27B shape's files against transformers' naming and SGLang's
loaders (kit_files_probe.py).

All but the CLI's refusal run in the real-SGLang venv (realenv.py: torch 2.11, transformers 5.6.0,
SGLang 0.5.12) and are slow: they build models and import SGLang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import PROBES, REPO
from support.realenv import ensure_real_venv

KIT = REPO / "benchmarks" / "gpu"
PROMPT = "Explain why the sky is blue in two sentences."
OWN_DELIVERY = {"drafter-right": "configured", "drafter-later": "later", "drafter-earlier": "earlier"}
# The 27B ids and width on a model a CPU test can run: 64 layers 5120 wide, all else small.
WIDE_64 = {
    "text": {"vocab_size": 1024, "hidden_size": 5120, "intermediate_size": 16, "num_hidden_layers": 64,
             "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64, "linear_num_key_heads": 1,
             "linear_num_value_heads": 1, "linear_key_head_dim": 64, "linear_value_head_dim": 64},
    "vision": {"out_hidden_size": 5120},
    "drafter": {"hidden_size": 5120, "intermediate_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1,
                "head_dim": 64},
    "aux_layer_ids": [1, 31, 60],
}
BUILD_WIDE_64 = """
import json, sys
sys.path.insert(0, sys.argv[1])
from capture_kit import KitSpec, build_kit
from shapes import TINY_DRAFTER, TINY_TEXT, TINY_VISION
wide = json.loads(sys.argv[3])
spec = KitSpec("capture-64-wide", {**TINY_TEXT, **wide["text"]}, {**TINY_VISION, **wide["vision"]},
               {**TINY_DRAFTER, **wide["drafter"]}, wide["aux_layer_ids"])
print(json.dumps(build_kit(sys.argv[2], spec)))
"""
# write_sparse against safetensors' own writer, on tensors of every dtype the kits write.
SPARSE_AGAINST_SAVE_FILE = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from safetensors.torch import save_file
from sparse_safetensors import write_sparse
dense = {"lm_head.weight": torch.zeros(6, 4, dtype=torch.bfloat16), "d2t": torch.arange(5),
         "t2d": torch.tensor([True, False, True, False]), "zero.weight": torch.zeros(3, 2, 2, dtype=torch.bfloat16)}
dense["lm_head.weight"][1, 2] = 2.5
dense["lm_head.weight"][3] = -1.0
rows = {"lm_head.weight": dense["lm_head.weight"][:4], "d2t": dense["d2t"], "t2d": dense["t2d"]}
specs = {name: (tensor.dtype, tuple(tensor.shape)) for name, tensor in dense.items()}
write_sparse(sys.argv[2] + "/sparse.safetensors", specs, rows)
save_file(dense, sys.argv[2] + "/dense.safetensors", metadata={"format": "pt"})
"""


def _run_json(argv: list[str], timeout: int = 900) -> dict:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def _shifted(ids: list[int], shift: int) -> list[int]:
    return [layer + shift for layer in ids]


def _deliveries(ids: list[int], **extra: list[int]) -> dict:
    return {"configured": None, "later": _shifted(ids, 1), "earlier": _shifted(ids, -1), **extra}


def _probe(real_python: str, kit: Path, deliveries: dict) -> dict:
    return _run_json([real_python, str(PROBES / "capture_probe.py"), str(kit), PROMPT,
                      "--deliveries", json.dumps(deliveries)])


def _assert_token_0_exactly_from_the_layers_each_drafter_was_built_for(report: dict, ids: list[int]) -> None:
    assert set(report["drafters"]) == set(OWN_DELIVERY)
    for name, drafter in report["drafters"].items():
        assert drafter["configured_ids"] == ids  # all three configure the same ids
        for label, run in drafter["runs"].items():
            # extend: every prompt position, from the target's states; decode: the next draft step,
            # fed the drafter's own hidden state (fc skipped), proposes the same token.
            expected = {0} if label == OWN_DELIVERY[name] else {2}  # draft id 1 = target id 2: rejected
            assert set(run["extend"]) | set(run["decode"]) == expected, (name, label, run)


def _assert_target_records_each_layer_and_greedy_picks_token_0(report: dict, layers: int) -> None:
    assert report["versions"]["sglang"] == "0.5.12"
    assert report["layers"] == layers
    assert report["target"]["max_abs_logit"] == 0.0 and set(report["target"]["argmax"]) == {0}
    stream = report["target"]["stream"]
    assert 0.98 <= stream["written_min"] <= stream["written_max"] <= 1.02  # channel k after layer k
    assert stream["stray_max"] == 0.0 and stream["bias_min"] == stream["bias_max"] == 1.0


def _comparable(summary: dict) -> dict:
    """A build summary without what differs between two identical builds: time, place, and the
    blocks a filesystem chose to allocate."""
    folders = {folder: {name: {key: value for key, value in record.items() if key != "allocated_bytes"}
                        for name, record in files.items()} for folder, files in summary["folders"].items()}
    return {**{key: value for key, value in summary.items() if key not in ("seconds", "path", "allocated_bytes")},
            "folders": folders}


def _sparse_files_supported(folder: Path) -> bool:
    probe = folder / "sparse-probe"
    with open(probe, "wb") as handle:
        handle.truncate(1 << 30)
    allocated = os.stat(probe).st_blocks * 512
    probe.unlink()
    return allocated < (1 << 20)


def test_build_models_refuses_an_unknown_kit_and_names_the_known_ones(tmp_path):
    done = subprocess.run([sys.executable, str(KIT / "build_models.py"), str(tmp_path), "--kit", "capture-70b"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "invalid choice: 'capture-70b'" in done.stderr
    assert "'capture-tiny'" in done.stderr and "'capture-27b'" in done.stderr
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def real_python() -> str:
    return str(ensure_real_venv())


@pytest.fixture(scope="module")
def tiny(real_python, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny")
    summary = _run_json([real_python, str(KIT / "build_models.py"), str(out), "--kit", "capture-tiny"])
    return out / "capture-tiny", summary


@pytest.mark.slow
def test_sparse_writer_gives_the_bytes_safetensors_writes(real_python, tmp_path):
    done = subprocess.run([real_python, "-c", SPARSE_AGAINST_SAVE_FILE, str(KIT), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "sparse.safetensors").read_bytes() == (tmp_path / "dense.safetensors").read_bytes()


@pytest.mark.slow
def test_tiny_kit_rebuilt_gives_the_same_bytes(real_python, tiny, tmp_path):
    kit, summary = tiny
    again = _run_json([real_python, str(KIT / "build_models.py"), str(tmp_path), "--kit", "capture-tiny"])
    assert _comparable(again) == _comparable(summary)
    for path in sorted(kit.rglob("*")):
        if path.is_file():
            assert (tmp_path / "capture-tiny" / path.relative_to(kit)).read_bytes() == path.read_bytes(), path
    assert set(summary["folders"]) == {"target", "drafter-right", "drafter-later", "drafter-earlier"}


@pytest.mark.slow
def test_tiny_kit_proposes_token_0_exactly_from_the_layers_each_drafter_was_built_for(real_python, tiny):
    kit, summary = tiny
    ids = summary["construction"]["aux_layer_ids"]
    assert ids == [1, 3, 5]
    assert summary["construction"]["built_for"] == {
        "drafter-right": ids, "drafter-later": _shifted(ids, 1), "drafter-earlier": _shifted(ids, -1)}
    # SGLang's default for 8 layers flags [2, 4, 5]: the outputs of [1, 3, 4], one slot wrong.
    report = _probe(real_python, kit, _deliveries(ids, sglang_default=[1, 3, 4]))
    _assert_target_records_each_layer_and_greedy_picks_token_0(report, 8)
    _assert_token_0_exactly_from_the_layers_each_drafter_was_built_for(report, ids)
    right = report["drafters"]["drafter-right"]["runs"]
    assert right["configured"]["fed_back_width"] == 256
    assert right["configured"]["top_two_logits"] == [24.0, 20.0]  # 3 features against 2.5, in bf16
    assert min(run["min_gap"] for run in right.values()) >= 4.0


@pytest.mark.slow
def test_64_layer_5120_wide_kit_keeps_the_margins_at_the_27b_ids(real_python, tmp_path):
    summary = _run_json([real_python, "-c", BUILD_WIDE_64, str(KIT), str(tmp_path), json.dumps(WIDE_64)])
    ids = WIDE_64["aux_layer_ids"]
    assert summary["construction"]["built_for"]["drafter-later"] == [2, 32, 61]  # SGLang's default ids
    report = _probe(real_python, Path(summary["path"]), _deliveries(ids, one_slot_late=[1, 31, 61]))
    _assert_target_records_each_layer_and_greedy_picks_token_0(report, 64)
    _assert_token_0_exactly_from_the_layers_each_drafter_was_built_for(report, ids)
    right = report["drafters"]["drafter-right"]["runs"]
    assert right["configured"]["fed_back_width"] == 5120
    # bf16 logits near 107 against 89: far beyond bf16's step there (0.5).
    assert min(run["min_gap"] for run in right.values()) >= 10.0


@pytest.mark.slow
def test_27b_kit_is_qwen36_27b_as_transformers_names_it_in_sparse_files_sglang_loads(real_python, tmp_path):
    if not _sparse_files_supported(tmp_path):
        pytest.skip(f"the filesystem of {tmp_path} allocates blocks for holes: the 27B files would take 58 GB")
    summary_path = tmp_path / "summary.json"
    summary = _run_json([real_python, str(KIT / "build_models.py"), str(tmp_path), "--kit", "capture-27b"])
    summary_path.write_text(json.dumps(summary))
    kit = tmp_path / "capture-27b"
    target = kit / "target"
    shards = sorted(target.glob("model-*.safetensors"))
    assert len(shards) == 12 and shards[0].name == "model-00001-of-00012.safetensors"
    apparent = sum(os.stat(path).st_size for path in kit.rglob("*.safetensors"))
    allocated = sum(os.stat(path).st_blocks * 512 for path in kit.rglob("*.safetensors"))
    assert 54.7e9 < sum(os.stat(path).st_size for path in shards) < 54.8e9
    assert apparent == summary["apparent_bytes"] and allocated < 64 << 20

    report = _run_json([real_python, str(PROBES / "kit_files_probe.py"), str(kit), str(summary_path)])
    found = report["target"]
    assert found["config"] == "Qwen3_5Config"  # SGLang's own config class accepts config.json
    assert found["layers_block_type"] == (["linear_attention"] * 3 + ["attention"]) * 16
    assert (found["hidden_size"], found["vocab_size"]) == (5120, 248320)
    assert found["round_trip"] and found["processor"] == "Qwen3VLProcessor"
    names = {name: [dtype, shape] for name, (dtype, shape) in found["headers"].items()}
    assert len(names) == 1184 and found["index_matches_files"]
    assert names == {name: ["BF16", shape] for name, (dtype, shape) in found["transformers"].items()}
    assert {dtype for dtype, _ in found["transformers"].values()} == {"torch.bfloat16"}
    assert names["model.language_model.layers.3.self_attn.q_proj.weight"] == ["BF16", [12288, 5120]]  # gated
    assert names["model.language_model.layers.0.linear_attn.in_proj_qkv.weight"] == ["BF16", [10240, 5120]]
    assert names["model.visual.pos_embed.weight"] == ["BF16", [2304, 1152]]
    read = found["read_back"]
    assert len(read["exact"]) == 1 + 3 * 64 and all(read["exact"].values())
    assert all(read["zero_after"].values())
    assert len(read["zero_whole"]) == 12 and all(zero for _, zero in read["zero_whole"].values())
    for name, drafter in report["drafters"].items():
        assert drafter["architectures"] == ["LlamaForCausalLMEagle3"] and drafter["draft_vocab_size"] == 32000
        assert drafter["aux_layer_ids"] == [1, 31, 60]
        assert drafter["headers"]["fc.weight"] == ["BF16", [5120, 15360]]
        assert drafter["headers"]["midlayer.self_attn.q_proj.weight"] == ["BF16", [4096, 10240]]  # 2 x hidden in
        assert drafter["headers"]["d2t"] == ["I64", [32000]] and drafter["headers"]["t2d"] == ["BOOL", [248320]]
        assert all(drafter["read_back"]["exact"].values()), name
        assert all(zero for _, zero in drafter["read_back"]["zero_whole"].values())
