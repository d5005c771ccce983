"""The first GPU proof's phases, on the tiny const/random models (``build_models.py OUT``):

  stock     stock SGLang launched with EAGLE-3 on the tiny target: what exactly happens
  patched   ``eagle3-patch apply``, then ``eagle3-patch serve`` (a real exec) for the agreeing
            and the random drafter, each benchmarked against a plain server of its target
  inmemory  ``eagle3-patch revert`` (files byte-identical to pip's RECORD), then
            ``eagle3-patch serve --in-memory`` for both drafters, benchmarked again; every file
            under sglang/srt/models (with __pycache__) hashed before and after
  load      ``eagle3-patch bench --concurrency 1,4,16`` against the in-memory server
"""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import sys
import threading

from kits import E3, PAIRS, PLAIN_FLAGS, PORTS, TINY_FLAGS
from servers import http, traceback_excerpt

BENCH = ["--max-new-tokens", "96", "--runs", "2", "--warmup", "1", "--timeout", "300"]
LOAD_LEVELS = "1,4,16"
# Every SGLang process of these phases writes its imports to its log: the carried set is checked
# against what the launches really import (runtime.py's EXCLUDED and TRIM).
IMPORT_TRACE = {"PYTHONPROFILEIMPORTTIME": "1"}


def _model(run, name: str) -> str:
    return os.path.join(run.models, name)


def _build(run) -> None:
    if not run.results.get("models") or not os.path.isdir(_model(run, "target-const")):
        done = run.command([sys.executable, os.path.join(os.path.dirname(__file__), "build_models.py"), run.models],
                           timeout=600)
        if done.get("json") is not None:
            run.results["models"] = done["json"]
            run.save()


def _plain(run, label: str, target: str) -> dict:
    if label in run.servers and (run.dry_run or run.servers[label].alive()):
        return {"state": "up"}
    argv = [sys.executable, "-m", "sglang.launch_server", "--model-path", _model(run, target),
            *PLAIN_FLAGS, *TINY_FLAGS, "--port", str(PORTS[label])]
    return run.bring_up(label, argv, {**run.env, **IMPORT_TRACE})


def _serve(run, label: str, target: str, drafter: str, *mode: str) -> dict:
    argv = [*E3, "serve", *mode, "--model", _model(run, target), "--drafter", _model(run, drafter),
            "--", *TINY_FLAGS, "--port", str(PORTS[label])]
    return run.bring_up(label, argv, {**run.env, **IMPORT_TRACE})


def status(result: dict) -> dict:
    parsed = result.get("json") or {}
    return {"rc": result.get("rc"), "state": parsed.get("state"), "capture_works": parsed.get("capture_works"),
            "sglang_version": parsed.get("sglang_version"), "sglang_dir": parsed.get("sglang_dir")}


def stock(run) -> None:
    _build(run)
    before = status(run.e3("status", "--json"))
    if before["state"] != "unpatched" and not run.dry_run:
        # A patch left by an earlier run would hide the failure this phase is about.
        run.record("stock", "revert_first", run.e3("revert", "--json"))
        before = status(run.e3("status", "--json"))
    run.record("stock", "status", before)
    plan = run.e3("serve", "--model", _model(run, "target-const"), "--drafter", _model(run, "drafter-agree"),
                  "--dry-run", "--json", "--", *TINY_FLAGS, "--port", str(PORTS["stock"]))
    launch = plan.get("json") or {"argv": [], "env": {}}
    run.record("stock", "launch", {
        "argv": launch["argv"], "env": launch["env"],
        "how": "the argv `eagle3-patch serve --dry-run` prints, run on the unpatched install"})
    server = run.start("stock", launch["argv"], {**run.env, **IMPORT_TRACE, **launch["env"]})
    if run.dry_run:
        return
    state = server.wait_up(min(420, run.left()))
    outcome = {"came_up": state}
    if state == "up":
        answer: dict = {}
        request = threading.Thread(target=lambda: answer.update(zip(("http_status", "body"), http(
            server.url + "/generate", {"text": "Hello, world.", "sampling_params": {
                "max_new_tokens": 8, "temperature": 0.0}}, timeout=min(300, run.left())), strict=True)))
        request.start()
        # The stock server has sized its memory by now; the plain servers a later phase
        # needs start while it runs its first forward pass.
        if "inmemory" in run.phases:
            for target, _, plain in PAIRS.values():
                run.record("stock", f"up-{plain}", _plain(run, plain, target))
        request.join()
        outcome["generate"] = {"http_status": answer.get("http_status"), "body": str(answer.get("body"))[:1000]}
        outcome["exit_code"] = server.wait_exit(min(120, max(run.left(), 1)))
    else:
        outcome["exit_code"] = server.exit_code()
    outcome["traceback"] = traceback_excerpt(server.log_tail(2_000_000))
    outcome["crashed"] = bool(outcome["traceback"]) and outcome.get("exit_code") is not None
    run.stop("stock")
    run.record("stock", "outcome", outcome)


