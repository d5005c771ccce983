"""The figures the record keeps from `eagle3-patch bench --json` reports, and the join of two.

A 27B server fills most of one card, so the plain and the EAGLE-3 server run one after the other
and each is benchmarked alone (``bench --url``). ``join`` then puts the two reports side by side
per load level: speedups, the crossover, and bench's own speed model (``speedmodel.speed_model``,
fed the same per-request figures it would get from one run with ``--baseline-url``).
"""

from __future__ import annotations

import statistics

# What the record keeps of each request, enough for ITL percentiles and the speed model.
ROW = ("concurrency", "output_tokens", "ttft_s", "decode_s", "decode_tok_s", "verify_ct")


def summarise_bench(report: dict | None) -> dict:
    """The figures the record needs from one `bench --json` document run with --baseline-url."""
    if not report:
        return {}
    overall = report.get("summary", {}).get("overall", {})
    eagle3, baseline = overall.get("eagle3") or {}, overall.get("baseline") or {}
    summary = {
        "tau": eagle3.get("tau"),
        "eagle3_tok_s": (eagle3.get("decode_tok_s") or {}).get("median"),
        "baseline_tok_s": (baseline.get("decode_tok_s") or {}).get("median"),
        "speedup": overall.get("speedup"),
        "compared": overall.get("compared"),
        "mismatches": overall.get("mismatches"),
        "match_rate": overall.get("match_rate"),
        "divergences": [{k: d.get(k) for k in ("prompt_id", "run", "position", "eagle3_token", "baseline_token",
                                               "verdict", "reason")} | {
            "eagle3_gap": (d.get("eagle3") or {}).get("top"), "baseline_gap": (d.get("baseline") or {}).get("top")}
            for d in report.get("divergences", [])],
        "error": report.get("error"),
        "servers": {role: {k: info.get(k) for k in ("version", "speculative_algorithm", "speculative_num_steps",
                                                     "speculative_eagle_topk", "speculative_num_draft_tokens")}
                    for role, info in report.get("servers", {}).items()},
    }
    acceptance = [r.get("acceptance") for r in report.get("requests", []) if r.get("acceptance")]
    if acceptance:
        summary["acceptance_example"] = acceptance[0]
    if report.get("levels"):
        summary["levels"] = report["levels"]
        summary["crossover"] = report.get("crossover")
    model = speed_model_of(report)
    if model:
        summary["speed_model"] = model
    return summary


def speed_model_of(report: dict) -> dict | None:
    """bench's speed model as its --json reports it (schema 4, key ``speed_model``): the single-
    stream model or the per-level ones, each with c (``round_cost``), ``break_even_tau``,
    ``predictions``, ``predicted_speedup``, ``measured_speedup`` and ``predicted_over_measured``.
    None from a bench without it."""
    model = report.get("speed_model")
    if not isinstance(model, dict):
        return None
    return {"assumption": model.get("assumption"), "single_stream": model.get("single_stream"),
            "levels": model.get("levels") or []}


def percentile(values: list[float], p: int) -> float | None:
    """bench's percentile (load.percentile): inclusive quantiles, never outside the values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def summarise_alone(report: dict | None) -> dict:
    """One server benchmarked alone (bench --url): per concurrency level its throughput (bench's,
    under --concurrency only), per-request decode rate, TTFT and ITL at p50/p99 and tau, by bench's
    own definitions (load.server_load); and every request's row, for ``join``."""
    if not report:
        return {}
    rows = [[request.get(key) for key in ROW] for request in report.get("requests", [])]
    throughput = {level.get("concurrency"): (level.get("eagle3") or {}).get("throughput_tok_s")
                  for level in report.get("levels") or []}  # bench names the --url server "eagle3"
    levels = []
    for n in sorted({row[0] for row in rows}):
        mine = [dict(zip(ROW, row, strict=True)) for row in rows if row[0] == n]
        rates = [r["decode_tok_s"] for r in mine if r["decode_tok_s"]]
        ttfts = [r["ttft_s"] for r in mine if r["ttft_s"] is not None]
        counted = [r for r in mine if r["verify_ct"]]
        levels.append({
            "concurrency": n, "requests": len(mine), "throughput_tok_s": throughput.get(n),
            "decode_tok_s": statistics.median(rates) if rates else None,
            "ttft_p50_s": statistics.median(ttfts) if ttfts else None, "ttft_p99_s": percentile(ttfts, 99),
            "itl_p50_ms": percentile(sorted(1000 / rate for rate in rates), 50),
            "itl_p99_ms": percentile(sorted(1000 / rate for rate in rates), 99),
            "tau": (sum(r["output_tokens"] for r in counted) / sum(r["verify_ct"] for r in counted)
                    if counted else None),
        })
    server = (report.get("servers") or {}).get("eagle3") or {}
    return {"levels": levels, "rows": rows, "server": server, "error": report.get("error"),
            "tau": levels[0]["tau"] if levels else None,
            "decode_tok_s": levels[0]["decode_tok_s"] if levels else None}


