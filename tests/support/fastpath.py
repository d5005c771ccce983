"""The fast path, named once: the modules a container start loads and what they must not import.

A container start runs a repeated ``apply``/``check``/``status`` (the memo answers) or
``serve --dry-run``/``serve`` with a local model and drafter; each must stay near Python's
floor of ``import click`` (targets and timings: benchmarks/README.md). Only the modules named
here obey the import budget below; everything else is ordinary Python. tests/test_fast_paths.py
runs those commands and fails when one loads a module of ours not named here, or anything its
budget excludes, and when a module named here is loaded by none of them (an import may wait
inside a function only in these modules). Only that test imports this module.
"""

from __future__ import annotations

# What a repeated apply, check or status loads.
REPEAT = (
    "eagle3_patch", "eagle3_patch.cli", "eagle3_patch.errors", "eagle3_patch.sharedrules",
    "eagle3_patch.text", "eagle3_patch.text.masking", "eagle3_patch.text.shellwords",
    "eagle3_patch.patch", "eagle3_patch.patch.hooks", "eagle3_patch.patch.states", "eagle3_patch.patch.sourcetext",
    "eagle3_patch.site", "eagle3_patch.site.locate", "eagle3_patch.site.sources", "eagle3_patch.site.install",
    "eagle3_patch.site.backups", "eagle3_patch.site.hints", "eagle3_patch.site.reading", "eagle3_patch.site.filebytes",
    "eagle3_patch.site.lock", "eagle3_patch.site.writable", "eagle3_patch.site.leftovers",
    "eagle3_patch.site.interpreters", "eagle3_patch.site.snapshot",
    "eagle3_patch.cache", "eagle3_patch.cache.analysismemo", "eagle3_patch.cache.usercache",
    "eagle3_patch.engine", "eagle3_patch.engine.apply", "eagle3_patch.engine.applyplan", "eagle3_patch.engine.result",
    "eagle3_patch.engine.status",
    "eagle3_patch.ui", "eagle3_patch.ui.render", "eagle3_patch.ui.errorreport",
    "eagle3_patch.commands", "eagle3_patch.commands.options", "eagle3_patch.commands.apply",
    "eagle3_patch.commands.check", "eagle3_patch.commands.status",
)

# What ``serve`` with a local model and drafter adds to REPEAT, up to the hand-off.
SERVE = (
    "eagle3_patch.serve", "eagle3_patch.commands.serve", "eagle3_patch.serve.launch",
    "eagle3_patch.serve.plan", "eagle3_patch.serve.dialect", "eagle3_patch.serve.drafter",
    "eagle3_patch.serve.checkpoint", "eagle3_patch.serve.tensorheader", "eagle3_patch.serve.validate",
    "eagle3_patch.serve.interpreter",
    "eagle3_patch.site.handoff", "eagle3_patch.inmemory", "eagle3_patch.inmemory.payload",
    "eagle3_patch.text.jsontext",
)

# Never on any fast path: each costs 10-300 ms to import.
HEAVY = ("libcst", "huggingface_hub", "importlib.metadata", "difflib")

# Not on a repeat: a few ms each, more than its budget over ``import click``.
NOT_ON_REPEAT = ("hashlib", "packaging", "pathlib", "subprocess", "tempfile",
                 "eagle3_patch.inmemory", "eagle3_patch.serve")

# Not on a local serve hand-off: it asks its own interpreter in-process and writes nothing.
NOT_ON_SERVE = ("subprocess", "hashlib", "eagle3_patch.inmemory.planner")

# Only a memo miss parses and probes the model files.
MISS_ONLY = ("eagle3_patch.patch.analysis", "eagle3_patch.patch.bindings", "eagle3_patch.patch.probe")

# Where an import may wait inside a function, besides the modules above: the bootstrap runs at
# the start of every process SGLang starts (its docstring gives the reason once), and matplotlib
# is the optional plot extra, imported in one place so its absence is one clear error.
LAZY_IMPORTS_ALSO_IN = ("eagle3_patch.inmemory.bootstrap.sitecustomize", "eagle3_patch.bench.plotting")
