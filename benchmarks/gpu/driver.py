"""The GPU proof, in one command: stock SGLang fails, eagle3-patch makes it serve EAGLE-3.

On a CUDA machine whose Python imports SGLang 0.5.12 (the wheel set of ``runtime.py``) and
eagle3-patch (``src/`` on PYTHONPATH), this runs and records, in order:

  stock     stock SGLang launched with EAGLE-3 on the tiny target: what exactly happens
  patched   ``eagle3-patch apply``, then ``eagle3-patch serve`` (a real exec) for the agreeing
            and the random drafter, each benchmarked against a plain server of its target
  inmemory  ``eagle3-patch revert`` (files byte-identical to pip's RECORD), then
            ``eagle3-patch serve --in-memory`` for both drafters, benchmarked again; every file
            under sglang/srt/models (with __pycache__) hashed before and after
  load      ``eagle3-patch bench --concurrency 1,4,16`` against the in-memory server

    python driver.py run --out DIR [--phases stock,patched,inmemory,load] [--dry-run]
    python driver.py render results.json > RESULTS.md

Results accumulate in ``DIR/results.json`` (a later call adds its phases), with every server's
log beside it. Each phase records what it saw even when a step fails, and the run stops a
phase early rather than outlive ``--budget-s``. ``--dry-run`` prints the plan and starts nothing.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PHASES = ("stock", "patched", "inmemory", "load")
E3 = [sys.executable, "-m", "eagle3_patch"]

# Flags the tiny model needs after `--`, each for a reason unrelated to capture:
TINY_FLAGS = [
    "--attention-backend", "triton",  # the FA3 ops are trimmed from the carried sgl_kernel
    "--mem-fraction-static", "0.12",  # several servers share the one GPU
    "--disable-cuda-graph",  # start in seconds; CUDA graphs are not what is being proven
    "--skip-server-warmup",  # the benchmark warms up; the server's own warm-up costs a minute
    "--context-length", "4096",  # the tiny target declares 8192; the prompts need far less
    "--grammar-backend", "none",  # no structured output is asked for
    "--host", "127.0.0.1",
]
PLAIN_FLAGS = ["--mm-attention-backend", "sdpa", "--dtype", "bfloat16"]
PORTS = {"stock": 31000, "plain-const": 31001, "plain-random": 31002, "agree": 31003, "random": 31004,
         "agree-inmemory": 31005, "random-inmemory": 31006}
PAIRS = {"agree": ("target-const", "drafter-agree", "plain-const"),
         "random": ("target-random", "drafter-random", "plain-random")}
BENCH = ["--max-new-tokens", "96", "--runs", "2", "--warmup", "1", "--ignore-eos", "--timeout", "300", "--json"]
LOAD_LEVELS = "1,4,16"
TAU_AGREE, TAU_TOLERANCE, TAU_RANDOM_MAX = 4.0, 0.05, 1.3


class Server:
    """One SGLang server process group, its log in the results folder."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], out: str) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.port = PORTS[name.split("#")[0]]
        self.log_path = os.path.join(out, f"server-{name.replace('#', '-')}.log")
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_path, "ab")
        log.write(f"$ {shlex.join(self.argv)}\n".encode())
        log.flush()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)

    def wait_up(self, timeout: float) -> str:
        """'up' once the log says so and /health answers, 'exited' or 'timeout' otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited"
            if "fired up and ready to roll" in self.log_tail(200000) and _get(self.url + "/health", 5)[0] == 200:
                return "up"
            time.sleep(1)
        return "timeout"

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                return self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.poll()

    def log_tail(self, size: int = 8000) -> str:
        with open(self.log_path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(self.log_path) - size))
            return handle.read().decode("utf-8", "replace")


def _get(url: str, timeout: float) -> tuple[int | None, str]:
    return _http(urllib.request.Request(url), timeout)


def _post(url: str, body: dict, timeout: float) -> tuple[int | None, str]:
    return _http(urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}), timeout)


def _http(request: urllib.request.Request, timeout: float) -> tuple[int | None, str]:
    """(HTTP status or None when nothing answered, the body or the error)."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        return None, repr(exc)


