"""The verdict, the merge of several driver runs, and whether a second run reproduced the first.

Every check reads recorded figures only; a phase that was not run adds no check (the record names
it as not run), so a partial record passes or fails on what it holds.
"""

from __future__ import annotations

import json

from figures import join, predicted_from
from kits import LEVELS

TAU_AGREE, TAU_TOLERANCE, TAU_RANDOM_MAX = 4.0, 0.05, 1.3
SPEED_TOLERANCE = 0.10  # the speed model's prediction, and a second run's speeds
REAL_PHASES = ("prep", "capture", "real-plain", "real-eagle3", "real-wrong", "real-inmemory")


def _tau_right(tau) -> bool:
    return tau is not None and abs(tau - TAU_AGREE) <= TAU_TOLERANCE


def _tau_wrong(tau) -> bool:
    return tau is not None and tau <= TAU_RANDOM_MAX


def _within(ratio, tolerance: float = SPEED_TOLERANCE) -> bool:
    return ratio is not None and abs(ratio - 1) <= tolerance


def verdict(results: dict) -> dict:
    """Each 'done when' criterion, true or false, from the recorded figures."""
    phases = results.get("phases", {})
    checks = _first_proof(phases)
    for phase in REAL_PHASES:
        checks.update(_ran_through(phase, phases.get(phase)))
    prep = phases.get("prep", {})
    if "hbm" in prep:
        checks["prep_hbm_limit_measured"] = bool((prep["hbm"] or {}).get("limit_tok_s"))
    capture = phases.get("capture", {})
    for name in ("right", "later", "earlier"):
        summary = (capture.get(f"bench-{name}") or {}).get("summary") or {}
        if summary:
            checks[f"capture_{name}_tau"] = (_tau_right if name == "right" else _tau_wrong)(summary.get("tau"))
        if summary and name == "right":
            checks["capture_right_identical"] = summary.get("match_rate") == 1.0
    plain, right = _alone(phases, "real-plain"), _alone(phases, "real-eagle3")
    for phase, summary in (("real-plain", plain), ("real-eagle3", right)):
        up = phases.get(phase, {}).get("up") or {}
        if up.get("state") == "up":
            checks[f"{phase.replace('-', '_')}_cuda_graphs_on"] = _graphs_on(up)
        if summary:
            measured = [level["concurrency"] for level in summary["levels"]]
            checks[f"{phase.replace('-', '_')}_levels"] = measured == list(LEVELS)
    if right:
        checks["real_right_tau"] = _tau_right(right.get("tau"))
    greedy = phases.get("real-eagle3", {}).get("greedy") or {}
    if "identical" in greedy:
        checks["real_right_identical"] = bool(greedy["identical"])
    ratio = hbm_ratio(results)
    if ratio is not None:
        checks["real_plain_within_hbm_limit"] = ratio <= 1.0
    for name in ("later", "earlier"):
        summary = _alone(phases, "real-wrong", f"bench-{name}")
        if summary:
            checks[f"real_{name}_tau"] = _tau_wrong(summary.get("tau"))
    checks.update(_inmemory_real(phases.get("real-inmemory", {})))
    checks.update(_speed_model(phases))
    for phase, same in (results.get("reproduction") or {}).items():
        checks[f"reproduced_{phase.replace('-', '_')}"] = same["reproduced"]
    return checks


def _ran_through(phase: str, data: dict | None) -> dict:
    """A phase that ran: no driver error, and every server it asked for came up (one skipped
    for the budget is not run, not failed)."""
    if data is None:
        return {}
    name = phase.replace("-", "_")
    checks = {f"{name}_ran_through": "driver_error" not in data}
    for key, value in data.items():
        if (key == "up" or key.startswith("up-")) and isinstance(value, dict) and value.get("state") != "skipped":
            checks[f"{name}_{key.replace('-', '_')}"] = value.get("state") == "up"
    return checks


