"""`eagle3-patch bench` as a user runs it (click's CliRunner) against loopback stand-ins.

The stand-ins script every chunk's time on a shared clock that replaces the client's,
so tok/s, speedup and tau are asserted exactly, never as ranges.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import time

import pytest
from click.testing import CliRunner

from eagle3_patch.commands.bench import measure_and_report
from eagle3_patch.cli import main
from eagle3_patch.errors import BadInput, BenchFailed

from support.bench_standin import ScriptedClock, StandIn, baseline_script, eagle3_script
from support.cli import bench_with_clock, invoke_bench
from support.marks import first_fast
from support.ports import closed_port_url



# Scripts for --max-new-tokens 10: EAGLE-3 sends 1 + 3 + 3 + 3 tokens 1/64 s apart
# (9 decode tokens in 3/64 s = 192 tok/s, 3 verify passes, tau 10/3); the baseline
# sends 10 single tokens 1/32 s apart (9 in 9/32 s = 32 tok/s). Speedup 6.
EAGLE3_TOK_S, BASELINE_TOK_S, TAU = 192.0, 32.0, 10 / 3
CHAT = ["chat-espresso", "chat-trip", "chat-explain"]
ARGS = ["--bucket", "chat", "--max-new-tokens", "10", "--runs", "2", "--warmup", "1"]


@pytest.fixture
def clock():
    return ScriptedClock()


def slow_baseline(body):
    return baseline_script(body, step=1 / 32)


def run(clock, *args, **kwargs):
    """The command reading time from the stand-ins' scripted clock."""
    return CliRunner().invoke(bench_with_clock(clock), [*args], **kwargs)


def test_bench_reports_exact_decode_rates_speedup_tau_and_match_rate(clock):
    with StandIn(clock, eagle3_script) as eagle3, StandIn(clock, slow_baseline, speculative=False) as baseline:
        result = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["partial"] is False and report["error"] is None
    overall = report["summary"]["overall"]
    exact = {"median": EAGLE3_TOK_S, "low": EAGLE3_TOK_S, "high": EAGLE3_TOK_S, "n": 6}
    assert overall["eagle3"]["decode_tok_s"] == exact
    assert overall["baseline"]["decode_tok_s"]["median"] == BASELINE_TOK_S
    assert overall["speedup"] == 6.0
    assert overall["eagle3"]["tau"] == TAU
    assert overall["baseline"]["tau"] is None
    assert (overall["match_rate"], overall["compared"], overall["mismatches"]) == (1.0, 6, 0)
    assert [p["name"] for p in report["summary"]["prompts"]] == CHAT
    assert [b["name"] for b in report["summary"]["buckets"]] == ["chat"]
    first = report["requests"][0]
    assert (first["server"], first["prompt_id"], first["run"]) == ("eagle3", "chat-espresso", 1)
    assert (first["ttft_s"], first["decode_s"], first["verify_ct"], first["output_tokens"]) == (1 / 16, 3 / 64, 3, 10)
    assert report["servers"]["eagle3"]["speculative_algorithm"] == "EAGLE3"
    assert report["servers"]["baseline"]["speculative_algorithm"] is None


def test_warmup_requests_are_sent_but_not_counted(clock):
    with StandIn(clock, eagle3_script) as eagle3, StandIn(clock, slow_baseline, speculative=False) as baseline:
        result = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS[:-1], "2", "--json")
    assert result.exit_code == 0, result.output
    assert len(eagle3.bodies) == len(baseline.bodies) == 2 + 3 * 2
    assert len(json.loads(result.stdout)["requests"]) == 2 * 3 * 2


def test_mismatch_reports_the_first_diverging_position(clock):
    def diverging(body):
        script = slow_baseline(body)
        if "Lisbon" in body["text"]:
            script.output_ids[7] += 1
        return script

    with StandIn(clock, eagle3_script) as eagle3, StandIn(clock, diverging, speculative=False) as baseline:
        result = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--json")
        table = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    mismatches = [c for c in report["comparisons"] if not c["match"]]
    positions = [(c["prompt_id"], c["run"], c["first_divergence"]) for c in mismatches]
    assert positions == [("chat-trip", 1, 7), ("chat-trip", 2, 7)]
    assert report["summary"]["buckets"][0]["match_rate"] == 4 / 6
    assert "chat-trip run 2: first divergence at token 7" in table.stdout
    assert "4/6 (67%)" in table.stdout


