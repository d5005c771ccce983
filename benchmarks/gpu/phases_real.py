"""Issue 22's phases: capture of the configured layers on the tiny kit, then the Qwen3.6-27B shape
with CUDA graphs on. The order and the call each phase fits in are in README.md ("The call plan").

A 27B server fills most of the card, so they run one at a time (memory_plan.beside_plain says
how few requests an EAGLE-3 server would keep beside a plain one), each benchmarked alone and
joined afterwards (figures.join). Their memory flags are planned once, in prep, from the memory
free with no server up; every later phase reuses that plan, so a server prestarted by one call
has exactly the argv the next call asks for.
"""

from __future__ import annotations

import json
import os
import sys

import memory_plan
from kits import (DRAFTERS, E3, LEVELS, PLAIN_FLAGS, PORTS, REAL_FLAGS, REAL_KIT, REAL_PLAIN_FLAGS, TARGET,
                  TINY_FLAGS, TINY_KIT, kit_model)
from phases_proof import against_record, status, tree_digest

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_BENCH = ["--max-new-tokens", "96", "--runs", "2", "--warmup", "1", "--timeout", "300"]
# Level 1 is the single-stream figure (12 requests of 128 tokens); 4N requests at higher levels.
LEVEL_BENCH = ["--max-new-tokens", "128", "--runs", "2", "--warmup", "2", "--timeout", "300",
               "--concurrency", ",".join(map(str, LEVELS))]
SHORT_BENCH = ["--max-new-tokens", "64", "--runs", "2", "--warmup", "1", "--timeout", "300"]
# As long as real-eagle3's level 1, so the in-memory server's single-stream figure compares with it.
INMEMORY_BENCH = ["--max-new-tokens", "128", "--runs", "2", "--warmup", "1", "--timeout", "300"]
GREEDY_TOKENS = 64
PRESTARTABLE = ("real-plain", "real-right", "real-later", "real-earlier")
# --dry-run only, where nothing is measured: what nvidia-smi showed free on each card with no
# process on it, the 27B target (transformers' meta-device build, 54.7 GB), a drafter of about the
# card's size, and the 27B's linear_state_bytes.
NOMINAL_FREE_GIB = {"h100": 79.1, "h200": 139.8}
NOMINAL = {"target_bytes": 54_700_000_000, "drafter_bytes": int(1.3 * memory_plan.GIB), "state_bytes": 153_944_064}


def _kit_complete(run, kit: str) -> bool:
    return all(os.path.isfile(os.path.join(kit_model(run.models, kit, name), "config.json"))
               for name in (TARGET, *DRAFTERS))


def prep(run) -> None:
    run.keep_only(set())  # free memory is measured, and the plan made, with no server up
    run.record("prep", "gpu", run.gpu())
    probe = run.command([sys.executable, os.path.join(HERE, "gpu_probe.py")], timeout=180)
    card = probe.get("json") or {"error": (probe.get("stderr") or "")[-2000:], "rc": probe.get("rc")}
    run.record("prep", "card", card)
    for kit in (TINY_KIT, REAL_KIT):
        if not run.dry_run and _kit_complete(run, kit):
            run.record("prep", f"build-{kit}", {"kept": "built by an earlier call on this machine"})
            continue
        done = run.command([sys.executable, os.path.join(HERE, "build_models.py"), run.models, "--kit", kit],
                           timeout=300)
        run.record("prep", f"build-{kit}", {key: done.get(key) for key in ("rc", "seconds", "json", "stderr")})
    if run.dry_run:
        run.say(f"  plan: {json.dumps(plans(run))}")
        return
    target = kit_model(run.models, REAL_KIT, TARGET)
    parts = memory_plan.weight_bytes(target)
    drafter = sum(memory_plan.weight_bytes(kit_model(run.models, REAL_KIT, "right")).values())
    with open(os.path.join(target, "config.json"), encoding="utf-8") as handle:
        state = memory_plan.linear_state_bytes(json.load(handle)["text_config"])
    read = memory_plan.decode_read_bytes(parts)
    bandwidth = card.get("bandwidth") or {}
    run.record("prep", "hbm", {
        "parts": parts, "bytes_per_step": read, "reads": list(memory_plan.DECODE_READS),
        "bandwidth_best_gbs": bandwidth.get("best_gbs"), "bandwidth_median_gbs": bandwidth.get("median_gbs"),
        "limit_tok_s": bandwidth["best_gbs"] * 1e9 / read if bandwidth.get("best_gbs") else None,
        "limit_tok_s_median": bandwidth["median_gbs"] * 1e9 / read if bandwidth.get("median_gbs") else None})
    run.record("prep", "memory", _memory(card["memory_free_mib"] / 1024, sum(parts.values()), drafter, state))