def _first_proof(phases: dict) -> dict:
    """The first GPU proof's checks (stock, patched, inmemory, load on the tiny const/random pair)."""
    checks = {}
    stock = phases.get("stock", {}).get("outcome")
    if stock:
        checks["stock_fails"] = bool(stock.get("crashed")) or (stock.get("generate") or {}).get("http_status") != 200
    for phase in ("patched", "inmemory"):
        agree = (phases.get(phase, {}).get("bench-agree") or {}).get("summary") or {}
        rand = (phases.get(phase, {}).get("bench-random") or {}).get("summary") or {}
        if agree:
            checks[f"{phase}_agree_tau"] = _tau_right(agree.get("tau"))
            checks[f"{phase}_agree_identical"] = agree.get("match_rate") == 1.0
        if rand:
            checks[f"{phase}_random_tau"] = _tau_wrong(rand.get("tau"))
            checks[f"{phase}_random_divergences_classified"] = all(
                d["verdict"] in ("near-tie", "real") for d in rand.get("divergences", []))
    inmemory = phases.get("inmemory", {})
    if "against_record" in inmemory:
        checks["revert_byte_identical"] = bool(inmemory["against_record"].get("identical"))
    if "models_tree" in inmemory:
        checks["inmemory_tree_unchanged"] = bool(inmemory["models_tree"].get("unchanged"))
    load = (phases.get("load", {}).get("bench-agree") or {}).get("summary") or {}
    if load:
        checks["load_levels"] = len(load.get("levels") or []) >= 3
    return checks


def _inmemory_real(data: dict) -> dict:
    checks = {}
    if "against_record" in data:
        checks["real_inmemory_revert_byte_identical"] = bool(data["against_record"].get("identical"))
    summary = (data.get("bench") or {}).get("summary") or {}
    if summary:
        checks["real_inmemory_right_tau"] = _tau_right(summary.get("tau"))
    if "identical" in (data.get("greedy") or {}):
        checks["real_inmemory_identical"] = bool(data["greedy"]["identical"])
    if "models_tree" in data:
        checks["real_inmemory_tree_unchanged"] = bool(data["models_tree"].get("unchanged"))
    return checks


def _speed_model(phases: dict) -> dict:
    checks = {}
    joined = speed_join(phases)
    if joined:
        ratios = [lv["speed_model"].get("predicted_over_measured") for lv in joined["levels"]]
        if ratios:
            checks["speed_model_single_stream"] = _within(ratios[0])
            checks["speed_model_every_level"] = all(_within(r) for r in ratios)
    for name in ("later", "earlier"):
        carried = wrong_prediction(phases, name)
        if carried:
            checks[f"speed_model_from_{name}_drafter"] = _within(carried.get("predicted_over_measured"))
    return checks


def _alone(phases: dict, phase: str, key: str = "bench") -> dict:
    return ((phases.get(phase) or {}).get(key) or {}).get("summary") or {}


def _graphs_on(up: dict) -> bool:
    """CUDA graphs were captured: SGLang said so in the log and /server_info does not say disabled."""
    info = up.get("server_info") or {}
    return bool((up.get("log_figures") or {}).get("cuda_graph_bs")) and info.get("disable_cuda_graph") is False


def same_gpu(phases: dict, *names: str) -> bool:
    """Figures of these phases may be compared: each ran on the same kind of GPU (name)."""
    gpus = {((phases.get(name) or {}).get("gpu") or {}).get("name") for name in names}
    return len(gpus) == 1 and None not in gpus


def speed_join(phases: dict) -> dict | None:
    """real-plain beside real-eagle3 (figures.join), where both were measured on the same GPU."""
    plain, right = _alone(phases, "real-plain"), _alone(phases, "real-eagle3")
    if not (plain and right and same_gpu(phases, "real-plain", "real-eagle3")):
        return None
    return join(plain, right)


def wrong_prediction(phases: dict, name: str) -> dict | None:
    if not same_gpu(phases, "real-plain", "real-eagle3", "real-wrong"):
        return None
    return predicted_from(_alone(phases, "real-wrong", f"bench-{name}"), _alone(phases, "real-plain"),
                          _alone(phases, "real-eagle3"))


def hbm_ratio(results: dict) -> float | None:
    """Plain single-stream decode tok/s / the HBM limit tok/s, both measured on the same GPU."""
    phases = results.get("phases", {})
    limit = ((phases.get("prep") or {}).get("hbm") or {}).get("limit_tok_s")
    plain = _alone(phases, "real-plain").get("decode_tok_s")
    if not (limit and plain and same_gpu(phases, "prep", "real-plain")):
        return None
    return plain / limit


