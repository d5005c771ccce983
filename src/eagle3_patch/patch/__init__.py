"""The pure core: what to inject (``hooks``), the state of a model file judged from its source
and behaviour (``analysis``, ``bindings``, ``probe``), what is ours (``ownership``) and the one
source-to-source transform. No disk, no installation: source text in, values out."""