def traceback_excerpt(log: str, lines: int = 30) -> str:
    """The last traceback in a log, from its header to the exception line (at most ``lines``)."""
    start = log.rfind("Traceback (most recent call last)")
    if start < 0:
        return ""
    block = log[start:].splitlines()
    for index, line in enumerate(block[1:], 1):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b", line.split("] ")[-1]):
            block = block[: index + 1]
            break
    return "\n".join(block[:2] + ["..."] + block[-(lines - 3):] if len(block) > lines else block)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.out = os.path.abspath(args.out)
        self.work = os.path.abspath(args.work)
        self.models = os.path.join(self.work, "models")
        self.budget_end = time.monotonic() + args.budget_s
        self.dry_run = args.dry_run
        self.servers: dict[str, Server] = {}
        self.results_path = os.path.join(self.out, "results.json")
        self.results = _load(self.results_path)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (args.site, os.path.join(ROOT, "src"),
                                                        env.get("PYTHONPATH", "")) if p)
        env.setdefault("NO_COLOR", "1")
        self.env = env
        # Every SGLang process writes its imports to its log: the carried set is checked
        # against what the launches really import (runtime.py's EXCLUDED and TRIM).
        self.server_env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}

    # -- bookkeeping -----------------------------------------------------------------------
    def record(self, phase: str, key: str, value) -> None:
        self.results.setdefault("phases", {}).setdefault(phase, {})[key] = value
        self.save()

    def save(self) -> None:
        os.makedirs(self.out, exist_ok=True)
        tmp = self.results_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.results, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.results_path)

    def left(self) -> float:
        return self.budget_end - time.monotonic()

    def e3(self, *args: str, timeout: float = 300) -> dict:
        """Run eagle3-patch; returns its exit code, stdout parsed as JSON when it is, and stderr."""
        argv = [*E3, *args]
        if self.dry_run:
            print("  $", shlex.join(argv))
            return {"argv": argv, "rc": 0, "json": None, "stderr": ""}
        started = time.monotonic()
        try:
            done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired as exc:
            return {"argv": argv[2:], "rc": None, "json": None, "timed_out_s": timeout,
                    "stderr": (exc.stderr or b"")[-4000:].decode("utf-8", "replace") if isinstance(exc.stderr, bytes)
                    else (exc.stderr or "")[-4000:]}
        try:
            parsed = json.loads(done.stdout)
        except ValueError:
            parsed = None
        return {"argv": argv[2:], "rc": done.returncode, "json": parsed,
                "stdout": None if parsed else done.stdout[-4000:], "stderr": done.stderr[-4000:],
                "seconds": round(time.monotonic() - started, 2)}

    def model(self, name: str) -> str:
        return os.path.join(self.models, name)

    # -- servers -----------------------------------------------------------------------------
    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Server | None:
        server = Server(name, argv, env or self.server_env, self.out)
        self.servers[name] = server
        if self.dry_run:
            print(f"  start {name} on :{server.port}: {shlex.join(argv)}")
            return server
        server.start()
        return server

    def bring_up(self, name: str, argv: list[str], timeout: float = 420) -> dict:
        """Start one server and wait until it serves. Servers start one at a time: SGLang sizes
        its KV cache from the memory free before and after loading weights, so a neighbour
        allocating in between would leave it none."""
        server = self.start(name, argv)
        if self.dry_run:
            return {"state": "up"}
        state = server.wait_up(min(timeout, max(self.left() - 30, 10)))
        info = {"state": state, "seconds": round(time.monotonic() - server.started, 1), "argv": argv,
                "log": os.path.basename(server.log_path)}
        if state != "up":
            info["log_tail"] = server.log_tail(4000)
            info["traceback"] = traceback_excerpt(server.log_tail(400000))
        return info

    def plain(self, label: str, target: str) -> dict:
        if label in self.servers and (self.dry_run or self.servers[label].proc.poll() is None):
            return {"state": "up"}
        argv = [sys.executable, "-m", "sglang.launch_server", "--model-path", self.model(target),
                *PLAIN_FLAGS, *TINY_FLAGS, "--port", str(PORTS[label])]
        return self.bring_up(label, argv)

    def stop(self, *names: str) -> None:
        for name in names:
            server = self.servers.pop(name, None)
            if server and not self.dry_run:
                server.stop()

    def stop_all(self) -> None:
        self.stop(*list(self.servers))

    def bench(self, phase: str, key: str, url_name: str, base_name: str, *extra: str) -> dict:
        prompts = os.path.join(HERE, "prompts.jsonl")
        result = self.e3("bench", "--url", self.servers[url_name].url, "--baseline-url",
                         self.servers[base_name].url, "--prompts", prompts, *BENCH, *extra,
                         timeout=max(self.left(), 30))
        summary = summarise_bench(result.get("json"))
        self.record(phase, key, {"rc": result["rc"], "summary": summary, "stderr": result.get("stderr", "")[-2000:]})
        if result.get("json") is not None and not self.dry_run:
            with open(os.path.join(self.out, f"bench-{phase}-{key}.json"), "w", encoding="utf-8") as handle:
                json.dump(result["json"], handle, indent=2)
        return summary

    # -- models and hashes -----------------------------------------------------------------
    def build_models(self) -> None:
        if self.dry_run:
            print(f"  build models into {self.models}")
            return
        done = subprocess.run([sys.executable, os.path.join(HERE, "build_models.py"), self.models],
                              env=self.env, capture_output=True, text=True, check=True)
        self.results["models"] = json.loads(done.stdout)
        self.save()

    def sglang_dir(self) -> str:
        status = self.e3("status", "--json")
        return (status.get("json") or {}).get("sglang_dir", "")

    # -- phases ------------------------------------------------------------------------------
    def phase_stock(self) -> None:
        status = _status(self.e3("status", "--json"))
        if status["state"] != "unpatched" and not self.dry_run:
            # A patch left by an earlier run would hide the failure this phase is about.
            self.record("stock", "revert_first", self.e3("revert", "--json"))
            status = _status(self.e3("status", "--json"))
        self.record("stock", "status", status)
        plan = self.e3("serve", "--model", self.model("target-const"), "--drafter", self.model("drafter-agree"),
                       "--dry-run", "--json", "--", *TINY_FLAGS, "--port", str(PORTS["stock"]))
        launch = plan.get("json") or {"argv": [], "env": {}}
        self.record("stock", "launch", {"argv": launch["argv"], "env": launch["env"],
                                        "how": "the argv `eagle3-patch serve --dry-run` prints, "
                                               "run on the unpatched install"})
        server = self.start("stock", launch["argv"], {**self.server_env, **launch["env"]})
        if self.dry_run:
            return
        state = server.wait_up(min(420, self.left()))
        outcome = {"came_up": state}
        if state == "up":
            answer: dict = {}
            request = threading.Thread(target=lambda: answer.update(zip(("http_status", "body"), _post(
                server.url + "/generate", {"text": "Hello, world.", "sampling_params": {
                    "max_new_tokens": 8, "temperature": 0.0}}, timeout=min(300, self.left())), strict=True)))
            request.start()
            # The stock server has sized its memory by now; the plain servers a later phase
            # needs start while it runs its first forward pass.
            if "inmemory" in self.phases:
                for target, _, plain in PAIRS.values():
                    self.record("stock", f"up-{plain}", self.plain(plain, target))
            request.join()
            outcome["generate"] = {"http_status": answer.get("http_status"), "body": str(answer.get("body"))[:1000]}
            try:
                outcome["exit_code"] = server.proc.wait(min(120, max(self.left(), 1)))
            except subprocess.TimeoutExpired:
                outcome["exit_code"] = None
        else:
            outcome["exit_code"] = server.proc.poll()
        log = server.log_tail(2_000_000)
        outcome["traceback"] = traceback_excerpt(log)
        outcome["crashed"] = bool(outcome["traceback"]) and outcome.get("exit_code") is not None
        self.stop("stock")
        self.record("stock", "outcome", outcome)

    def phase_patched(self) -> None:
        self.record("patched", "apply", self.e3("apply", "--json"))
        for label, (target, drafter, plain) in PAIRS.items():
            self.record("patched", f"up-{plain}", self.plain(plain, target))
            argv = [*E3, "serve", "--model", self.model(target), "--drafter", self.model(drafter),
                    "--", *TINY_FLAGS, "--port", str(PORTS[label])]
            self.record("patched", f"up-{label}", self.bring_up(label, argv))
        for label, (_, _, plain) in PAIRS.items():
            self.bench("patched", f"bench-{label}", label, plain)
        self.stop(*PAIRS)

    def phase_inmemory(self) -> None:
        sglang_dir = self.sglang_dir()
        self.record("inmemory", "revert", self.e3("revert", "--json"))
        models_dir = os.path.join(sglang_dir, "srt", "models")
        self.record("inmemory", "against_record", against_record(sglang_dir) if not self.dry_run else {})
        before = tree_digest(models_dir) if not self.dry_run else {}
        for label, (target, drafter, plain) in PAIRS.items():
            self.record("inmemory", f"up-{plain}", self.plain(plain, target))
            argv = [*E3, "serve", "--in-memory", "--model", self.model(target), "--drafter", self.model(drafter),
                    "--", *TINY_FLAGS, "--port", str(PORTS[f"{label}-inmemory"])]
            self.record("inmemory", f"up-{label}", self.bring_up(f"{label}-inmemory", argv))
        for label, (_, _, plain) in PAIRS.items():
            self.bench("inmemory", f"bench-{label}", f"{label}-inmemory", plain)
        if "load" in self.phases:
            self.phase_load()
        self.stop("agree-inmemory", "random-inmemory")
        after = tree_digest(models_dir) if not self.dry_run else {}
        self.record("inmemory", "models_tree", {"files": len(before), "unchanged": before == after,
                                                "changed": sorted(k for k in set(before) | set(after)
                                                                  if before.get(k) != after.get(k))})
        self.record("inmemory", "status_after", _status(self.e3("status", "--json")))

    def phase_load(self) -> None:
        if "agree-inmemory" not in self.servers:  # run on its own: bring the servers it needs
            self.plain("plain-const", "target-const")
            argv = [*E3, "serve", "--in-memory", "--model", self.model("target-const"), "--drafter",
                    self.model("drafter-agree"), "--", *TINY_FLAGS, "--port", str(PORTS["agree-inmemory"])]
            self.bring_up("agree-inmemory", argv)
        self.bench("load", "bench-agree", "agree-inmemory", "plain-const", "--concurrency", LOAD_LEVELS,
                   "--max-new-tokens", "64")

    def run(self, phases: list[str]) -> None:
        self.phases = phases
        self.results.setdefault("runs", []).append({
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "phases": phases, "machine": machine(self.dry_run), "python": sys.version.split()[0]})
        self.build_models()
        try:
            for phase in phases:
                if phase == "load" and "inmemory" in phases:
                    continue  # measured inside inmemory, while its servers are up
                if self.left() < 60:
                    self.record(phase, "skipped", f"only {self.left():.0f} s of the budget left")
                    continue
                print(f"== {phase} ({self.left():.0f} s left)", flush=True)
                try:
                    getattr(self, f"phase_{phase}")()
                except Exception:  # recorded, and the next phase still runs
                    import traceback

                    self.record(phase, "driver_error", traceback.format_exc()[-4000:])
        finally:
            self.stop_all()
            if not self.dry_run:
                self.results["imports"] = import_trace(self.out, self.env["PYTHONPATH"].split(os.pathsep)[0])
                self.results["verdict"] = verdict(self.results)
                self.save()