def _diverging_with_candidates(eagle3_top, baseline_top):
    """Servers whose outputs part at token 7 of chat-trip, each giving these candidates there
    (a function of the two tokens: (eagle3 token, baseline token) -> [(id, logprob), ...])."""

    def tops(script, tops_at_7):
        script.top_logprobs = [[(t, -0.01), (t + 1, -5.0)] for t in script.output_ids]
        if tops_at_7 is not None:
            script.top_logprobs[7] = tops_at_7
        else:
            script.top_logprobs = None
        return script

    def eagle3(body):
        script = eagle3_script(body)
        e = script.output_ids[7]
        return tops(script, eagle3_top(e, e + 1) if "Lisbon" in body["text"] else [(e, -0.01), (e + 2, -5.0)])

    def baseline(body):
        script = slow_baseline(body)
        e = script.output_ids[7]
        if "Lisbon" in body["text"]:
            script.output_ids[7] += 1
            return tops(script, baseline_top(e, e + 1))
        return tops(script, [(e, -0.01), (e + 2, -5.0)])

    return eagle3, baseline


@pytest.mark.parametrize(
    ("eagle3_top", "baseline_top", "verdict"),
    [
        # Each server prefers its own token by a hair: bf16 rounding, not a loss.
        (lambda e, b: [(e, -0.69), (b, -0.70)], lambda e, b: [(b, -0.69), (e, -0.71)], "near-tie"),
        # What the H200 record shows: the plain server's two best exactly tied, the EAGLE-3 verify
        # pass three bf16 steps (0.375) apart: rounding.
        (lambda e, b: [(e, -0.6055), (b, -0.9805)], lambda e, b: [(e, -0.7701), (b, -0.7701)], "near-tie"),
        # Just past the bound: 0.625 nats on the plain side is no longer rounding.
        (lambda e, b: [(e, -0.69), (b, -0.70)], lambda e, b: [(b, -0.5), (e, -1.125)], "real"),
        # The plain server prefers its token by 2.4 nats: the EAGLE-3 server lost it.
        (lambda e, b: [(e, -0.69), (b, -0.70)], lambda e, b: [(b, -0.1), (e, -2.5)], "real"),
        # The plain server does not even rank the EAGLE-3 token second.
        (lambda e, b: [(e, -0.69), (b, -0.70)], lambda e, b: [(b, -0.1), (b + 5, -0.2)], "real"),
        # No top logprobs from a server: said, never guessed.
        (lambda e, b: [(e, -0.69), (b, -0.70)], lambda e, b: None, "unexplained"),
    ],
    ids=["near-tie", "recorded-bf16-steps", "past-the-bound", "clear-margin", "not-runner-up", "no-logprobs"],
)
def test_divergence_is_classified_by_both_servers_leading_candidates(clock, eagle3_top, baseline_top, verdict):
    respond_e, respond_b = _diverging_with_candidates(eagle3_top, baseline_top)
    with StandIn(clock, respond_e) as eagle3, StandIn(clock, respond_b, speculative=False) as baseline:
        result = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--json")
        table = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Two runs diverge at the same place: probed once, with the position's candidates.
    [divergence] = report["divergences"]
    assert (divergence["prompt_id"], divergence["position"], divergence["verdict"]) == ("chat-trip", 7, verdict)
    assert divergence["baseline_token"] == divergence["eagle3_token"] + 1
    probes = [b for b in baseline.bodies if b.get("return_logprob")]  # one per bench invocation
    assert [(p["sampling_params"]["max_new_tokens"], p["top_logprobs_num"]) for p in probes] == [(8, 2)] * 2
    if verdict != "unexplained":
        assert divergence["eagle3"]["top"][0][0] == divergence["eagle3_token"]
    assert f"-> {verdict.upper()}" in table.stdout


