"""``eagle3-patch bench``: decode tok/s, EAGLE-3 accept length and losslessness, measured
against running SGLang servers through their native HTTP API.

The click command lives in ``eagle3_patch.commands.bench`` (imported lazily by the CLI);
``BenchFailed`` (exit code 10) is what every measurement failure raises.
"""

from eagle3_patch.errors import EXIT_BENCH_FAILED, BenchFailed

__all__ = ["EXIT_BENCH_FAILED", "BenchFailed"]
