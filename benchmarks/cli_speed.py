"""Whole-process wall time of eagle3-patch commands, and the in-memory hook's cost, against targets.

    python benchmarks/cli_speed.py [--runs 11] [--release 0.5.21]

Each figure is the median of ``--runs`` runs of the real CLI process (as a user
starts it: ``python -m eagle3_patch ...``) against a real release laid out from
its PyPI wheel (0.5.21 has the largest qwen3_5.py, ~115 KB). Needs the test
extra (``pip install -e '.[test]'``) for the wheel cache and the synthetic drafter.

The in-memory rows: ``run hand-off`` is ``eagle3-patch run -- true`` with its
memo warm (``run hand-off (cold)`` without one); ``hook: start-up`` is what the
bootstrap sitecustomize adds to an interpreter's start (``python -c pass`` with
and without the hand-off environment); ``hook: load qwen3_5`` is finding and
loading the patched module's code (SHA-256 check + compile) minus the same for
a plain import from SGLang's ``.pyc``, with the compiled code memoised in the
user's cache folder (``hook: load (no memo)``: a fresh cache folder each time,
as on a read-only root filesystem); the module body itself is not run, it costs
the same either way.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from releases import install_release  # noqa: E402
from serve_fixtures import write_drafter, write_target  # noqa: E402

# The stand-in for SGLang's interpreter: exits at once when asked to launch the
# server, so the serve figure is the hand-off overhead alone.
STANDIN = """#!{real}
import os, sys
if sys.argv[1:3] == ["-m", "sglang.launch_server"]:
    sys.exit(0)
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""

TARGETS = {"status": 0.15, "check": 0.15, "apply (repeat)": 0.15,
           "apply (first)": 0.6, "revert": 0.6, "serve hand-off": 0.3,
           "run hand-off": 0.3, "run hand-off (cold)": 0.6,
           "hook: start-up": 0.015, "hook: load qwen3_5": 0.015, "hook: total": 0.03,
           "hook: load (no memo)": 0.03}

# Finds and loads qwen3_5's code as an import would, without running SGLang's
# package __init__ (it needs torch): the parents are stand-in packages.
LOAD_CODE = """
import os, sys, time, types, importlib.util
root = sys.argv[1]
for name, sub in (("sglang", ""), ("sglang.srt", "srt"), ("sglang.srt.models", "srt/models")):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(root, "sglang", sub)]
    sys.modules[name] = package
start = time.perf_counter()
spec = importlib.util.find_spec("sglang.srt.models.qwen3_5")
spec.loader.get_code(spec.name)
print(time.perf_counter() - start)
"""


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "eagle3_patch", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"eagle3-patch {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return elapsed


def _python(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"python {' '.join(args[:2])} failed: {done.stderr}")
    return elapsed, done.stdout


def measure_hook(root: Path, env: dict[str, str], runs: int, times: dict[str, list[float]]) -> None:
    site = root / "site"
    # As pip leaves an installation; the plain import reads these, the hook must not.
    compileall.compile_dir(str(site / "sglang" / "srt" / "models"), quiet=1)
    plan = json.loads(subprocess.run(
        [sys.executable, "-m", "eagle3_patch", "run", "--dry-run", "--json", "--", "true"],
        env=env, capture_output=True, text=True, check=True).stdout)
    hooked = {**env, **plan["env"]}
    hooked.pop("PYTHONDONTWRITEBYTECODE", None)
    plain = {k: v for k, v in hooked.items() if k != "EAGLE3_PATCH_INMEMORY"}
    plain["PYTHONPATH"] = env["PYTHONPATH"]
    for index in range(runs):
        startup = _python(["-c", "pass"], hooked)[0] - _python(["-c", "pass"], plain)[0]
        baseline = float(_python(["-c", LOAD_CODE, str(site)], plain)[1])
        load = float(_python(["-c", LOAD_CODE, str(site)], hooked)[1]) - baseline
        fresh = {**hooked, "XDG_CACHE_HOME": str(root / f"hook-cache-{index}")}
        times["hook: load (no memo)"].append(
            float(_python(["-c", LOAD_CODE, str(site)], fresh)[1]) - baseline)
        times["hook: start-up"].append(startup)
        times["hook: load qwen3_5"].append(load)
        times["hook: total"].append(startup + load)


def measure(release: str, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        install_release(release, root / "site")
        env = {**os.environ, "PYTHONPATH": str(root / "site"), "HF_HUB_OFFLINE": "1"}
        standin = root / "python"
        standin.write_text(STANDIN.format(real=sys.executable))
        standin.chmod(0o755)
        model, drafter = write_target(root / "target"), write_drafter(root / "compressed")
        serve = ["serve", "--python", str(standin), "--model", str(model), "--drafter", str(drafter)]
        for _ in range(runs):
            times["apply (first)"].append(_run(["apply"], env))
            times["apply (repeat)"].append(_run(["apply"], env))
            times["status"].append(_run(["status"], env))
            times["check"].append(_run(["check"], env))
            times["serve hand-off"].append(_run(serve, env))
            times["revert"].append(_run(["revert"], env))
        run = ["run", "--sglang-dir", str(root / "site" / "sglang"), "--", "true"]
        for index in range(runs):
            times["run hand-off (cold)"].append(
                _run(run, {**env, "XDG_CACHE_HOME": str(root / f"cache-{index}")}))
            times["run hand-off"].append(_run(run, {**env, "XDG_CACHE_HOME": str(root / "cache")}))
        measure_hook(root, {**env, "XDG_CACHE_HOME": str(root / "cache")}, runs, times)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--release", default="0.5.21")
    options = parser.parse_args()
    times = measure(options.release, options.runs)
    print(f"eagle3-patch wall time per process, SGLang {options.release}, "
          f"median of {options.runs} runs ({os.cpu_count()} cores)")
    print(f"{'command':<20} {'median s':>9} {'min s':>7} {'max s':>7} {'target s':>9}  verdict")
    failed = False
    for name, target in TARGETS.items():
        median = statistics.median(times[name])
        ok = median <= target
        failed |= not ok
        print(f"{name:<20} {median:>9.3f} {min(times[name]):>7.3f} {max(times[name]):>7.3f} "
              f"{target:>9.2f}  {'ok' if ok else 'OVER'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