def phase_figures(phase: str, data: dict) -> dict[str, dict[str, float]]:
    """What a second run must reproduce of one phase: tau exactly, speeds within 10 %."""
    taus: dict[str, float] = {}
    speeds: dict[str, float] = {}
    if phase == "prep":
        speeds["copy GB/s (best)"] = ((data.get("card") or {}).get("bandwidth") or {}).get("best_gbs")
    if phase == "capture":
        for name in ("right", "later", "earlier"):
            taus[f"tau {name}"] = ((data.get(f"bench-{name}") or {}).get("summary") or {}).get("tau")
    benches = {"bench": ""} if phase != "real-wrong" else {"bench-later": "later ", "bench-earlier": "earlier "}
    for key, label in benches.items():
        for level in ((data.get(key) or {}).get("summary") or {}).get("levels", []):
            n = level["concurrency"]
            taus[f"{label}tau at {n}"] = level.get("tau")
            speeds[f"{label}decode tok/s at {n}"] = level.get("decode_tok_s")
            speeds[f"{label}throughput tok/s at {n}"] = level.get("throughput_tok_s")
    return {"tau": {k: v for k, v in taus.items() if v is not None},
            "speed": {k: v for k, v in speeds.items() if v is not None}}


def reproduction(phase: str, first: dict, second: dict) -> dict:
    """Two runs of one phase: every tau both measured equal, every speed within 10 %."""
    a, b = phase_figures(phase, first), phase_figures(phase, second)
    taus = [{"figure": k, "first": a["tau"][k], "second": b["tau"][k], "same": a["tau"][k] == b["tau"][k]}
            for k in sorted(set(a["tau"]) & set(b["tau"]))]
    speeds = [{"figure": k, "first": a["speed"][k], "second": b["speed"][k],
               "same": _within(b["speed"][k] / a["speed"][k]) if a["speed"][k] else False}
              for k in sorted(set(a["speed"]) & set(b["speed"]))]
    compared = taus + speeds
    return {"taus": taus, "speeds": speeds, "reproduced": bool(compared) and all(c["same"] for c in compared)}


def merge(parts: list[dict]) -> dict:
    """Runs in order; each phase from the last run that did it, the run before kept as ``earlier``
    and compared with it (``reproduction``); the verdict recomputed. The same phase record handed
    in twice (each call's results.json holds all earlier ones of its machine) counts once."""
    merged: dict = {"runs": [], "phases": {}}
    seen_runs: set[str] = set()
    instances: dict[str, list[dict]] = {}
    for part in parts:
        for run in part.get("runs", []):
            if json.dumps(run, sort_keys=True) not in seen_runs:
                seen_runs.add(json.dumps(run, sort_keys=True))
                merged["runs"].append(run)
        # A merged record hands in the run before each phase's latest as ``earlier``: merging it
        # again keeps that run, so a merge of a merge is the same record.
        for phase, data in [*part.get("earlier", {}).items(), *part.get("phases", {}).items()]:
            data = dict(data)
            data.setdefault("from_run", part["runs"][0]["started"] if part.get("runs") else None)
            known = instances.setdefault(phase, [])
            if not any(json.dumps(data, sort_keys=True) == json.dumps(k, sort_keys=True) for k in known):
                known.append(data)
        for key in ("models", "imports"):
            if key in part:
                merged[key] = part[key]
        notes = merged.setdefault("notes", [])
        notes += [note for note in part.get("notes", []) if note not in notes]
    reproduced = {}
    for phase, known in instances.items():
        # A retry after an attempt that measured nothing is not a second run of the phase.
        measured = [k for k in known if any(phase_figures(phase, k).values())] if phase in REAL_PHASES else []
        merged["phases"][phase] = measured[-1] if measured else known[-1]
        if len(measured) > 1:
            merged.setdefault("earlier", {})[phase] = measured[-2]
            reproduced[phase] = reproduction(phase, measured[-2], measured[-1])
    if reproduced:
        merged["reproduction"] = reproduced
    merged["verdict"] = verdict(merged)
    return merged
