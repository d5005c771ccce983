"""RESULTS.md's "real shape" section (issue 22): every figure from results.json, and each phase that
was not run named as not run."""

from __future__ import annotations

from kits import LEVELS
from record import REAL_PHASES, hbm_ratio, speed_join, wrong_prediction

# The drafter card's claim, as the card states it (SGLang 0.5.12, single stream, greedy, BF16).
CARD = {"plain_tok_s": 93, "eagle3_tok_s": 183, "speedup": 1.97, "tau": 2.4}
# sgl_kernel 0.4.2.post2's FlashAttention-3 ops, measured from the cp310-abi3 manylinux2014 wheel on PyPI.
FA3 = ("sgl_kernel/flash_ops.abi3.so: 1071.7 MB unpacked, 273.6 MB deflated in the wheel, 72.4 MB with "
       "`xz -6`, so two more 46 MiB carry calls")
GB = 1e9


def _f(value, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def _summary(phases: dict, phase: str, key: str = "bench") -> dict:
    return ((phases.get(phase) or {}).get(key) or {}).get("summary") or {}


def _level(summary: dict, n: int) -> dict:
    return next((lv for lv in summary.get("levels", []) if lv["concurrency"] == n), {})


def render_real(results: dict) -> list[str]:
    phases = results.get("phases", {})
    ran = [p for p in REAL_PHASES if p in phases]
    out = ["", "## e. The real shape: Qwen3.6-27B, CUDA graphs on (issue 22)", "",
           "Constructed: the acceptance. The targets and drafters are built so the answer is known in advance "
           "(greedy output always token 0; the right drafter proposes it exactly when it receives the outputs of "
           "its configured layers, so tau = 4 then and about 1 with drafters built for the wrong layers), and "
           "the 27B's weights are sparse files whose unused regions read as zeros. Real: the speed. The server "
           "reads every byte of every weight each step, through SGLang 0.5.12's own kernels, CUDA graphs and "
           "scheduler, on the GPU named below, so its tok/s are those of a real Qwen3.6-27B of this shape; "
           "only the tokens, and hence tau, are not.", "",
           f"Phases run: {', '.join(ran) or 'none'}. "
           f"Not run: {', '.join(p for p in REAL_PHASES if p not in ran) or 'none'}."]
    for phase in ran:
        error = (phases[phase].get("driver_error") or "").strip().splitlines()
        down = [key for key, value in phases[phase].items() if (key == "up" or key.startswith("up-"))
                and isinstance(value, dict) and value.get("state") not in ("up", None)]
        if error:
            out.append(f"- {phase} stopped early: `{error[-1]}` (results.json has the traceback).")
        for key in down:
            out.append(f"- {phase}: server {key[3:] or phase} {phases[phase][key]['state']} "
                       f"({phases[phase][key].get('why') or 'see its log and traceback in results.json'}).")
    out += _card_and_limit(results, phases)
    out += _flags(phases)
    out += _acceptance(phases)
    out += _speed(phases)
    out += _speed_model(phases)
    out += _inmemory(phases)
    out += _reproduction(results)
    return out


def _card_and_limit(results: dict, phases: dict) -> list[str]:
    prep = phases.get("prep") or {}
    if "card" not in prep:
        return ["", "### The GPU and its HBM limit", "", "Not run (prep)."]
    card, hbm = prep["card"], prep.get("hbm") or {}
    parts = hbm.get("parts") or {}
    out = ["", "### The GPU and its HBM limit", "",
           f"- GPU (nvidia-smi): {card.get('name', '-')}, {card.get('memory_total_mib', '-')} MiB, driver "
           f"{card.get('driver_version', '-')}; {card.get('memory_free_mib', '-')} MiB free with no server up.",
           f"- Device-to-device copy (torch, {_f((card.get('bandwidth') or {}).get('bytes_per_copy', 0) / 2**30, 0)} "
           f"GiB, read + write counted): best {_f(hbm.get('bandwidth_best_gbs'), 0)} GB/s, median "
           f"{_f(hbm.get('bandwidth_median_gbs'), 0)} GB/s."]
    if hbm.get("bytes_per_step"):
        out.append(
            f"- Bytes one batch-1 decode step reads: {_f(hbm['bytes_per_step'] / GB)} GB = decoder layers "
            f"{_f(parts.get('decoder_layers', 0) / GB)} + final norm + lm_head {_f(parts.get('lm_head', 0) / GB)}. "
            f"Not counted: the embedding table ({_f(parts.get('embedding', 0) / GB)} GB; a step reads one row "
            f"of it per token) and the vision tower ({_f(parts.get('vision', 0) / GB)} GB; text decode never "
            "runs it); the KV cache and the linear-attention state, under 1 % at batch 1.")
        out.append(f"- HBM limit: {_f(hbm.get('limit_tok_s'), 1)} tok/s at the best bandwidth "
                   f"({_f(hbm.get('limit_tok_s_median'), 1)} at the median).")
    ratio = hbm_ratio(results)
    plain = _summary(phases, "real-plain").get("decode_tok_s")
    out.append(f"- Plain single-stream decode: {_f(plain, 1)} tok/s = {_f(ratio)} of the limit."
               if ratio is not None else "- Plain decode / HBM limit: not measured (real-plain not run).")
    return out


def _flags(phases: dict) -> list[str]:
    out = ["", "### How the 27B servers ran", ""]
    memory = (phases.get("prep") or {}).get("memory")
    for phase, label in (("real-plain", "plain"), ("real-eagle3", "EAGLE-3 (`eagle3-patch serve`)")):
        up = (phases.get(phase) or {}).get("up")
        if not up:
            out.append(f"- {label}: not run ({phase}).")
            continue
        info, logged = up.get("server_info") or {}, up.get("log_figures") or {}
        out.append(f"- {label}: `{' '.join(up.get('argv', [])[1:])}`. Came up: {up.get('state')} after "
                   f"{_f(up.get('seconds'), 0)} s (weights {_f(logged.get('load_weight_s'), 0)} s, CUDA graphs "
                   f"{_f(logged.get('cuda_graph_s'), 0)} s for batch sizes {logged.get('cuda_graph_bs', '-')}); "
                   f"SGLang {info.get('version', '-')} resolved attention `{info.get('attention_backend', '-')}`, "
                   f"CUDA graphs {'off' if info.get('disable_cuda_graph') else 'on'}, "
                   f"{logged.get('max_running_requests', '-')} running requests, "
                   f"{logged.get('max_mamba_cache_size', '-')} linear-attention states, "
                   f"{logged.get('kv_tokens', '-')} KV tokens.")
    out.append("- Attention backend: triton. SGLang 0.5.12's Hopper default for this model is fa3, whose "
               f"kernels ({FA3}) are trimmed from the carried runtime: carrying them, and a runtime never tried "
               "with them, would take device time the 27B launches need. At batch 1 and under 200 tokens of "
               "context attention is a sliver of a step that reads every weight, so we expect the backend to "
               "move the decode figures little; that was not measured.")
    if memory:
        plans = memory["plans"]
        out += ["", "| server | free GiB | weights GiB | --mem-fraction-static | --max-running-requests | "
                "--max-mamba-cache-size |", "|---|---|---|---|---|---|"]
        out += [f"| {role} | {p['free_gib']} | {p['weights_gib']} | {p['mem_fraction_static']} | "
                f"{p['max_running_requests']} | {p['max_mamba_cache_size']} |" for role, p in plans.items()]
        out += ["", f"Why (memory_plan.py's table): one linear-attention state is "
                f"{_f(memory['state_bytes'] / 2**20, 1)} MiB (48 layers of a float32 SSM state and a bf16 conv "
                "window). The plain server (radix cache off) holds one per running request; under serve's config "
                "the EAGLE-3 server holds nine (three for the radix cache, two for extra_buffer's ping-pong, four "
                f"verify intermediates). Beside a plain server the EAGLE-3 one would keep "
                f"{memory['eagle3_beside_plain']} running requests, so the two run one at a time and bench measures "
                "each alone. A level above a server's running requests queues the rest."]
    return out


def _acceptance(phases: dict) -> list[str]:
    out = ["", "### Capture of the configured layers", "",
           "| kit | drafter | tau | greedy output identical to the plain server's |", "|---|---|---|---|"]
    capture = phases.get("capture") or {}
    for name in ("right", "later", "earlier"):
        summary = (capture.get(f"bench-{name}") or {}).get("summary")
        matched = (f"{summary['compared'] - summary['mismatches']}/{summary['compared']}"
                   if summary and summary.get("compared") is not None else "-")
        out.append(f"| tiny, CUDA graphs off | {name} | {_f((summary or {}).get('tau')) if summary else 'not run'} "
                   f"| {matched} |")
    greedy = (phases.get("real-eagle3") or {}).get("greedy") or {}
    rows = [("right", _summary(phases, "real-eagle3"), greedy),
            ("later", _summary(phases, "real-wrong", "bench-later"), {}),
            ("earlier", _summary(phases, "real-wrong", "bench-earlier"), {})]
    for name, summary, same in rows:
        identical = f"{same['compared'] - len(same['differ'])}/{same['compared']}" if same.get("compared") else "-"
        tau = _f(summary.get("tau")) if summary else "not run"
        out.append(f"| 27B, CUDA graphs on | {name} | {tau} | {identical} |")
    return out


def _speed(phases: dict) -> list[str]:
    plain, right = _summary(phases, "real-plain"), _summary(phases, "real-eagle3")
    out = ["", "### Speed: single stream and under load", ""]
    one_p, one_e = _level(plain, 1), _level(right, 1)
    gpu = ((phases.get("real-plain") or {}).get("gpu") or {}).get("name") or "-"
    speedup = (one_e["decode_tok_s"] / one_p["decode_tok_s"]
               if one_p.get("decode_tok_s") and one_e.get("decode_tok_s") else None)
    out += ["| | plain tok/s | EAGLE-3 tok/s | speedup | tau | round cost c |", "|---|---|---|---|---|---|",
            f"| ours ({gpu}), single stream, greedy, BF16 | {_f(one_p.get('decode_tok_s'), 1)} | "
            f"{_f(one_e.get('decode_tok_s'), 1)} | {_f(speedup)} | {_f(one_e.get('tau'))} | "
            f"{_f(one_e.get('tau') * one_p['decode_tok_s'] / one_e['decode_tok_s']) if speedup else '-'} |",
            f"| the drafter card (SGLang 0.5.12, GPU not named) | {CARD['plain_tok_s']} | {CARD['eagle3_tok_s']} | "
            f"{CARD['speedup']} | {CARD['tau']} | {_f(CARD['tau'] * CARD['plain_tok_s'] / CARD['eagle3_tok_s'])} |"]
    if not (plain and right):
        return out + ["", "Load levels: not run (real-plain and real-eagle3 both needed)."]
    out += ["", "| concurrency | plain tok/s | EAGLE-3 tok/s | speedup | TTFT p50/p99 s plain | EAGLE-3 | "
            "ITL p50/p99 ms plain | EAGLE-3 | tau |", "|---|---|---|---|---|---|---|---|---|"]
    joined = speed_join(phases) or {"levels": [], "crossover": {}}
    speedups = {lv["concurrency"]: lv["speedup"] for lv in joined["levels"]}
    for n in LEVELS:
        p, e = _level(plain, n), _level(right, n)
        out.append(f"| {n} | {_f(p.get('throughput_tok_s'), 1)} | {_f(e.get('throughput_tok_s'), 1)} | "
                   f"{_f(speedups.get(n))} | {_f(p.get('ttft_p50_s'), 3)}/{_f(p.get('ttft_p99_s'), 3)} | "
                   f"{_f(e.get('ttft_p50_s'), 3)}/{_f(e.get('ttft_p99_s'), 3)} | {_f(p.get('itl_p50_ms'))}/"
                   f"{_f(p.get('itl_p99_ms'))} | {_f(e.get('itl_p50_ms'))}/{_f(e.get('itl_p99_ms'))} | "
                   f"{_f(e.get('tau'))} |")
    out += ["", "Throughput: tokens while all N requests were in flight (bench's window); speedup: its ratio; "
            "ITL: each request's mean gap between tokens after the first (its decode time / tokens; EAGLE-3's "
            "arrive in bursts of up to 4), p50 and p99 over the level's requests. " + _crossover(joined)]
    return out


def _crossover(joined: dict) -> str:
    """bench's sentence for its crossover (loadreport.describe_crossover), for the joined levels."""
    win, loss = joined["crossover"].get("last_win"), joined["crossover"].get("first_loss")
    measured = [level["concurrency"] for level in joined["levels"]]
    if win is None and loss is not None:
        return f"Crossover: EAGLE-3 is not faster even at {loss} concurrent request(s)."
    if loss is None and measured and win == measured[-1]:
        return f"Crossover: EAGLE-3 is faster at every level measured, up to {win}."
    if loss is None:
        return f"Crossover: EAGLE-3 is faster up to {_f(win)}; the next level has no throughput figure."
    return f"Crossover: EAGLE-3 is faster up to {win} concurrent requests and slower from {loss}."


def _speed_model(phases: dict) -> list[str]:
    out = ["", "### bench's speed model", ""]
    joined = speed_join(phases)
    if not joined:
        return out + ["Not run (real-plain and real-eagle3 both needed)."]
    out += ["| concurrency | round ms | plain step ms | c = break-even tau | at tau 2.2 | 2.4 | 3.0 | 4 | "
            "predicted at measured tau | measured decode speedup | predicted / measured |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    out += [_model_row(level["concurrency"], level["speed_model"]) for level in joined["levels"]]
    out += ["", "bench's own model (`speedmodel.speed_model`) on the two servers' requests, each server "
            "benchmarked alone: c = EAGLE-3 time per verify round / plain time per decode step. The card's "
            f"1.97x at tau 2.4 implies c = {_f(CARD['tau'] * CARD['plain_tok_s'] / CARD['eagle3_tok_s'])}; "
            "the column 'at tau 2.4' is what our c predicts there."]
    for name in ("later", "earlier"):
        carried = wrong_prediction(phases, name)
        if carried:
            out.append(f"- From the {name} drafter's rounds (tau about 1, same chain config): c = "
                       f"{_f(carried['round_cost'])}, predicting {_f(carried['predicted_speedup'])}x for the right "
                       f"drafter at tau {_f(carried['right_tau'])}; measured {_f(carried['measured_speedup'])}x "
                       f"(ratio {_f(carried['predicted_over_measured'])}).")
        else:
            out.append(f"- From the {name} drafter's rounds: not run (real-wrong).")
    return out


def _model_row(n: int, m: dict) -> str:
    if m.get("unavailable"):
        return f"| {n} | not given: {m['unavailable']} |"
    at = {p["tau"]: p["speedup"] for p in m.get("predictions", [])}
    cells = [_f((m.get("round_s") or 0) * 1000), _f((m.get("plain_step_s") or 0) * 1000), _f(m.get("round_cost")),
             *(_f(at.get(t)) for t in (2.2, 2.4, 3.0, 4.0)), _f(m.get("predicted_speedup")),
             _f(m.get("measured_speedup")), _f(m.get("predicted_over_measured"))]
    return f"| {n} | " + " | ".join(cells) + " |"


def _inmemory(phases: dict) -> list[str]:
    data = phases.get("real-inmemory")
    out = ["", "### After `eagle3-patch revert`: `serve --in-memory` on the 27B", ""]
    if not data:
        return out + ["Not run (real-inmemory)."]
    record, greedy, tree = data.get("against_record") or {}, data.get("greedy") or {}, data.get("models_tree") or {}
    summary, right = _summary(phases, "real-inmemory"), _level(_summary(phases, "real-eagle3"), 1)
    return out + [
        f"- Revert: {record.get('checked', '-')} files under `sglang/srt/models/` checked against pip's RECORD, "
        f"identical: {record.get('identical')} (differing: {', '.join(record.get('differ') or []) or 'none'}; "
        f"not in RECORD: {', '.join(record.get('not_in_record') or []) or 'none'}); the folder unchanged "
        f"while the in-memory server ran: {tree.get('unchanged')}.",
        f"- tau {_f(summary.get('tau'))}; greedy outputs identical to the plain server's: "
        f"{greedy.get('identical')} ({greedy.get('compared', 0)} prompts); single-stream decode "
        f"{_f(summary.get('decode_tok_s'), 1)} tok/s (the patched server: {_f(right.get('decode_tok_s'), 1)})."]


def _reproduction(results: dict) -> list[str]:
    out = ["", "### Reproduction", ""]
    done = results.get("reproduction") or {}
    for phase in REAL_PHASES:
        if phase not in (results.get("phases") or {}):
            continue
        same = done.get(phase)
        if not same:
            out.append(f"- {phase}: one run only.")
            continue
        off = [c["figure"] for c in same["taus"] + same["speeds"] if not c["same"]]
        compared = [f"{len(same['taus'])} tau figure(s), equal in "
                    f"{sum(c['same'] for c in same['taus'])}" if same["taus"] else "",
                    f"{len(same['speeds'])} speed(s), within 10 % in {sum(c['same'] for c in same['speeds'])} ("
                    + ", ".join(f"{c['figure']} {c['first']:.4g} then {c['second']:.4g}" for c in same["speeds"])
                    + ")" if same["speeds"] else ""]
        out.append(f"- {phase}: {'reproduced' if same['reproduced'] else 'NOT reproduced'}: "
                   + "; ".join(part for part in compared if part)
                   + (f"; off: {', '.join(off)}" if off else "") + ".")
    return out if len(out) > 3 else out + ["No real-shape phase run yet."]
