"""The fast path, named once: the modules a container start loads and what they must not import.

A container start runs a repeated ``apply``/``check``/``status`` (the memo answers) or
``serve --dry-run``/``serve`` with a local model and drafter; each must stay near Python's
floor of ``import click`` (targets and timings: benchmarks/README.md). Only the modules named
here obey the import budget below; everything else is ordinary Python. tests/test_fast_paths.py
runs those commands under ``-X importtime`` and fails when one loads a module of ours not named
here, or anything its budget excludes. Nothing imports this module at run time.
"""

from __future__ import annotations

# What a repeated apply, check or status loads.
REPEAT = (
    "eagle3_patch", "eagle3_patch.cli", "eagle3_patch.render", "eagle3_patch.errorreport",
    "eagle3_patch.errors", "eagle3_patch.masking", "eagle3_patch.engine", "eagle3_patch.locate",
    "eagle3_patch.hooks", "eagle3_patch.states", "eagle3_patch.sources", "eagle3_patch.sourcetext",
    "eagle3_patch.memo", "eagle3_patch.usercache", "eagle3_patch.install", "eagle3_patch.backups",
    "eagle3_patch.hints", "eagle3_patch.options", "eagle3_patch.shellwords", "eagle3_patch.reading",
    "eagle3_patch.filebytes", "eagle3_patch.lock", "eagle3_patch.writable", "eagle3_patch.leftovers",
    "eagle3_patch.interpreters", "eagle3_patch.snapshot", "eagle3_patch.patchplan", "eagle3_patch.sharedrules",
)

# What ``serve`` with a local model and drafter adds to REPEAT, up to the hand-off.
SERVE = (
    "eagle3_patch.serve", "eagle3_patch.serve.command", "eagle3_patch.serve.launch",
    "eagle3_patch.serve.plan", "eagle3_patch.serve.dialect", "eagle3_patch.serve.drafter",
    "eagle3_patch.serve.checkpoint", "eagle3_patch.serve.tensorheader", "eagle3_patch.serve.validate",
    "eagle3_patch.serve.interpreter",
    "eagle3_patch.handoff", "eagle3_patch.inmemory", "eagle3_patch.inmemory.payload", "eagle3_patch.jsontext",
)

# Never on any fast path: each costs 10-300 ms to import.
HEAVY = ("libcst", "huggingface_hub", "importlib.metadata", "difflib")

# Not on a repeat: a few ms each, more than its budget over ``import click``.
NOT_ON_REPEAT = ("hashlib", "packaging", "pathlib", "subprocess", "tempfile",
                 "eagle3_patch.inmemory", "eagle3_patch.serve")

# Not on a local serve hand-off: it asks its own interpreter in-process and writes nothing.
NOT_ON_SERVE = ("subprocess", "hashlib", "eagle3_patch.inmemory.planner")

# Only a memo miss parses and probes the model files.
MISS_ONLY = ("eagle3_patch.analysis", "eagle3_patch.bindings", "eagle3_patch.probe")
