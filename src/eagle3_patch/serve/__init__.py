"""``eagle3-patch serve``: launch SGLang at the validated EAGLE-3 chain config.

Modules: ``drafter`` (find the draft model), ``validate`` (prove it fits the
target, from config.json and the safetensors header), ``dialect`` (how the
installed SGLang spells its launch switches, read from its source), ``plan``
(the argv and environment, pure), ``launch`` (the one call the command makes),
``command`` (the click command). Nothing here imports SGLang or torch, and
``huggingface_hub`` only for a Hub download (a Hub target id reads just its
cache-location constants): the hand-off must stay fast.
"""
