"""The hooks eagle3-patch injects, declared as data.

Supporting another model file means adding a ``HookSpec`` (and, if its file is
new, a ``TargetFile``) here; nothing else in the package names a class.

Behaviour equals what SGLang 0.5.22 ships natively (PR "Fix EAGLE3 layer
capture for Qwen3.5-VL/MoE"): the wrapper returns on a non-last pipeline rank,
switches aux capture on, turns drafter ids ("output of layer k") into capture
points (input of layer k + 1), and delegates to the decoder, which sets the
per-layer ``_is_layer_to_capture`` flags its ``forward`` reads.
"""

from __future__ import annotations

from typing import NamedTuple

MARKER = "[EAGLE3-PATCH]"
METHOD = "set_eagle3_layers_to_capture"
# The comment line that owns an injected method. Revert removes exactly the
# methods this line precedes; it also tells a reader of site-packages where the
# method came from and how to take it out.
MARKER_COMMENT = f"# {MARKER} added by eagle3-patch; `eagle3-patch revert` removes it"

# The first release whose qwen3_5.py decoder has per-layer capture.
MINIMUM_SUPPORTED = "0.5.11"

# Annotations use builtins only (PEP 604, Python >= 3.10 as SGLang requires):
# they are evaluated when the class body runs, and must not depend on what a
# given release happens to import from ``typing``.
DECODER_SOURCE = '''\
def set_eagle3_layers_to_capture(self, layers_to_capture: list[int]):
    self.layers_to_capture = layers_to_capture
    for layer_id in self.layers_to_capture:
        setattr(self.layers[layer_id], "_is_layer_to_capture", True)
'''

MULTIMODAL_WRAPPER_SOURCE = '''\
def set_eagle3_layers_to_capture(self, layer_ids: list[int] | None = None):
    if not self.pp_group.is_last_rank:
        return
    self.capture_aux_hidden_states = True
    self.model.capture_aux_hidden_states = True
    if layer_ids is None:
        num_layers = self.config.num_hidden_layers
        layers_to_capture = [2, num_layers // 2, num_layers - 3]
    else:
        layers_to_capture = [val + 1 for val in layer_ids]
    self.model.set_eagle3_layers_to_capture(layers_to_capture)
'''

TEXT_WRAPPER_SOURCE = '''\
def set_eagle3_layers_to_capture(self, layer_ids: list[int] | None = None):
    if not self.pp_group.is_last_rank:
        return
    self.capture_aux_hidden_states = True
    if layer_ids is None:
        num_layers = len(self.model.layers)
        layers_to_capture = [2, num_layers // 2, num_layers - 3]
    else:
        layers_to_capture = [val + 1 for val in layer_ids]
    self.model.set_eagle3_layers_to_capture(layers_to_capture)
'''


class TargetFile(NamedTuple):
    """A module under ``sglang/srt/models`` that may receive hooks."""

    name: str
    # A required file's absence means the release cannot serve Qwen3.5 at all;
    # an optional one (qwen3_5_text.py, 0.5.17+) is simply skipped when absent.
    required: bool
    # Modules whose classes this file's classes may inherit from, searched in
    # order when a class does not define the hook itself.
    bases_from: tuple[str, ...] = ()


class HookSpec(NamedTuple):
    """One method injected into one class."""

    file: str
    cls: str
    source: str
    # "decoder": sets the per-layer flags itself. "wrapper": holds the decoder
    # as ``self.model`` and must reach those flags through it.
    role: str
    # Subclasses in the same file that inherit this hook and must resolve it too.
    inherited_by: tuple[str, ...] = ()
    method: str = METHOD


DECODER = ("qwen3_5.py", "Qwen3_5ForCausalLM")
# What the decoder must already do for a release to be patchable: its forward
# reads this per-layer flag (0.5.11+). Without it there is nothing to route to.
CAPTURE_FLAG = "_is_layer_to_capture"

TARGET_FILES = (
    TargetFile("qwen3_5.py", required=True, bases_from=("qwen3_vl.py",)),
    TargetFile("qwen3_5_text.py", required=False),
)

HOOKS = (
    HookSpec("qwen3_5.py", "Qwen3_5ForCausalLM", DECODER_SOURCE, role="decoder",
             inherited_by=("Qwen3_5MoeForCausalLM",)),
    HookSpec("qwen3_5.py", "Qwen3_5ForConditionalGeneration", MULTIMODAL_WRAPPER_SOURCE,
             role="wrapper"),
    HookSpec("qwen3_5.py", "Qwen3_5MoeForConditionalGeneration", MULTIMODAL_WRAPPER_SOURCE,
             role="wrapper"),
    HookSpec("qwen3_5_text.py", "Qwen3_5ForCausalLM", TEXT_WRAPPER_SOURCE, role="wrapper",
             inherited_by=("Qwen3_5MoeForCausalLM",)),
)

DECODER_HOOK = next(hook for hook in HOOKS if (hook.file, hook.cls) == DECODER)
