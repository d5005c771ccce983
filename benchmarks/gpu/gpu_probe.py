"""The card, as JSON on stdout: what nvidia-smi says of it and the bandwidth a device-to-device copy
reaches. Runs with the GPU image's own torch, before the SGLang runtime has arrived.

    python gpu_probe.py [--gib 2] [--repeats 15]

A copy of N bytes reads N and writes N, so its bandwidth is 2N / time (what NVIDIA's
bandwidthTest reports for device-to-device). A decode step only reads its weights; the figure
that bounds it is the bytes HBM moves per second, which this measures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

SMI_FIELDS = ("name", "uuid", "memory.total", "memory.free", "memory.used", "driver_version")


def nvidia_smi() -> dict:
    done = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True, check=True)
    first = next(line for line in done.stdout.splitlines() if line.strip())  # GPU 0: the one SGLang uses
    values = [part.strip() for part in first.split(",")]
    card = dict(zip(SMI_FIELDS, values, strict=True))
    for key in ("memory.total", "memory.free", "memory.used"):
        card[key.replace(".", "_") + "_mib"] = int(card.pop(key))
    return card


def copy_bandwidth(gib: float, repeats: int, copies: int = 5) -> dict:
    import torch

    size = int(gib * 2**30)
    source = torch.empty(size, dtype=torch.uint8, device="cuda")
    target = torch.empty_like(source)
    for _ in range(3):  # first use: allocation, clocks ramping up
        target.copy_(source)
    torch.cuda.synchronize()
    rates = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(copies):
            target.copy_(source)
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1000 / copies
        rates.append(2 * size / seconds / 1e9)
    return {"bytes_per_copy": size, "repeats": repeats, "copies_per_repeat": copies,
            "best_gbs": max(rates), "median_gbs": statistics.median(rates), "all_gbs": rates,
            "counted": "read + write: 2 x bytes per copy / seconds", "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="size of each of the two buffers")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    card = nvidia_smi()
    try:
        card["bandwidth"] = copy_bandwidth(args.gib, args.repeats)
    except Exception as exc:  # the card's figures still plan the servers; the record says what failed
        card["bandwidth"] = {"error": repr(exc)}
    json.dump(card, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
