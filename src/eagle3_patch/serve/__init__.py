"""``eagle3-patch serve``: launch SGLang at the validated EAGLE-3 chain config.

Modules: ``drafter`` (find the draft model on disk), ``hub`` (a Hub variant,
validated before its weights are downloaded), ``checkpoint`` (configs and
safetensors headers, single or sharded; ``tensorheader`` judges a header as the
safetensors library would), ``validate`` (prove the drafter fits
the target), ``interpreter`` (the interpreter to exec imports the SGLang that
was checked), ``dialect`` (how the installed SGLang spells its launch switches,
read from its source), ``plan`` (the argv and environment, pure), ``launch``
(the one call the command makes; the click command is ``commands/serve.py``). Nothing here
imports SGLang or torch, and ``huggingface_hub`` only for a Hub target id or
drafter: a local hand-off is on the fast path (tests/fastpath.py).
"""