def _memory(free_gib: float, target_bytes: int, drafter_bytes: int, state_bytes: int) -> dict:
    sizes = (target_bytes / memory_plan.GIB, drafter_bytes / memory_plan.GIB, state_bytes / memory_plan.GIB)
    made = {role: memory_plan.plan_server(role, free_gib, *sizes) for role in ("plain", "eagle3")}
    return {"free_gib": round(free_gib, 2), "target_bytes": target_bytes, "drafter_bytes": drafter_bytes,
            "state_bytes": state_bytes, "plans": {role: plan.to_json() for role, plan in made.items()},
            "eagle3_beside_plain": memory_plan.beside_plain(made["plain"], free_gib, *sizes),
            "table": {"reserve_gib": memory_plan.RESERVE_GIB, "draft_gib": memory_plan.DRAFT_GIB,
                      "kv_gib": memory_plan.KV_GIB, "slots": memory_plan.SLOTS,
                      "max_running": memory_plan.MAX_RUNNING}}


def plans(run) -> dict[str, list[str]]:
    """The memory flags per role ("plain", "eagle3") that prep planned for this card."""
    if run.dry_run:
        memory = _memory(NOMINAL_FREE_GIB[run.dry_run_gpu], *NOMINAL.values())
    else:
        memory = run.results["phases"]["prep"]["memory"]
    return {role: plan["flags"] for role, plan in memory["plans"].items()}


def ensure_prep(run) -> None:
    """Prep's plan and both kits must be there for this very GPU, else prep runs first: a phase
    on a fresh machine (the last one was lost) still runs."""
    if run.dry_run:
        return
    done = run.results.get("phases", {}).get("prep", {})
    if (not done.get("memory") or (done.get("gpu") or {}).get("uuid") != run.gpu()["uuid"]
            or not all(_kit_complete(run, kit) for kit in (TINY_KIT, REAL_KIT))):
        run.say("  prep first: no plan for this GPU or no kits on this machine")
        run.begin("prep")
        prep(run)


def real_argv(run, name: str) -> list[str]:
    """The launch of a 27B server: ``real-plain``, ``real-{drafter}`` or ``real-right-inmemory``."""
    target = kit_model(run.models, REAL_KIT, TARGET)
    port = ["--port", str(PORTS[name])]
    if name == "real-plain":
        return [sys.executable, "-m", "sglang.launch_server", "--model-path", target, *PLAIN_FLAGS,
                *REAL_PLAIN_FLAGS, *REAL_FLAGS, *plans(run)["plain"], *port]
    drafter = name.split("-")[1]
    mode = ["--in-memory"] if name.endswith("-inmemory") else []
    return [*E3, "serve", *mode, "--model", target, "--drafter", kit_model(run.models, REAL_KIT, drafter), "--",
            *REAL_FLAGS, *plans(run)["eagle3"], *port]


def _up(run, phase: str, name: str, key: str = "up") -> bool:
    run.keep_only({name})
    info = run.bring_up(name, real_argv(run, name), timeout=540)
    run.record(phase, key, info)
    return info["state"] == "up"


def compare_greedy(mine: list[dict], theirs: list[dict]) -> dict:
    """Token-by-token equality with the plain server's greedy outputs, prompt by prompt."""
    plain = {o["id"]: o.get("output_ids") for o in theirs}
    pairs = [(o["id"], o.get("output_ids"), plain.get(o["id"])) for o in mine]
    differ = [pid for pid, ids, base in pairs if not ids or ids != base]
    verify = sum(o.get("spec_verify_ct") or 0 for o in mine)
    return {"outputs": mine, "compared": len(pairs), "differ": differ,
            "identical": bool(pairs) and not differ,
            "all_token_0": bool(pairs) and all(ids and set(ids) == {0} for _, ids, _ in pairs),
            "tau": sum(o.get("completion_tokens") or 0 for o in mine) / verify if verify else None}


def _plain_outputs(run) -> list[dict]:
    return ((run.results.get("phases", {}).get("real-plain") or {}).get("greedy") or {}).get("outputs") or []