def test_matching_outputs_send_no_logprob_probe(clock):
    with StandIn(clock, eagle3_script) as eagle3, StandIn(clock, slow_baseline, speculative=False) as baseline:
        result = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["divergences"] == []
    assert not any(b.get("return_logprob") for b in eagle3.bodies + baseline.bodies)


def test_early_stop_with_json_prints_partial_figures_then_fails(clock):
    served = []

    def stops_on_fourth_request(body):
        served.append(body)
        script = eagle3_script(body)
        return dataclasses.replace(script, stop_after_chunks=2) if len(served) == 4 else script

    with (
        StandIn(clock, stops_on_fourth_request) as eagle3,
        StandIn(clock, slow_baseline, speculative=False) as baseline,
    ):
        result = invoke_bench(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--json")
    assert result.exit_code == 10
    report = json.loads(result.stdout)
    assert report["partial"] is True and report["exit_code"] == 10
    assert "stopped before the generation finished (4 tokens received)" in report["error"]["what"]
    # Warm-up, then chat-espresso and chat-trip on both servers; chat-explain on EAGLE-3 broke.
    assert [(r["server"], r["prompt_id"]) for r in report["requests"]] == [
        ("eagle3", "chat-espresso"), ("baseline", "chat-espresso"), ("eagle3", "chat-trip"), ("baseline", "chat-trip"),
    ]
    assert report["summary"]["overall"]["speedup"] == 6.0


def test_unreachable_server_fails_with_bench_failed_and_partial_json(clock):
    url = closed_port_url()
    result = invoke_bench(clock, "--url", url, "--json")
    assert result.exit_code == 10
    report = json.loads(result.stdout)
    assert report["partial"] is True and report["requests"] == []
    assert "Cannot reach the server" in report["error"]["what"]


def test_table_shows_configuration_buckets_and_na_tau_without_speculation(clock):
    with StandIn(clock, slow_baseline, speculative=False, version="0.5.23") as plain:
        result = run(clock, "--url", plain.url, *ARGS)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"EAGLE-3   {plain.url}  Qwen/Qwen3.6-27B  (no speculative decoding; SGLang 0.5.23)" in out
    chat_row = next(line for line in out.splitlines() if line.startswith("chat "))
    assert "32.0 (32.0-32.0)" in chat_row and "n/a" in chat_row
    assert "runs without speculative decoding" in out
    assert "run 2    EAGLE-3  chat-explain: 10 tokens, 32.0 tok/s, tau n/a" in result.stderr


def test_no_color_environment_variable_turns_styling_off(clock):
    with StandIn(clock, eagle3_script) as eagle3:
        coloured = run(clock, "--url", eagle3.url, *ARGS, color=True)
        plain = run(clock, "--url", eagle3.url, *ARGS, color=True, env={"NO_COLOR": "1"})
    assert "\x1b[" in coloured.stdout
    assert "\x1b[" not in plain.stdout and "overall" in plain.stdout


def test_plot_is_written_as_png(clock, tmp_path):
    target = tmp_path / "bench.png"
    with StandIn(clock, eagle3_script) as eagle3, StandIn(clock, slow_baseline, speculative=False) as baseline:
        result = run(clock, "--url", eagle3.url, "--baseline-url", baseline.url, *ARGS, "--plot", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_plot_without_matplotlib_is_bad_input_before_any_request(clock, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with StandIn(clock, eagle3_script) as eagle3:
        result = run(clock, "--url", eagle3.url, *ARGS, "--plot", str(tmp_path / "x.png"))
    assert isinstance(result.exception, BadInput)
    assert f"{sys.executable} -m pip install matplotlib" in result.exception.fix
    assert "eagle3-patch[plot]" not in result.exception.fix  # not a name on PyPI
    assert eagle3.bodies == []


def test_plot_into_a_missing_folder_is_bad_input_before_any_request(clock, tmp_path):
    with StandIn(clock, eagle3_script) as eagle3:
        result = run(clock, "--url", eagle3.url, *ARGS, "--plot", str(tmp_path / "no" / "x.png"))
    assert isinstance(result.exception, BadInput)
    assert "does not exist" in result.exception.why
    assert eagle3.bodies == []


@pytest.mark.parametrize("name", first_fast("bench", "bench.", "bench.xyz", "bench.png "))
def test_a_plot_name_without_an_image_extension_is_bad_input_before_any_request(clock, tmp_path, name):
    # matplotlib wrote bench.png for "bench" (and "Plot written to bench" was said), or failed on an
    # unknown extension once the run was over (exit 70).
    with StandIn(clock, eagle3_script) as eagle3:
        result = run(clock, "--url", eagle3.url, *ARGS, "--plot", str(tmp_path / name))
    assert isinstance(result.exception, BadInput), result.output
    assert "names no image format matplotlib writes" in result.exception.what and ".png" in result.exception.fix
    assert eagle3.bodies == [] and list(tmp_path.iterdir()) == []


def test_a_plot_format_matplotlib_cannot_write_here_is_bad_input_keeping_the_report(clock, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # .pgf is written through LaTeX, found on PATH
    with StandIn(clock, eagle3_script) as eagle3:
        result = run(clock, "--url", eagle3.url, *ARGS, "--plot", str(tmp_path / "bench.pgf"))
    assert isinstance(result.exception, BadInput), result.output
    assert "Cannot write the plot" in result.exception.what and "overall" in result.stdout


def test_unreadable_prompts_file_is_bad_input(clock, tmp_path):
    result = run(clock, "--url", "http://127.0.0.1:9", "--prompts", str(tmp_path / "none.jsonl"))
    assert isinstance(result.exception, BadInput)


def test_custom_prompts_file_is_reported_per_bucket(clock, tmp_path):
    prompts = tmp_path / "mine.jsonl"
    prompts.write_text('{"id": "a", "bucket": "sql", "text": "SELECT"}\n{"id": "b", "bucket": "rust", "text": "fn"}\n')
    with StandIn(clock, eagle3_script) as eagle3:
        result = run(clock, "--url", eagle3.url, "--prompts", str(prompts), "--runs", "2", "--max-new-tokens", "10",
                     "--json")
    report = json.loads(result.stdout)
    assert [b["name"] for b in report["summary"]["buckets"]] == ["sql", "rust"]
    assert report["settings"]["prompt_source"] == str(prompts)


def test_early_stop_in_human_mode_prints_the_finished_requests_marked_partial(clock):
    served = []

    def stops_on_fourth_request(body):
        served.append(body)
        script = eagle3_script(body)
        return dataclasses.replace(script, stop_after_chunks=2) if len(served) == 4 else script

    with StandIn(clock, stops_on_fourth_request) as eagle3:
        result = run(clock, "--url", eagle3.url, *ARGS)
    assert isinstance(result.exception, BenchFailed)
    assert result.stdout.startswith(f"PARTIAL: The stream from {eagle3.url} stopped before the generation finished")
    assert "Figures of the 2 measured request(s) that finished:" in result.stdout
    chat_row = next(line for line in result.stdout.splitlines() if line.startswith("chat "))
    assert chat_row.split()[1] == "2" and "192.0 (192.0-192.0)" in chat_row


def test_bench_core_reads_time_from_the_clock_parameter_and_defaults_to_perf_counter(clock):
    # The one way to give bench another clock: a parameter of its core, not click's context object.
    assert inspect.signature(measure_and_report).parameters["clock"].default is time.perf_counter
    assert "obj" not in inspect.signature(main).parameters
    with StandIn(clock, eagle3_script) as eagle3, CliRunner().isolation() as (out, _, _):
        measure_and_report(url=eagle3.url, baseline_url=None, api_key=None, baseline_api_key=None,
                           prompts_file=None, buckets=("chat",), max_new_tokens=10, runs=2, warmup=0,
                           ignore_eos=False, timeout=5.0, concurrency=(1,), duration=None, as_json=True,
                           plot=None, clock=clock)
    overall = json.loads(out.getvalue())["summary"]["overall"]
    assert overall["eagle3"]["decode_tok_s"]["median"] == EAGLE3_TOK_S
