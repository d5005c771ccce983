"""The CPU side of the GPU proof kit (benchmarks/gpu): what CI can check without a GPU.

The runs themselves need an H100 or H200 (benchmarks/gpu/README.md); here: the wheel set is pinned
and hashed, trimming and splitting round-trip, the driver plans every phase of the call plan
without starting anything (the dry runs), and the locally built models load in SGLang's own
config, tokenizer and processor code, with the constant target's greedy token known. The
driver's verdict, merge, record and server reuse: test_gpu_driver.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from eagle3_patch.serve.dialect import SCHEDULER_FLAG, LaunchDialect
from eagle3_patch.serve.plan import build_plan

from support.gpukit import KIT, load
from support.realenv import ensure_real_venv

runtime = load("runtime")
driver = load("driver")
servers = load("servers")


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


def _dry_run(tmp_path, *args: str) -> str:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(KIT / "driver.py"), "run", "--dry-run", "--out", str(out),
                           "--work", str(tmp_path / "w"), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not out.exists()  # nothing started, nothing written
    return done.stdout


REAL_PHASES = "prep,capture,real-plain,real-eagle3,real-wrong,real-inmemory"


def _launch(stdout: str, name: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(f"  start {name} "))


@pytest.mark.parametrize(("gpu", "eagle3_running"), [("h100", "12"), ("h200", "59")])
def test_dry_run_of_the_call_plan_prints_every_command_with_the_cards_memory_flags(tmp_path, gpu, eagle3_running):
    stdout = _dry_run(tmp_path, "--phases", REAL_PHASES, "--prestart", "real-plain", "--dry-run-gpu", gpu)
    for phase in REAL_PHASES.split(","):
        assert f"== {phase} " in stdout
    assert "gpu_probe.py" in stdout
    assert "build_models.py" in stdout and "--kit capture-tiny" in stdout and "--kit capture-27b" in stdout
    for drafter in ("right", "later", "earlier"):
        assert f"--drafter {tmp_path}/w/models/capture-tiny/drafter-{drafter} --" in stdout
        assert f"--drafter {tmp_path}/w/models/capture-27b/drafter-{drafter} --" in stdout
    plain, right = _launch(stdout, "real-plain"), _launch(stdout, "real-right")
    for launch in (plain, right):  # the settings users keep: graphs on, the server's own warm-up
        assert "--cuda-graph-bs 1 2 4 8 16 32 64" in launch
        assert "--disable-cuda-graph" not in launch and "--skip-server-warmup" not in launch
    assert "--max-running-requests 64 --max-mamba-cache-size 64" in plain
    assert f"--max-running-requests {eagle3_running} " in right
    assert "sglang.launch_server" in plain and "eagle3_patch serve --model" in right
    assert stdout.count("--concurrency 1,4,16,64") == 2  # plain and right, each benchmarked alone
    # The in-memory server starts only after revert, and the prestarted server is the next call's.
    inmemory = stdout[stdout.index("== real-inmemory"):]
    assert inmemory.index("eagle3_patch revert --json") < inmemory.index("serve --in-memory --model")
    assert stdout.rstrip().splitlines()[-1].startswith("  start real-plain ")


def test_dry_run_of_the_first_proof_still_plans_its_phases(tmp_path):
    stdout = _dry_run(tmp_path, "--phases", "stock,patched,inmemory,load")
    for phase in ("stock", "patched", "inmemory"):
        assert f"== {phase}" in stdout
    assert "serve --in-memory --model" in stdout
    assert "--concurrency 1,4,16" in stdout
    assert "eagle3_patch revert --json" in stdout


PARSE_FLAGS = r"""
import argparse, json, sys
from sglang.srt.server_args import ServerArgs

parser = argparse.ArgumentParser()
ServerArgs.add_cli_args(parser)
keys = ("attention_backend", "cuda_graph_bs", "disable_cuda_graph", "context_length", "grammar_backend",
        "mem_fraction_static", "max_running_requests", "max_mamba_cache_size", "mamba_scheduler_strategy",
        "disable_radix_cache", "skip_server_warmup", "speculative_algorithm", "port")
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    parsed = parser.parse_args(argv)
    out[name] = {key: getattr(parsed, key) for key in keys}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_sglang_0512s_own_parser_reads_the_27b_launches_as_meant(tmp_path):
    phases_real = load("phases_real")
    run = SimpleNamespace(dry_run=True, dry_run_gpu="h100", models=str(tmp_path))
    plain = phases_real.real_argv(run, "real-plain")
    serve = phases_real.real_argv(run, "real-right")
    # What serve hands to SGLang: its plan, with the flags after `--` last.
    dialect = LaunchDialect(SCHEDULER_FLAG, "0.5.12", True, "0.5.12")
    eagle3 = build_plan(sys.executable, "target", "drafter", dialect, serve[serve.index("--") + 1:]).argv
    launches = {"plain": plain[3:], "eagle3": eagle3[3:]}
    done = subprocess.run([str(ensure_real_venv()), "-c", PARSE_FLAGS, json.dumps(launches)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("plain", "eagle3"):
        got = parsed[name]
        assert got["cuda_graph_bs"] == [1, 2, 4, 8, 16, 32, 64] and got["disable_cuda_graph"] is False
        assert got["attention_backend"] == "triton" and got["grammar_backend"] == "none"
        assert got["context_length"] == 4096 and got["skip_server_warmup"] is False
    assert parsed["plain"]["mamba_scheduler_strategy"] == "no_buffer" and parsed["plain"]["disable_radix_cache"]
    assert parsed["plain"]["max_running_requests"] == parsed["plain"]["max_mamba_cache_size"] == 64
    assert parsed["eagle3"]["mamba_scheduler_strategy"] == "extra_buffer"
    assert parsed["eagle3"]["speculative_algorithm"] == "EAGLE3"
    assert (parsed["eagle3"]["max_running_requests"], parsed["eagle3"]["max_mamba_cache_size"]) == (12, 60)
    assert parsed["plain"]["port"] == 31020 and parsed["eagle3"]["port"] == 31021


def test_driver_refuses_an_unknown_phase(tmp_path):
    done = subprocess.run([sys.executable, str(KIT / "driver.py"), "run", "--dry-run", "--out", str(tmp_path),
                           "--phases", "stock,warp"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown phase(s) warp" in done.stderr


def test_traceback_excerpt_keeps_the_header_and_the_exception_line():
    log = ("INFO fired up\n[2026-12-02 10:00:00] Traceback (most recent call last):\n"
           '  File "qwen3_vl.py", line 1284, in forward\n    hidden_states, aux_hidden_states = hidden_states\n'
           "ValueError: not enough values to unpack (expected 2, got 1)\nINFO later line\n")
    excerpt = servers.traceback_excerpt(log)
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


def test_committed_record_is_what_render_makes_of_its_json_and_every_failed_check_is_explained():
    results = json.loads((KIT / "results.json").read_text())
    render = load("render_results").render
    assert (KIT / "RESULTS.md").read_text() == render(results)
    assert driver.verdict(results) == results["verdict"]
    # A failed check stays in the record as measured; a note must name it and say why.
    failed = [name for name, ok in results["verdict"].items() if not ok]
    assert results["verdict"] and all(any(name in note for note in results["notes"]) for name in failed), failed
    assert {"stock", "patched", "inmemory", "load"} <= set(results["phases"])
