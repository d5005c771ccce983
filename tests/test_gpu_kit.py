"""The CPU side of the GPU proof kit (benchmarks/gpu): what CI can check without a GPU.

The runs themselves need an H200 (benchmarks/gpu/README.md); here: the wheel set is pinned and
hashed, trimming and splitting round-trip, the driver plans every phase without starting
anything, its verdict follows the recorded figures, and the locally built models load in
SGLang's own config, tokenizer and processor code, with the constant target's greedy token known.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_kit_{name}", KIT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(KIT))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(KIT))
    return module


runtime = _module("runtime")
driver = _module("driver")


def test_runtime_lock_pins_every_wheel_by_version_and_hash():
    rows = runtime.parse_lock((KIT / "runtime-0.5.12.txt").read_text())
    names = {runtime._canonical(name): version for name, version, _ in rows}
    assert names["sglang"] == "0.5.12"
    assert names["transformers"] == "5.6.0"  # 0.5.12's pin; the image's 5.17 breaks its config registry
    assert names["xgrammar"] == "0.2.0"  # 0.2.9 fails against apache-tvm-ffi 0.1.9
    assert "libcst" in names  # eagle3-patch's own, not in the image
    assert not set(names) & set(runtime.EXCLUDED)
    assert len(rows) == len(names) > 50


def test_lock_parser_refuses_a_line_without_a_hash():
    with pytest.raises(ValueError, match="line 2"):
        runtime.parse_lock("# comment\nsglang==0.5.12\n")


def test_trim_removes_exactly_the_files_the_runs_never_load(tmp_path):
    keep = ["sgl_kernel/__init__.py", "sgl_kernel/sm90/common_ops.abi3.so", "sglang/srt/models/qwen3_5.py"]
    drop = ["sgl_kernel/flash_ops.abi3.so", "sgl_kernel/sm100/common_ops.abi3.so", "sgl_kernel/sm90/libx_static.a",
            "bin/fastapi"]
    for name in keep + drop:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "pkg" / "shipped_empty").mkdir(parents=True)
    assert runtime.trim(str(tmp_path)) == sorted(drop)
    assert (tmp_path / "pkg" / "shipped_empty").is_dir()  # only what the trim emptied goes
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(keep)
    assert not (tmp_path / "sgl_kernel" / "sm100").exists()


def test_split_parts_joined_in_order_give_back_the_tree(tmp_path):
    site = tmp_path / "site"
    for index in range(20):
        path = site / f"pkg{index % 3}" / f"m{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(3000))  # incompressible, so the stream needs several parts
    parts = runtime.pack(str(site), str(tmp_path / "carry"), part_bytes=16 * 1024)
    assert len(parts) >= 3
    assert all(os.path.getsize(p) <= 16 * 1024 for p in parts)
    # What on_device.sh does: the parts in numeric order, one stream, xz, tar.
    ordered = sorted(parts, key=lambda p: int(p.rsplit(".", 1)[1]))
    joined = tmp_path / "joined.tar.xz"
    joined.write_bytes(b"".join(Path(p).read_bytes() for p in ordered))
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(joined, "r:xz") as archive:
        archive.extractall(out, filter="data")
    for path in site.rglob("*.py"):
        assert (out / path.relative_to(site)).read_bytes() == path.read_bytes()


def test_driver_dry_run_plans_every_phase_and_starts_nothing(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(KIT / "driver.py"), "run", "--dry-run", "--out", str(out), "--work", str(tmp_path / "w")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for phase in ("stock", "patched", "inmemory"):
        assert f"== {phase}" in done.stdout
    assert "serve --in-memory --model" in done.stdout
    assert "--concurrency 1,4,16" in done.stdout
    assert "eagle3_patch revert --json" in done.stdout
    assert not list(out.glob("server-*.log"))  # no server was started


def test_driver_refuses_an_unknown_phase(tmp_path):
    done = subprocess.run([sys.executable, str(KIT / "driver.py"), "run", "--dry-run", "--out", str(tmp_path),
                           "--phases", "stock,warp"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown phase(s) warp" in done.stderr


def _summary(tau, compared=12, mismatches=0, divergences=()):
    return {"summary": {"tau": tau, "compared": compared, "mismatches": mismatches,
                        "match_rate": (compared - mismatches) / compared, "divergences": list(divergences)}}


def test_verdict_passes_only_inside_the_stated_bounds():
    good = {"phases": {
        "stock": {"outcome": {"crashed": True, "generate": {"http_status": None}}},
        "patched": {"bench-agree": _summary(3.96), "bench-random": _summary(1.02, mismatches=2, divergences=[
            {"verdict": "near-tie"}, {"verdict": "real"}])},
    }}
    assert all(driver.verdict(good).values())
    bad = {"phases": {"patched": {"bench-agree": _summary(3.9, mismatches=1),
                                  "bench-random": _summary(1.4, divergences=[{"verdict": "unexplained"}])}}}
    assert not any(driver.verdict(bad).values())


def test_traceback_excerpt_keeps_the_header_and_the_exception_line():
    log = ("INFO fired up\n[2026-12-02 10:00:00] Traceback (most recent call last):\n"
           '  File "qwen3_vl.py", line 1284, in forward\n    hidden_states, aux_hidden_states = hidden_states\n'
           "ValueError: not enough values to unpack (expected 2, got 1)\nINFO later line\n")
    excerpt = driver.traceback_excerpt(log)
    assert excerpt.startswith("Traceback (most recent call last):")
    assert excerpt.endswith("ValueError: not enough values to unpack (expected 2, got 1)")
    assert "later line" not in excerpt


CHECK_MODELS = r"""
import json, sys
from safetensors import safe_open
import torch
import sglang  # registers SGLang's own config classes
from sglang.srt.utils.hf_transformers_utils import get_config, get_processor, get_tokenizer
from transformers import Qwen3_5ForConditionalGeneration

