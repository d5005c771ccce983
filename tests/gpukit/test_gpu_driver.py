"""The GPU driver's decisions, on CPU: the memory plan, the verdict on hand-made results (passing,
failing, partial), the merge of runs and whether a second one reproduced the first, the record
rendered from partial results, and the reuse of servers left by an earlier call, with real
processes standing in for SGLang."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
import numpy
from safetensors.numpy import save_file

from support.bench_standin import Script, ScriptedClock, StandIn, token_ids
from support.cli import bench_with_clock
from support.gpukit import KIT, STANDIN, load, standin_argv
from support.ports import free_port

driver = load("driver")
memory_plan = load("memory_plan")
record = load("record")
servers = load("servers")
figures = load("figures")
render = load("render_results").render

QWEN36_TEXT = {"linear_num_value_heads": 48, "linear_value_head_dim": 128, "linear_num_key_heads": 16,
               "linear_key_head_dim": 128, "linear_conv_kernel_dim": 4, "num_hidden_layers": 64,
               "full_attention_interval": 4}
TARGET_GIB, DRAFTER_GIB = 54.7e9 / 2**30, 1.3


# -- the memory plan ---------------------------------------------------------------------------------
def test_one_linear_attention_state_of_the_27b_is_sglangs_mamba_cache_per_req():
    # 48 linear layers x (bf16 conv window 10240 x 3 + float32 SSM state 48 x 128 x 128)
    assert memory_plan.linear_state_bytes(QWEN36_TEXT) == 48 * (10240 * 3 * 2 + 48 * 128 * 128 * 4)
    bf16 = memory_plan.linear_state_bytes({**QWEN36_TEXT, "mamba_ssm_dtype": "bfloat16"})
    assert bf16 == 48 * (10240 * 3 * 2 + 48 * 128 * 128 * 2)


@pytest.mark.parametrize(("free_gib", "eagle3_running"), [(79.1, 12), (139.8, 59)])
def test_plan_gives_eagle3_nine_states_a_request_and_the_plain_server_one(free_gib, eagle3_running):
    state = memory_plan.linear_state_bytes(QWEN36_TEXT) / 2**30
    plain = memory_plan.plan_server("plain", free_gib, TARGET_GIB, DRAFTER_GIB, state)
    eagle3 = memory_plan.plan_server("eagle3", free_gib, TARGET_GIB, DRAFTER_GIB, state)
    assert (plain.max_running_requests, plain.max_mamba_cache_size) == (64, 64)
    assert (eagle3.max_running_requests, eagle3.max_mamba_cache_size) == (eagle3_running, 5 * eagle3_running)
    # What the flags leave: weights, states and KV inside the static fraction, the reserve outside.
    seen = free_gib - memory_plan.CONTEXT_GIB  # what SGLang measures once its CUDA context exists
    static = seen * eagle3.mem_fraction_static
    held = TARGET_GIB + memory_plan.KV_GIB + 9 * eagle3.max_running_requests * state
    assert held <= static < held + 9 * state + 0.01 * free_gib
    assert seen - static >= memory_plan.RESERVE_GIB + DRAFTER_GIB + memory_plan.DRAFT_GIB
    # Beside a plain server, far fewer: the two 27B servers run one at a time.
    assert memory_plan.beside_plain(plain, free_gib, TARGET_GIB, DRAFTER_GIB, state) < eagle3_running / 4


def test_a_card_too_small_for_one_request_is_refused_with_the_figures():
    state = memory_plan.linear_state_bytes(QWEN36_TEXT) / 2**30
    with pytest.raises(memory_plan.DoesNotFit, match="one request needs 1.29 GiB"):
        memory_plan.plan_server("eagle3", 62.0, TARGET_GIB, DRAFTER_GIB, state)


def test_decode_reads_the_decoder_layers_and_lm_head_not_the_embedding_or_the_vision_tower(tmp_path):
    names = {"model.language_model.layers.0.mlp.up_proj.weight": (8, 4), "model.language_model.norm.weight": (4,),
             "lm_head.weight": (16, 4), "model.language_model.embed_tokens.weight": (16, 4),
             "model.visual.blocks.0.attn.qkv.weight": (12, 4), "mtp.fc.weight": (4, 4)}
    save_file({name: numpy.zeros(shape, numpy.float16) for name, shape in names.items()},
              str(tmp_path / "model-00001.safetensors"))
    parts = memory_plan.weight_bytes(str(tmp_path))
    assert parts == {"decoder_layers": 64, "final_norm": 8, "lm_head": 128, "embedding": 128, "vision": 96,
                     "other": 32}
    assert memory_plan.decode_read_bytes(parts) == 64 + 8 + 128


# -- hand-made results ---------------------------------------------------------------------------------
GPU = {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-1"}
INFO = {"url": "http://127.0.0.1:1", "model_path": "/m/target", "version": "0.5.12", "speculative_algorithm": None,
        "speculative_num_steps": None, "speculative_eagle_topk": None, "speculative_num_draft_tokens": None,
        "speculative_draft_model_path": None, "incremental_streaming_output": False, "context_length": 4096,
        "max_req_input_len": 4000}
E3_INFO = {**INFO, "speculative_algorithm": "EAGLE3", "speculative_num_steps": 3, "speculative_eagle_topk": 1,
           "speculative_num_draft_tokens": 4}


def bench_report(rates: dict[int, list[float]], tau: float | None, tokens: int = 128) -> dict:
    """A `bench --json` report of one server alone: per level, requests at the given decode rates."""
    requests = []
    for n, level_rates in rates.items():
        for rate in level_rates:
            decode_s = (tokens - 1) / rate
            requests.append({"concurrency": n, "output_tokens": tokens, "ttft_s": 0.05 + 0.001 * n,
                             "decode_s": decode_s, "decode_tok_s": rate,
                             "verify_ct": round((tokens - 1) / tau) if tau else None})
    levels = [{"concurrency": n, "eagle3": {"throughput_tok_s": n * statistics_mean(r) * 0.9}, "baseline": None}
              for n, r in rates.items()]
    return {"requests": requests, "levels": levels, "servers": {"eagle3": E3_INFO if tau else INFO}, "error": None}


def statistics_mean(values: list[float]) -> float:
    return sum(values) / len(values)


def alone(rates, tau, tokens=128) -> dict:
    return {"rc": 0, "summary": figures.summarise_alone(bench_report(rates, tau, tokens))}


def tiny(tau: float, mismatches: int = 0) -> dict:
    return {"summary": {"tau": tau, "compared": 12, "mismatches": mismatches, "match_rate": (12 - mismatches) / 12}}


def up() -> dict:
    return {"state": "up", "server_info": {"disable_cuda_graph": False},
            "log_figures": {"cuda_graph_bs": [1, 2, 4, 8, 13]}}


def real_results(right_tau: float = 4.0, wrong_tau: float = 1.03, identical: bool = True,
                 right_rates: list[float] | None = None, right_scale: float = 1.0, limit: float = 60.0,
                 plain_gpu: dict = GPU) -> dict:
    """Every issue-22 phase, measured. tau is tokens / verify passes of whole requests, so the
    figure recorded is 128 / round(127 / tau) (64 tokens for the wrong drafters)."""
    plain = {n: [50.0 - n * 0.1] * 12 for n in (1, 4, 16, 64)}
    right = {n: right_rates or [(150.0 - n) * right_scale] * 12 for n in (1, 4, 16, 64)}
    greedy = {"compared": 6, "differ": [] if identical else ["fox"], "identical": identical}
    return {"phases": {
        "prep": {"gpu": GPU, "card": {"name": GPU["name"], "bandwidth": {"best_gbs": 3000.0}},
                 "hbm": {"limit_tok_s": limit, "bytes_per_step": 5e10}},
        "capture": {"gpu": GPU, "bench-right": tiny(right_tau), "bench-later": tiny(wrong_tau, 12),
                    "bench-earlier": tiny(1.01, 12)},
        "real-plain": {"gpu": plain_gpu, "up": up(), "bench": alone(plain, None)},
        "real-eagle3": {"gpu": GPU, "up": up(), "greedy": greedy, "bench": alone(right, right_tau)},
        "real-wrong": {"gpu": GPU, "bench-later": alone({1: [40.0] * 12}, wrong_tau, 64),
                       "bench-earlier": alone({1: [39.0] * 12}, 1.0, 64)},
        "real-inmemory": {"gpu": GPU, "against_record": {"identical": True}, "greedy": greedy,
                          "bench": alone({1: [149.0] * 12}, right_tau), "models_tree": {"unchanged": True}},
    }}


def test_verdict_passes_a_complete_record_inside_every_bound():
    checks = record.verdict(real_results())
    assert checks and all(checks.values()), [k for k, ok in checks.items() if not ok]
    for name in ("capture_ran_through", "real_plain_up", "real_eagle3_up",
                 "capture_right_tau", "capture_later_tau", "real_right_tau", "real_right_identical",
                 "real_plain_cuda_graphs_on", "real_eagle3_levels", "real_plain_within_hbm_limit",
                 "real_earlier_tau", "real_inmemory_identical", "speed_model_single_stream",
                 "speed_model_every_level", "speed_model_from_later_drafter"):
        assert name in checks


@pytest.mark.parametrize(("change", "failing"), [
    ({"right_tau": 3.0}, {"capture_right_tau", "real_right_tau", "real_inmemory_right_tau"}),
    ({"wrong_tau": 1.31}, {"capture_later_tau", "real_later_tau"}),
    ({"identical": False}, {"real_right_identical", "real_inmemory_identical"}),
    ({"limit": 40.0}, {"real_plain_within_hbm_limit"}),
    # Half the requests at half the rate: the median rate is no longer what the pooled rounds
    # predict, by 11 %.
    ({"right_rates": [150.0] * 6 + [75.0] * 6}, {"speed_model_single_stream", "speed_model_every_level"}),
])
def test_verdict_fails_exactly_the_checks_whose_figure_is_out_of_bounds(change, failing):
    checks = record.verdict(real_results(**change))
    assert {name for name, ok in checks.items() if not ok} >= failing
    assert {name for name, ok in checks.items() if not ok} - failing <= {
        "speed_model_from_later_drafter", "speed_model_from_earlier_drafter"}


def test_verdict_of_a_partial_record_checks_only_what_ran():
    partial = real_results()
    for phase in ("real-eagle3", "real-wrong", "real-inmemory"):
        del partial["phases"][phase]
    checks = record.verdict(partial)
    assert all(checks.values())
    assert not {name for name in checks if name.startswith(("real_right", "speed_model", "real_inmemory"))}
    assert {"capture_right_tau", "real_plain_levels", "real_plain_within_hbm_limit"} <= set(checks)


def test_a_server_that_did_not_come_up_or_a_phase_that_broke_fails_by_name():
    broken = real_results()
    broken["phases"]["real-eagle3"]["up"] = {"state": "exited", "traceback": "ValueError"}
    broken["phases"]["real-wrong"]["driver_error"] = "Traceback ..."
    broken["phases"]["real-wrong"]["up-earlier"] = {"state": "skipped", "why": "90 s left"}
    checks = record.verdict(broken)
    assert not checks["real_eagle3_up"] and not checks["real_wrong_ran_through"]
    assert "real_wrong_up_earlier" not in checks  # skipped for the budget: not run, not failed
    text = render(broken)
    assert "- real-eagle3: server real-eagle3 exited (see its log and traceback in results.json)." in text
    assert "- real-wrong stopped early: `Traceback ...`" in text
    assert "- real-wrong: server earlier skipped (90 s left)." in text


def test_figures_of_different_gpus_are_never_joined():
    mixed = real_results(plain_gpu={"name": "NVIDIA H200", "uuid": "GPU-2"})
    checks = record.verdict(mixed)
    assert "speed_model_single_stream" not in checks and "real_plain_within_hbm_limit" not in checks


def test_join_feeds_bench_its_own_speed_model_from_two_servers_benchmarked_alone():
    plain = figures.summarise_alone(bench_report({1: [50.0] * 12, 4: [45.0] * 16}, None))
    right = figures.summarise_alone(bench_report({1: [150.0] * 12, 4: [120.0] * 16}, 4.0))
    joined = figures.join(plain, right)
    one, four = joined["levels"]
    # c = tau x plain rate / EAGLE-3 rate: a round costs 4 x 50 / 150 plain steps.
    assert one["speed_model"]["round_cost"] == pytest.approx(4 * 50 / 150, rel=0.01)
    assert one["speed_model"]["predicted_over_measured"] == pytest.approx(1.0, rel=0.01)
    assert four["decode_speedup"] == pytest.approx(120 / 45)
    assert joined["crossover"] == {"last_win": 4, "first_loss": None}


def _respond(clock: ScriptedClock, step: float, per_round: int | None):
    """A stand-in's answer: the prefill token, then ``per_round`` tokens every ``step`` seconds (a
    plain server, None: one token a step)."""
    def respond(body):
        n = body["sampling_params"]["max_new_tokens"]
        per = per_round or 1
        sizes = [1] + [per] * ((n - 1) // per) + ([(n - 1) % per] if (n - 1) % per else [])
        return Script(token_ids(body["text"], n), sizes, ttft=step, step=step,
                      verify_ct=len(sizes) - 1 if per_round else None)
    return respond


def _bench(clock, *args: str) -> dict:
    done = CliRunner().invoke(bench_with_clock(clock), [*args, "--bucket", "chat", "--runs", "2", "--warmup", "1",
                                                        "--max-new-tokens", "64", "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_two_servers_benchmarked_alone_join_to_the_model_bench_gives_with_both():
    # A plain step of 1/64 s, an EAGLE-3 round of 3/128 s bringing 4 tokens: c = 1.5.
    clock = ScriptedClock()
    with (StandIn(clock, _respond(clock, 3 / 128, 4)) as eagle3,
          StandIn(clock, _respond(clock, 1 / 64, None), speculative=False) as plain):
        alone = {name: figures.summarise_alone(_bench(clock, "--url", server.url))
                 for name, server in (("eagle3", eagle3), ("plain", plain))}
        both = _bench(clock, "--url", eagle3.url, "--baseline-url", plain.url)
    joined = figures.join(alone["plain"], alone["eagle3"])["levels"][0]["speed_model"]
    theirs = figures.speed_model_of(both)["single_stream"]
    for key in ("round_cost", "round_s", "plain_step_s", "rounds", "plain_steps", "tau", "predicted_speedup",
                "measured_speedup", "predicted_over_measured"):
        assert joined[key] == pytest.approx(theirs[key], rel=1e-9), key
    assert joined["round_cost"] == pytest.approx(1.5)
    # 63 tokens after the first chunk, in 16 rounds (the last brings 3): 16 x 3/128 s / 63.
    assert alone["eagle3"]["levels"][0]["itl_p50_ms"] == pytest.approx(1000 * 16 * 3 / 128 / 63)


def test_itl_percentiles_come_from_each_requests_decode_rate():
    summary = figures.summarise_alone(bench_report({1: [100.0] * 99 + [10.0]}, None))
    level = summary["levels"][0]
    assert level["itl_p50_ms"] == pytest.approx(10.0)
    assert level["itl_p99_ms"] == pytest.approx(10.0 + 0.01 * 90, rel=0.01)  # interpolated towards 100 ms
    assert level["decode_tok_s"] == 100.0


# -- merge and reproduction -------------------------------------------------------------------------
def run_of(results: dict, started: str) -> dict:
    stamped = {"runs": [{"started": started, "phases": list(results["phases"])}], "phases": {}}
    for phase, data in results["phases"].items():
        stamped["phases"][phase] = {**data, "run": started}
    return stamped


def test_a_second_run_reproduces_when_tau_is_equal_and_speeds_within_10_percent():
    first = run_of(real_results(), "2026-12-08T10:00:00+00:00")
    second = run_of(real_results(right_scale=0.93), "2026-12-09T10:00:00+00:00")
    merged = record.merge([first, second])
    assert merged["reproduction"]["real-eagle3"]["reproduced"]
    assert all(merged["reproduction"][phase]["reproduced"] for phase in merged["reproduction"])
    assert merged["verdict"]["reproduced_real_eagle3"]


def test_a_second_run_with_another_tau_or_a_speed_off_by_more_than_10_percent_does_not():
    first = run_of(real_results(), "2026-12-08T10:00:00+00:00")
    second = run_of(real_results(right_tau=3.0, right_scale=0.87), "2026-12-09T10:00:00+00:00")
    same = record.merge([first, second])["reproduction"]["real-eagle3"]
    assert not same["reproduced"]
    assert {c["figure"] for c in same["taus"] if not c["same"]} == {f"tau at {n}" for n in (1, 4, 16, 64)}
    assert "decode tok/s at 1" in {c["figure"] for c in same["speeds"] if not c["same"]}


def test_copies_of_one_run_and_a_retry_that_measured_nothing_are_not_reproductions():
    first = run_of(real_results(), "2026-12-08T10:00:00+00:00")
    failed_retry = {"runs": [{"started": "2026-12-08T11:00:00+00:00"}],
                    "phases": {"real-eagle3": {"run": "2026-12-08T11:00:00+00:00", "driver_error": "lost"}}}
    merged = record.merge([first, first, failed_retry])
    assert "reproduction" not in merged
    assert merged["phases"]["real-eagle3"]["run"] == "2026-12-08T10:00:00+00:00"  # the run that measured
    assert len(merged["runs"]) == 2


def test_merging_the_committed_record_alone_gives_it_back():
    committed = json.loads((KIT / "results.json").read_text())
    assert record.merge([committed]) == committed


# -- the record ---------------------------------------------------------------------------------------
def test_render_names_every_real_phase_not_run():
    partial = {"phases": {"prep": real_results()["phases"]["prep"]}}
    text = render(partial)
    assert "Phases run: prep. Not run: capture, real-plain, real-eagle3, real-wrong, real-inmemory." in text
    assert "Plain decode / HBM limit: not measured (real-plain not run)." in text
    assert "Load levels: not run" in text
    assert "### bench's speed model\n\nNot run (real-plain and real-eagle3 both needed)." in text
    assert "| the drafter card (SGLang 0.5.12, GPU not named) | 93 | 183 | 1.97 | 2.4 | 1.22 |" in text


def test_render_of_a_complete_record_shows_the_figures_beside_the_cards():
    text = render(real_results())
    assert "Phases run: prep, capture, real-plain, real-eagle3, real-wrong, real-inmemory. Not run: none." in text
    assert "| ours (NVIDIA H100 80GB HBM3), single stream, greedy, BF16 | 49.9 | 149.0 | 2.99 | 4.00 | 1.34 |" in text
    assert "Crossover: EAGLE-3 is faster at every level measured, up to 64." in text
    assert "| 27B, CUDA graphs on | later | 1.05 | - |" in text  # 64 / round(63 / 1.03)
    assert "From the later drafter's rounds (tau about 1, same chain config)" in text


# -- servers left by an earlier call ------------------------------------------------------------------------
def new_call(tmp_path) -> object:
    """What each device call makes: a new Run over the same work folder (and so the same server table)."""
    return driver.Run(argparse.Namespace(out=str(tmp_path / "out"), work=str(tmp_path / "work"), budget_s=120,
                                         dry_run=False, dry_run_gpu="h100", site=""))


@pytest.fixture
def table_cleanup(tmp_path):
    yield
    for entry in new_call(tmp_path).table.load().values():
        if servers.process_start(entry["pid"]) == entry["start_ticks"]:
            os.killpg(entry["pid"], signal.SIGKILL)
            _gone(entry["pid"])


def _gone(pid: int, within: float = 10) -> bool:
    """The process ended (reaped here if it was this test process's child, as init reaps on the
    GPU machine once the call that spawned it has returned)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if servers.process_start(pid) is None:
            return True
        time.sleep(0.1)
    return False