def join(plain: dict, eagle3: dict) -> dict:
    """Two ``summarise_alone`` results, level by level: speedups (throughput and median decode rate),
    the crossover by bench's rule (load.crossover: the last level of an unbroken run of wins), and
    bench's speed model for each level the two share."""
    from eagle3_patch.bench.serverinfo import ServerInfo
    from eagle3_patch.bench.speedmodel import speed_model

    theirs = {level["concurrency"]: level for level in plain.get("levels", [])}
    infos = (ServerInfo(**eagle3["server"]), ServerInfo(**plain["server"]))
    levels, last_win, first_loss, streak = [], None, None, True
    for mine in eagle3.get("levels", []):
        n = mine["concurrency"]
        if n not in theirs:
            continue
        base = theirs[n]
        throughput = _ratio(mine["throughput_tok_s"], base["throughput_tok_s"])
        decode = _ratio(mine["decode_tok_s"], base["decode_tok_s"])
        model = speed_model(n, _requests(eagle3["rows"], "eagle3", n), _requests(plain["rows"], "baseline", n),
                            infos, mine["tau"], decode)
        levels.append({"concurrency": n, "speedup": throughput, "decode_speedup": decode,
                       "speed_model": model.to_json()})
        if streak:
            if throughput is None:
                streak = False
            elif throughput > 1:
                last_win = n
            else:
                first_loss, streak = n, False
    return {"levels": levels, "crossover": {"last_win": last_win, "first_loss": first_loss}}


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return mine / theirs if mine is not None and theirs else None


def _requests(rows: list[list], server: str, concurrency: int) -> list:
    """bench's RequestFigures for the rows of one level (only the fields the speed model reads)."""
    from eagle3_patch.bench.stats import RequestFigures

    figures = []
    for row in rows:
        values = dict(zip(ROW, row, strict=True))
        if values["concurrency"] != concurrency:
            continue
        figures.append(RequestFigures(
            server=server, prompt_id="", bucket="", run=0, output_tokens=values["output_tokens"],
            ttft_s=values["ttft_s"], decode_s=values["decode_s"], decode_tok_s=values["decode_tok_s"],
            verify_ct=values["verify_ct"], tau=None, finish_reason=None, output_ids=(), concurrency=concurrency))
    return figures


def predicted_from(wrong: dict, plain: dict, right: dict) -> dict | None:
    """What a wrong drafter's round cost predicts for the right drafter at level 1: the same chain
    config makes the same rounds, so c measured where almost nothing is accepted should carry over
    to tau 4. None until all three were measured."""
    if not (wrong.get("levels") and plain.get("levels") and right.get("levels")):
        return None
    measured = join(plain, right)["levels"]
    model = join(plain, wrong)["levels"]
    if not measured or not model:
        return None
    cost, tau = model[0]["speed_model"]["round_cost"], right["levels"][0]["tau"]
    predicted = tau / cost if cost and tau else None
    actual = measured[0]["decode_speedup"]
    return {"round_cost": cost, "right_tau": tau, "predicted_speedup": predicted, "measured_speedup": actual,
            "predicted_over_measured": _ratio(predicted, actual)}
