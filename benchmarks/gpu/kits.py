"""Every name the driver uses for models, servers and ports, and the launch flags, in one place.

The model folders are what ``build_models.py`` writes: the first proof's ``target-const`` and
friends (``build_models.py OUT``) and issue 22's capture kits (``build_models.py OUT --kit
capture-tiny`` and ``--kit capture-27b``), each a target plus one drafter that reads the right
layers and two built for the wrong ones.
"""

from __future__ import annotations

import os
import sys

E3 = [sys.executable, "-m", "eagle3_patch"]  # eagle3-patch as a user runs it, with this Python

# -- the capture kits (issue 22) ---------------------------------------------------------------
TINY_KIT, REAL_KIT = "capture-tiny", "capture-27b"
TARGET = "target"
DRAFTERS = ("right", "later", "earlier")  # "right" reads its configured layers; the others do not


def drafter_folder(name: str) -> str:
    return f"drafter-{name}"


def kit_model(models: str, kit: str, name: str) -> str:
    """The folder of ``name`` (TARGET or one of DRAFTERS) in ``kit`` under ``models``."""
    return os.path.join(models, kit, name if name == TARGET else drafter_folder(name))


# -- the first proof's models (issue 15: stock, patched, inmemory, load) --------------------------
PAIRS = {"agree": ("target-const", "drafter-agree", "plain-const"),
         "random": ("target-random", "drafter-random", "plain-random")}

# -- ports: one per server, so a server left by an earlier call is never mistaken for another -----
PORTS = {
    "stock": 31000, "plain-const": 31001, "plain-random": 31002, "agree": 31003, "random": 31004,
    "agree-inmemory": 31005, "random-inmemory": 31006,
    "tiny-plain": 31010, "tiny-right": 31011, "tiny-later": 31012, "tiny-earlier": 31013,
    "real-plain": 31020, "real-right": 31021, "real-later": 31022, "real-earlier": 31023,
    "real-right-inmemory": 31024,
}

# Flags the tiny models need after `--`, each for a reason unrelated to capture:
TINY_FLAGS = [
    "--attention-backend", "triton",  # the FA3 ops are trimmed from the carried sgl_kernel
    "--mem-fraction-static", "0.12",  # several servers share the one GPU
    "--disable-cuda-graph",  # start in seconds; the 27B runs prove capture inside CUDA graphs
    "--skip-server-warmup",  # the benchmark warms up; the server's own warm-up costs a minute
    "--context-length", "4096",  # the tiny target declares 8192; the prompts need far less
    "--grammar-backend", "none",  # no structured output is asked for
    "--host", "127.0.0.1",
]
# What `eagle3-patch serve` adds beside the chain config, given to plain servers too.
PLAIN_FLAGS = ["--mm-attention-backend", "sdpa", "--dtype", "bfloat16"]

# The 27B servers run what users keep: CUDA graphs on, the server's own warm-up, no debug flag.
# Memory flags (--mem-fraction-static, --max-running-requests, --max-mamba-cache-size) come from
# memory_plan.py, which sizes them from the card; these are the same on every card.
LEVELS = (1, 4, 16, 64)
REAL_FLAGS = [
    # SGLang 0.5.12 picks fa3 on Hopper for this model (topk 1); the carried sgl_kernel has its
    # 1.07 GB flash_ops trimmed (runtime.py TRIM; 72 MB as xz: two more carry calls), so triton. At
    # batch 1 and contexts under 200 tokens attention is a sliver of a step that reads 51 GB of
    # weights, so the backend should move the decode figure little. RESULTS.md repeats the reason.
    "--attention-backend", "triton",
    # One graph per level measured (1, 4, 16, 64) plus the powers of two between them, which a
    # level passes through while its requests ramp up; SGLang's own list for speculative servers
    # has 27 sizes up to 64, each captured for the target and twice for the drafter: minutes of
    # start-up that no measured batch uses. Sizes above --max-running-requests are dropped by
    # SGLang, which adds that size instead.
    "--cuda-graph-bs", "1", "2", "4", "8", "16", "32", "64",
    # Prompts plus 128 new tokens stay under 200 tokens; the target declares 262144, which would
    # size the request-to-token table for contexts no request here reaches.
    "--context-length", "4096",
    "--grammar-backend", "none",  # no structured output is asked for: xgrammar's start-up buys nothing
    "--host", "127.0.0.1",
]
# The plain server keeps the overlap scheduler on, as the EAGLE-3 server does: SGLang turns it off
# for this hybrid model under the default no_buffer strategy unless the radix cache is off. With
# the radix cache off, each running request holds one linear-attention state instead of three.
# Prompts shorter than one 64-token FLA chunk get no prefix reuse from the EAGLE-3 server's
# extra_buffer radix cache either, so the two compare like for like.
REAL_PLAIN_FLAGS = ["--mamba-scheduler-strategy", "no_buffer", "--disable-radix-cache"]