def test_the_ready_line_is_found_however_much_was_logged_after_it_and_across_two_writes(tmp_path):
    log = tmp_path / "server.log"
    server = servers.Server("real-plain", ["sglang", "--port", "1"], str(log))
    log.write_bytes(b"loading\nThe server is fired up and re")
    assert not server.said_ready()
    with open(log, "ab") as handle:
        handle.write(b"ady to roll!\n" + b"Decode batch. #running-req: 64\n" * 40_000)
    assert server.said_ready()
    assert servers.Server("real-plain", ["sglang"], str(log)).said_ready()  # a later call's look, all at once


def test_a_later_call_adopts_the_live_server_it_asks_for_with_the_same_argv(tmp_path, table_cleanup):
    argv = standin_argv(free_port())
    first = new_call(tmp_path)
    info = first.bring_up("real-plain", argv, timeout=30)
    assert info["state"] == "up" and not info["adopted"]
    assert info["server_info"] == {"disable_cuda_graph": False, "version": "stand-in"}
    pid = first.servers["real-plain"].pid
    assert os.getsid(pid) == pid  # a session of its own: ending the call's session spares it
    second = new_call(tmp_path)
    again = second.bring_up("real-plain", argv, timeout=30)
    assert again["state"] == "up" and again["adopted"] and second.servers["real-plain"].pid == pid
    second.stop("real-plain")
    assert _gone(pid) and second.table.load() == {}