def _status(result: dict) -> dict:
    parsed = result.get("json") or {}
    return {"rc": result.get("rc"), "state": parsed.get("state"), "capture_works": parsed.get("capture_works"),
            "sglang_version": parsed.get("sglang_version"), "sglang_dir": parsed.get("sglang_dir")}


def summarise_bench(report: dict | None) -> dict:
    """The figures the record needs from one `bench --json` document."""
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
    return summary


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


def machine(dry_run: bool) -> dict:
    info = {"platform": platform.platform()}
    if dry_run:
        return info
    try:
        import torch

        info.update(torch=torch.__version__, cuda=torch.version.cuda,
                    gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except Exception as exc:  # the record says what failed instead of dying before any phase
        info["torch_error"] = repr(exc)
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True)
    info["nvidia_smi"] = smi.stdout.strip()
    return info


def verdict(results: dict) -> dict:
    """Each 'done when' criterion of the GPU proof, true or false, from the recorded figures."""
    phases = results.get("phases", {})
    checks = {}
    stock = phases.get("stock", {}).get("outcome")
    if stock:
        checks["stock_fails"] = bool(stock.get("crashed")) or (stock.get("generate") or {}).get("http_status") != 200
    for phase in ("patched", "inmemory"):
        agree = (phases.get(phase, {}).get("bench-agree") or {}).get("summary") or {}
        rand = (phases.get(phase, {}).get("bench-random") or {}).get("summary") or {}
        if agree:
            tau = agree.get("tau")
            checks[f"{phase}_agree_tau"] = tau is not None and abs(tau - TAU_AGREE) <= TAU_TOLERANCE
            checks[f"{phase}_agree_identical"] = agree.get("match_rate") == 1.0
        if rand:
            checks[f"{phase}_random_tau"] = rand.get("tau") is not None and rand["tau"] <= TAU_RANDOM_MAX
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


