"""Whole-process wall time of eagle3-patch commands, against targets from the issues.

    python benchmarks/cli_speed.py [--runs 11] [--release 0.5.21]

Each figure is the median of ``--runs`` runs of the real CLI process (as a user
starts it: ``python -m eagle3_patch ...``) against a real release laid out from
its PyPI wheel (0.5.21 has the largest qwen3_5.py, ~115 KB). Needs the test
extra (``pip install -e '.[test]'``) for the wheel cache and the synthetic drafter.
"""

from __future__ import annotations

import argparse
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
           "apply (first)": 0.6, "revert": 0.6, "serve hand-off": 0.3}


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "eagle3_patch", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"eagle3-patch {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return elapsed


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
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--release", default="0.5.21")
    options = parser.parse_args()
    times = measure(options.release, options.runs)
    print(f"eagle3-patch wall time per process, SGLang {options.release}, "
          f"median of {options.runs} runs ({os.cpu_count()} cores)")
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'max s':>7} {'target s':>9}  verdict")
    failed = False
    for name, target in TARGETS.items():
        median = statistics.median(times[name])
        ok = median <= target
        failed |= not ok
        print(f"{name:<16} {median:>9.3f} {min(times[name]):>7.3f} {max(times[name]):>7.3f} "
              f"{target:>9.2f}  {'ok' if ok else 'OVER'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
