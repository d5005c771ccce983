"""RESULTS.md from the driver's results.json: every figure comes from that file, none is typed in."""

from __future__ import annotations

import json

from render_real import render_real


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _bench_rows(title: str, summary: dict) -> list[str]:
    if not summary:
        return [f"- {title}: no figures (see the logs)"]
    matched = "-"
    if summary.get("compared") is not None:
        matched = f"{summary['compared'] - summary['mismatches']}/{summary['compared']}"
    lines = [f"| {title} | {_fmt(summary.get('tau'))} | {matched} | {_fmt(summary.get('eagle3_tok_s'), 1)} | "
             f"{_fmt(summary.get('baseline_tok_s'), 1)} | {_fmt(summary.get('speedup'))} |"]
    return lines


def _divergences(summary: dict) -> list[str]:
    rows = []
    for d in summary.get("divergences") or []:
        rows.append(f"| {d['prompt_id']} | {d['run']} | {d['position']} | {d['eagle3_token']} | "
                    f"{d['baseline_token']} | {_top(d.get('eagle3_gap'))} | {_top(d.get('baseline_gap'))} | "
                    f"{d['verdict']} |")
    return rows


def _top(top) -> str:
    if not top:
        return "-"
    return ", ".join(f"{tid}: {lp:.4f}" for tid, lp in top)


def render(results: dict) -> str:
    runs = results.get("runs") or [{}]
    phases = results.get("phases", {})
    machine = runs[-1].get("machine", {})
    stock = phases.get("stock", {})
    out = [
        "# eagle3-patch on a GPU: the record",
        "",
        "Written by `benchmarks/gpu/driver.py render results.json` from `results.json` beside this file; "
        "see `benchmarks/gpu/README.md` for how to run it again.",
        "",
        f"- Machine: {machine.get('nvidia_smi') or machine.get('gpu') or '-'}; torch {machine.get('torch', '-')} "
        f"(CUDA {machine.get('cuda', '-')}); {machine.get('platform', '-')}",
        f"- SGLang: {(stock.get('status') or {}).get('sglang_version', '-')} from the runtime wheel set "
        "(`runtime-0.5.12.txt`), run with the image's Python " + runs[-1].get("python", "-"),
        "- Driver runs: " + "; ".join(f"{r.get('started')} ({', '.join(r.get('phases', []))})" for r in runs),
        "- Models: tiny and constructed, built by `build_models.py` (no Hub); the flags and the server code are real.",
        "",
        "## Verdict",
        "",
    ]
    out += [f"- {'PASS' if ok else 'FAIL'} `{name}`" for name, ok in (results.get("verdict") or {}).items()]
    outcome = stock.get("outcome") or {}
    out += [
        "",
        "## a. Stock SGLang with `--speculative-algorithm EAGLE3`",
        "",
        f"Status before: `{(stock.get('status') or {}).get('state')}`. Launched with the argv `eagle3-patch serve "
        f"--dry-run` prints. Came up: `{outcome.get('came_up')}`; first `/generate`: HTTP "
        f"`{(outcome.get('generate') or {}).get('http_status')}`; server exit code `{outcome.get('exit_code')}`.",
        "",
        "```",
        outcome.get("traceback") or "(no traceback in the log)",
        "```",
    ]
    head = ["| run | tau | identical greedy outputs | EAGLE-3 tok/s | plain tok/s | speedup |",
            "|---|---|---|---|---|---|"]
    for phase, title in (("patched", "b. After `eagle3-patch apply`, launched by `eagle3-patch serve`"),
                         ("inmemory", "c. After `eagle3-patch revert`, launched by `eagle3-patch serve --in-memory`")):
        data = phases.get(phase, {})
        out += ["", f"## {title}", ""]
        if phase == "inmemory":
            record = data.get("against_record") or {}
            tree = data.get("models_tree") or {}
            out += [f"- After revert, files under `sglang/srt/models/` checked against pip's RECORD: "
                    f"{record.get('checked')}, differing: {record.get('differ')}, not in RECORD: "
                    f"{record.get('not_in_record')}.",
                    f"- Every file under `sglang/srt/models/` with `__pycache__` ({tree.get('files')} files) "
                    f"hashed before the in-memory servers started and after they stopped: unchanged = "
                    f"`{tree.get('unchanged')}`.", ""]
        else:
            apply = (data.get("apply") or {}).get("json") or {}
            out += [f"- `eagle3-patch apply`: exit {(data.get('apply') or {}).get('rc')}, state after: "
                    f"`{apply.get('state')}`.", ""]
        agree = (data.get("bench-agree") or {}).get("summary") or {}
        rand = (data.get("bench-random") or {}).get("summary") or {}
        out += head + _bench_rows("agreeing drafter", agree) + _bench_rows("random drafter", rand)
        rows = _divergences(rand) + _divergences(agree)
        if rows:
            out += ["", "Divergences (each server's two best candidates `token: logprob` "
                    "at the first differing token):",
                    "", "| prompt | run | token | EAGLE-3 | plain | EAGLE-3 top 2 | plain top 2 | verdict |",
                    "|---|---|---|---|---|---|---|---|", *rows]
    load = (phases.get("load", {}).get("bench-agree") or {}).get("summary") or {}
    out += ["", "## d. `eagle3-patch bench --concurrency 1,4,16` (agreeing drafter, in memory)", ""]
    if load.get("levels"):
        out += ["| concurrency | server | requests | throughput tok/s | tau | acceptance histogram |",
                "|---|---|---|---|---|---|"]
        for level in load["levels"]:
            for role in ("eagle3", "baseline"):
                figures = level.get(role) or {}
                acceptance = figures.get("acceptance") or {}
                out.append(f"| {level.get('concurrency')} | {role} | {figures.get('requests')} | "
                           f"{_fmt(figures.get('throughput_tok_s'), 1)} | {_fmt(figures.get('tau'))} | "
                           f"{acceptance.get('histogram', '-')} (fields: {acceptance.get('fields', '-')}) |")
        out += ["", f"Crossover: `{json.dumps(load.get('crossover'))}`"]
    else:
        out.append("Not measured in this record.")
    out += render_real(results)
    imports = results.get("imports") or {}
    if imports:
        out += ["", "## What the launches imported", "",
                f"{len(imports.get('imported', []))} of the {len(imports.get('carried', []))} carried "
                f"distributions were imported by some server process (PYTHONPROFILEIMPORTTIME); not imported: "
                f"{', '.join(imports.get('not_imported', [])) or 'none'}."]
    if results.get("notes"):
        out += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(out) + "\n"