def merge(parts: list[dict]) -> dict:
    """Runs listed in order, each phase from the last run that did it, the verdict recomputed."""
    merged: dict = {"runs": [], "phases": {}}
    for part in parts:
        merged["runs"] += part.get("runs", [])
        for phase in next(iter(part.get("runs", [])), {}).get("phases", []) or part.get("phases", {}):
            if phase in part.get("phases", {}):
                merged["phases"][phase] = part["phases"][phase]
                merged["phases"][phase]["from_run"] = part["runs"][0]["started"] if part.get("runs") else None
        for key in ("models", "imports"):
            if key in part:
                merged[key] = part[key]
    merged["verdict"] = verdict(merged)
    return merged


def _load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run phases on this CUDA machine")
    run.add_argument("--out", required=True, help="results folder (results.json, logs, bench JSON)")
    run.add_argument("--work", default="/tmp/e3gpu", help="where the models are built")
    run.add_argument("--site", default="/tmp/site", help="the folder the runtime wheel set is unpacked in")
    run.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    run.add_argument("--budget-s", type=float, default=560, help="stop starting work after this many seconds")
    run.add_argument("--dry-run", action="store_true", help="print the plan; start nothing")
    show = sub.add_parser("render", help="RESULTS.md from a results.json")
    show.add_argument("results")
    join = sub.add_parser("merge", help="one results.json from runs that each did some phases")
    join.add_argument("results", nargs="+", help="results.json files, oldest first; a later phase replaces an earlier")
    join.add_argument("--note", action="append", default=[], help="a sentence for the record's notes (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "render":
        from render_results import render

        sys.stdout.write(render(_load(args.results)))
        return 0
    if args.command == "merge":
        merged = merge([_load(path) for path in args.results])
        merged["notes"] = args.note
        json.dump(merged, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    phases = [p for p in args.phases.split(",") if p]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    Run(args).run(phases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