def capture(run) -> None:
    ensure_prep(run)
    names = ["tiny-plain", *(f"tiny-{d}" for d in DRAFTERS)]
    run.keep_only(set(names))
    run.record("capture", "gpu", run.gpu())
    run.record("capture", "apply", run.e3("apply", "--json"))
    run.record("capture", "status", status(run.e3("status", "--json")))
    target = kit_model(run.models, TINY_KIT, TARGET)
    up = {"tiny-plain": run.bring_up("tiny-plain", [sys.executable, "-m", "sglang.launch_server", "--model-path",
                                                    target, *PLAIN_FLAGS, *TINY_FLAGS, "--port",
                                                    str(PORTS["tiny-plain"])])}
    for drafter in DRAFTERS:
        name = f"tiny-{drafter}"
        up[name] = run.bring_up(name, [*E3, "serve", "--model", target, "--drafter",
                                       kit_model(run.models, TINY_KIT, drafter), "--", *TINY_FLAGS, "--port",
                                       str(PORTS[name])])
    for name, info in up.items():
        run.record("capture", f"up-{name}", info)
    for drafter in DRAFTERS:
        if up[f"tiny-{drafter}"]["state"] == up["tiny-plain"]["state"] == "up":
            run.bench("capture", f"bench-{drafter}", f"tiny-{drafter}", "tiny-plain", *TINY_BENCH)
    run.stop(*names)


def real_plain(run) -> None:
    ensure_prep(run)
    run.record("real-plain", "gpu", run.gpu())
    if _up(run, "real-plain", "real-plain"):
        run.record("real-plain", "greedy", {"outputs": run.greedy("real-plain", GREEDY_TOKENS)})
        run.bench("real-plain", "bench", "real-plain", None, *LEVEL_BENCH)
    run.stop("real-plain")


def real_eagle3(run) -> None:
    ensure_prep(run)
    run.record("real-eagle3", "gpu", run.gpu())
    run.record("real-eagle3", "apply", run.e3("apply", "--json"))
    if _up(run, "real-eagle3", "real-right"):
        run.record("real-eagle3", "greedy", compare_greedy(run.greedy("real-right", GREEDY_TOKENS),
                                                           _plain_outputs(run)))
        run.bench("real-eagle3", "bench", "real-right", None, *LEVEL_BENCH)
    run.stop("real-right")


def real_wrong(run) -> None:
    ensure_prep(run)
    run.record("real-wrong", "gpu", run.gpu())
    for drafter in DRAFTERS[1:]:
        if run.left() < 150:
            run.record("real-wrong", f"up-{drafter}", {"state": "skipped", "why": f"{run.left():.0f} s left"})
            continue
        if _up(run, "real-wrong", f"real-{drafter}", f"up-{drafter}"):
            run.bench("real-wrong", f"bench-{drafter}", f"real-{drafter}", None, *SHORT_BENCH)
        run.stop(f"real-{drafter}")


def real_inmemory(run) -> None:
    ensure_prep(run)
    name = "real-right-inmemory"
    run.keep_only(set())  # revert rewrites SGLang's model files: nothing may be loading them
    run.record("real-inmemory", "gpu", run.gpu())
    sglang_dir = (run.e3("status", "--json").get("json") or {}).get("sglang_dir", "")
    models_dir = os.path.join(sglang_dir, "srt", "models")
    run.record("real-inmemory", "revert", run.e3("revert", "--json"))
    run.record("real-inmemory", "against_record", against_record(sglang_dir) if not run.dry_run else {})
    before = tree_digest(models_dir) if not run.dry_run else {}
    if _up(run, "real-inmemory", name):
        run.record("real-inmemory", "greedy", compare_greedy(run.greedy(name, GREEDY_TOKENS), _plain_outputs(run)))
        run.bench("real-inmemory", "bench", name, None, *INMEMORY_BENCH)
    run.stop(name)
    after = tree_digest(models_dir) if not run.dry_run else {}
    run.record("real-inmemory", "models_tree", {"files": len(before), "unchanged": before == after,
                                                "changed": sorted(k for k in set(before) | set(after)
                                                                  if before.get(k) != after.get(k))})
    run.record("real-inmemory", "status_after", status(run.e3("status", "--json")))


def prestart(run, name: str) -> None:
    """Start ``name`` now, in its own session, for the next call to adopt: its load and graph
    capture overlap the gap between calls. Only after this call's servers are stopped."""
    ensure_prep(run)
    run.keep_only({name})
    server = run.adopt_or_start(name, real_argv(run, name))
    run.results["prestarted"] = {"name": name, "pid": server.pid, "argv": server.argv}
    run.save()


PHASES = {"prep": prep, "capture": capture, "real-plain": real_plain, "real-eagle3": real_eagle3,
          "real-wrong": real_wrong, "real-inmemory": real_inmemory}