@pytest.mark.slow
def test_a_live_server_with_another_argv_is_stopped_before_its_replacement_starts(tmp_path, table_cleanup):
    port = free_port()
    first = new_call(tmp_path)
    first.bring_up("real-right", standin_argv(port, "--drafter", "later"), timeout=30)
    old = first.servers["real-right"].pid
    second = new_call(tmp_path)
    info = second.bring_up("real-right", standin_argv(port, "--drafter", "right"), timeout=30)
    assert info["state"] == "up" and not info["adopted"]
    assert _gone(old) and second.servers["real-right"].pid != old


@pytest.mark.slow
def test_a_dead_server_or_a_reused_pid_is_never_adopted_nor_killed(tmp_path, table_cleanup):
    argv = standin_argv(free_port())
    first = new_call(tmp_path)
    first.bring_up("real-plain", argv, timeout=30)
    os.killpg(first.servers["real-plain"].pid, signal.SIGKILL)
    assert _gone(first.servers["real-plain"].pid)
    # The pid now belongs to a process of someone else's: same number, another start time.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        entries = first.table.load()
        entries["real-plain"]["pid"] = stranger.pid
        first.table.save(entries)
        second = new_call(tmp_path)
        info = second.bring_up("real-plain", argv, timeout=30)
        assert info["state"] == "up" and not info["adopted"]
        assert stranger.poll() is None  # not ours: left alone
    finally:
        stranger.kill()
        stranger.wait()


