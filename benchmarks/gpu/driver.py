"""The GPU proof, phase by phase: what the driver runs on the GPU machine, and the record after.

    python driver.py run --out DIR --phases PHASE[,PHASE...] [--budget-s S] [--prestart SERVER] [--dry-run]
    python driver.py merge run1/results.json run2/results.json > results.json
    python driver.py render results.json > RESULTS.md

Phases of issue 22 (the lead's call plan is in README.md; each fits one call):
  prep           the card (nvidia-smi), its copy bandwidth, both capture kits built, the HBM limit of
                 a batch-1 decode step, the memory flags of the 27B servers; needs no SGLang
  capture        the tiny kit after `eagle3-patch apply`: a plain server and `serve` with the right,
                 the later and the earlier drafter, each benchmarked against the plain one
  real-plain     the 27B shape, CUDA graphs on: a plain server alone, its greedy outputs, bench at
                 concurrency 1, 4, 16, 64
  real-eagle3    the same for `eagle3-patch serve` with the right drafter, joined with real-plain
  real-wrong     `serve` with the later and the earlier drafter: tau and their round cost
  real-inmemory  `eagle3-patch revert`, then `serve --in-memory` with the right drafter
Phases of the first proof (tiny const/random models): stock, patched, inmemory, load.

Results accumulate in ``DIR/results.json``, saved after every step, with every server's log and
bench report beside it; a phase records what it saw even when a step fails, and stops early
rather than outlive ``--budget-s``. Servers outlive the call (servers.py): a later call adopts a
live one launched with the same argv, and ``--prestart`` launches the next call's first server
before this one returns. ``--dry-run`` prints every command and starts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback

import phases_proof
import phases_real
from fleet import ROOT, ServerControl
from kits import E3
from record import merge, verdict
from servers import Server, ServerTable

PHASES = {**phases_real.PHASES, **phases_proof.PHASES}


class Run(ServerControl):
    """One driver invocation: its budget, its results file, the servers it brought up."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.out = os.path.abspath(args.out)
        self.work = os.path.abspath(args.work)
        self.models = os.path.join(self.work, "models")
        self.budget_end = time.monotonic() + args.budget_s
        self.dry_run = args.dry_run
        self.dry_run_gpu = args.dry_run_gpu
        self.servers: dict[str, Server] = {}
        self.table = ServerTable(os.path.join(self.work, "servers.json"))
        self.results_path = os.path.join(self.out, "results.json")
        self.results = _load(self.results_path)
        self.started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (args.site, os.path.join(ROOT, "src"),
                                                        env.get("PYTHONPATH", "")) if p)
        env.setdefault("NO_COLOR", "1")
        self.env = env
        self._gpu: dict | None = None
        self.begun: set[str] = set()

    # -- bookkeeping -----------------------------------------------------------------------
    def begin(self, phase: str) -> None:
        """A phase starts afresh: no figure of an earlier attempt stays beside this one's. ``run``
        names the driver run that measured it, so merge tells a repeat from a copy."""
        self.results.setdefault("phases", {})[phase] = {"run": self.started}
        self.begun.add(phase)
        self.save()

    def record(self, phase: str, key: str, value) -> None:
        self.results.setdefault("phases", {}).setdefault(phase, {"run": self.started})[key] = value
        self.save()

    def save(self) -> None:
        if self.dry_run:
            return
        os.makedirs(self.out, exist_ok=True)
        tmp = self.results_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.results, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.results_path)

    def left(self) -> float:
        return self.budget_end - time.monotonic()

    def say(self, text: str) -> None:
        print(text, flush=True)

    def command(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> dict:
        """Run one command to completion: exit code, stdout parsed as JSON when it is, and stderr."""
        if self.dry_run:
            self.say(f"  $ {shlex.join(argv)}")
            return {"argv": argv, "rc": 0, "json": None, "stderr": ""}
        started = time.monotonic()
        try:
            done = subprocess.run(argv, env=env or self.env, capture_output=True, text=True, timeout=timeout,
                                  cwd=ROOT)
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            return {"argv": argv[1:], "rc": None, "json": None, "timed_out_s": timeout, "stderr": stderr[-4000:]}
        try:
            parsed = json.loads(done.stdout)
        except ValueError:
            parsed = None
        return {"argv": argv[1:], "rc": done.returncode, "json": parsed,
                "stdout": None if parsed is not None else done.stdout[-4000:], "stderr": done.stderr[-4000:],
                "seconds": round(time.monotonic() - started, 2)}

    def e3(self, *args: str, timeout: float = 300) -> dict:
        """eagle3-patch, as a user runs it."""
        return self.command([*E3, *args], timeout)

    def gpu(self) -> dict:
        """This machine's GPU 0 (name, uuid): which phases' figures may be compared."""
        if self._gpu is None:
            if self.dry_run:
                self._gpu = {"name": f"(dry run: {self.dry_run_gpu})", "uuid": None}
            else:
                done = subprocess.run(["nvidia-smi", "--query-gpu=name,uuid", "--format=csv,noheader"],
                                      capture_output=True, text=True)
                name, _, uuid = (done.stdout.splitlines() or [""])[0].partition(",")
                self._gpu = {"name": name.strip() or None, "uuid": uuid.strip() or None}
        return self._gpu

    # -- the run ----------------------------------------------------------------------------------
    def run(self, phases: list[str], prestart: str | None) -> None:
        self.phases = phases
        self.results.setdefault("runs", []).append({
            "started": self.started, "phases": phases, "machine": machine(self.dry_run),
            "python": sys.version.split()[0]})
        self.save()
        try:
            for phase in phases:
                if self.left() < 60:
                    self.say(f"== {phase} skipped: only {self.left():.0f} s of the budget left")
                    self.results["runs"][-1].setdefault("skipped", []).append(phase)
                    continue
                self.say(f"== {phase} ({self.left():.0f} s left)")
                if phase not in self.begun:  # the first proof's load runs inside inmemory
                    self.begin(phase)
                try:
                    PHASES[phase](self)
                except Exception:  # recorded, and the next phase still runs
                    self.record(phase, "driver_error", traceback.format_exc()[-4000:])
            if prestart:
                self.say(f"== prestart {prestart}")
                phases_real.prestart(self, prestart)
        finally:
            for name in list(self.servers):
                if name != prestart:
                    self.stop(name)
            if not self.dry_run:
                trace = phases_proof.import_trace(self.out, self.env["PYTHONPATH"].split(os.pathsep)[0])
                if trace["modules_seen"]:  # only the first proof's servers log their imports
                    self.results["imports"] = trace
                self.results["verdict"] = verdict(self.results)
                self.save()


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
    run.add_argument("--work", default="/tmp/e3gpu", help="where the models are built and the server table kept")
    run.add_argument("--site", default="/tmp/site", help="the folder the runtime wheel set is unpacked in")
    run.add_argument("--phases", required=True, help=f"comma-separated, of {', '.join(PHASES)}")
    run.add_argument("--budget-s", type=float, default=560, help="stop starting work after this many seconds")
    run.add_argument("--prestart", choices=phases_real.PRESTARTABLE,
                     help="after the phases, start this server for the next call and leave it running")
    run.add_argument("--dry-run", action="store_true", help="print every command; start nothing")
    run.add_argument("--dry-run-gpu", choices=sorted(phases_real.NOMINAL_FREE_GIB), default="h100",
                     help="with --dry-run: the card whose memory the 27B flags are planned for")
    show = sub.add_parser("render", help="RESULTS.md from a results.json")
    show.add_argument("results")
    join = sub.add_parser("merge", help="one results.json from runs that each did some phases")
    join.add_argument("results", nargs="+", help="results.json files, oldest first; a later phase replaces an earlier")
    join.add_argument("--note", action="append", default=[], help="a sentence for the record's notes (repeatable)")
    args = parser.parse_args(argv)
    # The verdict, merge and render join two bench reports with bench's own speed model
    # (figures.join): this process imports eagle3_patch as the servers and bench it runs do.
    sys.path[:0] = [p for p in (getattr(args, "site", None), os.path.join(ROOT, "src")) if p]
    if args.command == "render":
        from render_results import render

        sys.stdout.write(render(_load(args.results)))
        return 0
    if args.command == "merge":
        merged = merge([_load(path) for path in args.results])
        merged["notes"] = merged.get("notes", []) + args.note
        json.dump(merged, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    phases = [p for p in args.phases.split(",") if p]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    Run(args).run(phases, args.prestart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