def patched(run) -> None:
    _build(run)
    run.record("patched", "apply", run.e3("apply", "--json"))
    for label, (target, drafter, plain) in PAIRS.items():
        run.record("patched", f"up-{plain}", _plain(run, plain, target))
        run.record("patched", f"up-{label}", _serve(run, label, target, drafter))
    for label, (_, _, plain) in PAIRS.items():
        run.bench("patched", f"bench-{label}", label, plain, *BENCH)
    run.stop(*PAIRS)


def inmemory(run) -> None:
    _build(run)
    sglang_dir = (run.e3("status", "--json").get("json") or {}).get("sglang_dir", "")
    run.record("inmemory", "revert", run.e3("revert", "--json"))
    models_dir = os.path.join(sglang_dir, "srt", "models")
    run.record("inmemory", "against_record", against_record(sglang_dir) if not run.dry_run else {})
    before = tree_digest(models_dir) if not run.dry_run else {}
    for label, (target, drafter, plain) in PAIRS.items():
        run.record("inmemory", f"up-{plain}", _plain(run, plain, target))
        run.record("inmemory", f"up-{label}", _serve(run, f"{label}-inmemory", target, drafter, "--in-memory"))
    for label, (_, _, plain) in PAIRS.items():
        run.bench("inmemory", f"bench-{label}", f"{label}-inmemory", plain, *BENCH)
    if "load" in run.phases:
        run.begin("load")
        _load_levels(run)
    run.stop("agree-inmemory", "random-inmemory")
    after = tree_digest(models_dir) if not run.dry_run else {}
    run.record("inmemory", "models_tree", {"files": len(before), "unchanged": before == after,
                                           "changed": sorted(k for k in set(before) | set(after)
                                                             if before.get(k) != after.get(k))})
    run.record("inmemory", "status_after", status(run.e3("status", "--json")))


def load(run) -> None:
    if "inmemory" in run.phases:
        return  # measured inside inmemory, while its servers are up
    _build(run)
    _load_levels(run)


def _load_levels(run) -> None:
    if "agree-inmemory" not in run.servers:  # run on its own: bring the servers it needs
        _plain(run, "plain-const", "target-const")
        _serve(run, "agree-inmemory", "target-const", "drafter-agree", "--in-memory")
    run.bench("load", "bench-agree", "agree-inmemory", "plain-const", *BENCH, "--concurrency", LOAD_LEVELS,
              "--max-new-tokens", "64")


def tree_digest(folder: str) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, __pycache__ included."""
    digests = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                digests[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return digests


def against_record(sglang_dir: str) -> dict:
    """Every file pip's RECORD lists under sglang/srt/models, compared with its recorded hash."""
    site = os.path.dirname(sglang_dir)
    records = glob.glob(os.path.join(site, "sglang-*.dist-info", "RECORD"))
    if not records:
        return {"error": "no sglang dist-info RECORD"}
    checked, differ, extra = 0, [], []
    listed = set()
    with open(records[0], encoding="utf-8") as handle:
        for line in handle:
            path, digest, _ = line.rstrip("\n").rsplit(",", 2)
            if not path.startswith("sglang/srt/models/") or not digest.startswith("sha256="):
                continue
            listed.add(path)
            with open(os.path.join(site, path), "rb") as data:
                actual = base64.urlsafe_b64encode(hashlib.sha256(data.read()).digest()).rstrip(b"=").decode()
            checked += 1
            if actual != digest[len("sha256="):]:
                differ.append(path)
    for root, dirs, files in os.walk(os.path.join(sglang_dir, "srt", "models")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            relative = os.path.relpath(os.path.join(root, name), site)
            if relative not in listed:
                extra.append(relative)
    return {"checked": checked, "differ": differ, "not_in_record": sorted(extra),
            "identical": checked > 0 and not differ and not extra}


def import_trace(out: str, site: str) -> dict:
    """Which carried distributions the servers imported (from PYTHONPROFILEIMPORTTIME lines)."""
    imported_modules = set()
    for log in glob.glob(os.path.join(out, "server-*.log")):
        with open(log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("import time:") and "|" in line:
                    name = line.rsplit("|", 1)[1].strip()
                    if name and not name.startswith("[") and name != "package":
                        imported_modules.add(name.split(".")[0])
    owners: dict[str, set[str]] = {}
    for record in glob.glob(os.path.join(site, "*.dist-info", "RECORD")):
        dist = os.path.basename(os.path.dirname(record)).split("-")[0]
        with open(record, encoding="utf-8") as handle:
            for line in handle:
                top = line.split(",", 1)[0].split("/")[0]
                if top.endswith(".py"):
                    top = top[:-3]
                if top and not top.endswith((".dist-info", ".data", "..")) and top != "bin":
                    owners.setdefault(dist, set()).add(top)
    carried = sorted(owners)
    used = sorted(d for d, tops in owners.items() if tops & imported_modules)
    return {"carried": carried, "imported": used, "not_imported": sorted(set(carried) - set(used)),
            "modules_seen": len(imported_modules)}


PHASES = {"stock": stock, "patched": patched, "inmemory": inmemory, "load": load}