SLOW_CHILD = """
import signal, subprocess, sys, time
# Like SGLang's scheduler: a child in the server's group that takes a while to let go at SIGTERM.
child = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; "
                          "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1.5), sys.exit(0))); "
                          "print(flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
child.stdout.readline()  # its handler is set
print(child.pid, flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
""" + STANDIN


@pytest.mark.slow
def test_stop_returns_once_the_whole_group_is_gone_not_just_its_leader(tmp_path, table_cleanup):
    call = new_call(tmp_path)
    info = call.bring_up("real-plain", [sys.executable, "-c", SLOW_CHILD, "--port", str(free_port())], timeout=30)
    assert info["state"] == "up"
    leader = call.servers["real-plain"].pid
    child = next(int(line) for line in call.servers["real-plain"].log_tail().splitlines() if line.isdigit())
    assert set(servers.group_members(leader)) == {leader, child}
    call.stop("real-plain")
    assert servers.group_members(leader) == []


@pytest.mark.slow
def test_keep_only_stops_what_an_earlier_call_left_running(tmp_path, table_cleanup):
    first = new_call(tmp_path)
    first.bring_up("tiny-plain", standin_argv(free_port()), timeout=30)
    first.bring_up("tiny-right", standin_argv(free_port()), timeout=30)
    pids = {name: server.pid for name, server in first.servers.items()}
    second = new_call(tmp_path)
    second.keep_only({"tiny-right"})
    assert _gone(pids["tiny-plain"])
    assert set(second.table.load()) == {"tiny-right"}
    assert second.table.live("tiny-right").pid == pids["tiny-right"]


@pytest.mark.slow
def test_a_server_that_exits_before_it_serves_is_reported_with_its_log(tmp_path, table_cleanup):
    call = new_call(tmp_path)
    argv = [sys.executable, "-c", "import sys; print('Traceback (most recent call last):'); "
            "print('ValueError: not enough values to unpack'); sys.exit(3)", "--port", str(free_port())]
    info = call.bring_up("real-plain", argv, timeout=30)
    assert info["state"] == "exited"
    assert info["traceback"].endswith("ValueError: not enough values to unpack")