models = sys.argv[1]
report = {}
for name in ("target-const", "target-random"):
    folder = f"{models}/{name}"
    config = get_config(folder, trust_remote_code=True)
    tokenizer = get_tokenizer(folder, trust_remote_code=True)
    text = "Explain why the sky is blue."
    ids = tokenizer.encode(text)
    processor = get_processor(folder, trust_remote_code=True)
    model = Qwen3_5ForConditionalGeneration.from_pretrained(folder, dtype=torch.bfloat16)
    logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    report[name] = {
        "config": type(config).__name__, "layers": config.text_config.layers_block_type,
        "round_trip": tokenizer.decode(ids) == text, "processor": type(processor).__name__,
        "max_abs_logit": logits.abs().max().item(), "argmax": logits.argmax(-1).tolist(),
    }
for name in ("drafter-agree", "drafter-random"):
    with safe_open(f"{models}/{name}/model.safetensors", "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    report[name] = {"names": sorted(tensors), "norm_zero": bool((tensors["norm.weight"] == 0).all()),
                    "hot0": int(tensors["d2t"][0]), "t2d": int(tensors["t2d"].sum()),
                    "config": json.load(open(f"{models}/{name}/config.json"))}
print(json.dumps(report))
"""


@pytest.mark.slow
def test_built_models_load_in_sglang_and_the_constant_target_always_picks_token_0(tmp_path):
    from realenv import ensure_real_venv

    python = str(ensure_real_venv())
    models = tmp_path / "models"
    built = subprocess.run([python, str(KIT / "build_models.py"), str(models)], capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    digests = json.loads(built.stdout)
    again = subprocess.run([python, str(KIT / "build_models.py"), str(tmp_path / "again")], capture_output=True,
                           text=True, timeout=600)
    assert json.loads(again.stdout) == digests  # same seed, same bytes: the record names them
    script = tmp_path / "check.py"
    script.write_text(CHECK_MODELS)
    checked = subprocess.run([python, str(script), str(models)], capture_output=True, text=True, timeout=600)
    assert checked.returncode == 0, checked.stderr[-3000:]
    report = json.loads(checked.stdout.strip().splitlines()[-1])
    const, random = report["target-const"], report["target-random"]
    assert const["config"] == random["config"] == "Qwen3_5Config"
    # SGLang's own config property, which the first GPU attempt died in (no full_attention_interval).
    assert const["layers"] == ["linear_attention"] * 3 + ["attention"] + ["linear_attention"] * 3 + ["attention"]
    assert const["round_trip"] and const["processor"] == "Qwen3VLProcessor"
    # The agreeing pair's premise, in the reference implementation: every logit is exactly 0,
    # so greedy decoding picks token 0 at every position.
    assert const["max_abs_logit"] == 0.0 and set(const["argmax"]) == {0}
    assert random["max_abs_logit"] > 1.0 and len(set(random["argmax"])) > 1
    agree = report["drafter-agree"]
    assert agree["norm_zero"] and agree["hot0"] == 0 and agree["t2d"] == 512
    assert not report["drafter-random"]["norm_zero"]
    assert agree["config"]["eagle_config"]["eagle_aux_hidden_state_layer_ids"] == [1, 3, 5]
    assert {"d2t", "t2d", "fc.weight", "midlayer.self_attn.q_proj.weight", "lm_head.weight"} <= set(agree["names"])


def test_committed_record_is_what_render_makes_of_its_json_and_every_check_passed():
    results = json.loads((KIT / "results.json").read_text())
    render = _module("render_results").render
    assert (KIT / "RESULTS.md").read_text() == render(results)
    assert driver.verdict(results) == results["verdict"]
    assert results["verdict"] and all(results["verdict"].values())
    assert {"stock", "patched", "inmemory", "load"} <= set(results["phases"])
