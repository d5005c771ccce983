"""An independent behaviour check: call the hooks Python would resolve, on stand-in models.

Written separately from eagle3_patch.patch.probe on purpose (a test that reused the
code under test could not fail): the inheritance is spelled out for the known
classes, and methods are compiled from their own source text with the typing
names SGLang's files import.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

WRAPPERS = {
    # (file, class) -> (file, class) it inherits from, when it has no own method
    ("qwen3_5.py", "Qwen3_5ForConditionalGeneration"): ("qwen3_vl.py", "Qwen3VLForConditionalGeneration"),
    ("qwen3_5.py", "Qwen3_5MoeForConditionalGeneration"): ("qwen3_vl.py", "Qwen3VLForConditionalGeneration"),
    ("qwen3_5_text.py", "Qwen3_5ForCausalLM"): None,
}
DECODER = ("qwen3_5.py", "Qwen3_5ForCausalLM")


def _method(models: Path, file: str, cls: str, name: str):
    path = models / file
    if not path.exists():
        return None
    source = path.read_text("utf-8")
    tree = ast.parse(source)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    if not classes:
        return None
    defs = [n for n in classes[-1].body if isinstance(n, ast.FunctionDef) and n.name == name]
    if not defs:
        return None
    namespace = {"Optional": Optional, "List": list}
    exec(textwrap.dedent(ast.get_source_segment(source, defs[-1], padded=True)), namespace)
    return namespace[name]


def resolve(models: Path, file: str, cls: str, name: str):
    found = _method(models, file, cls, name)
    base = WRAPPERS.get((file, cls))
    if found is None and base:
        found = _method(models, *base, name)
    return found


@dataclass(frozen=True)
class Outcome:
    works: bool
    flagged: tuple
    capture_on: bool
    model_capture_list: tuple
    error: str = ""


def call(models: Path, wrapper: tuple, layer_ids, n: int = 64, last_rank: bool = True) -> Outcome:
    """wrapper.set_eagle3_layers_to_capture(layer_ids) on fresh stand-ins with n layers."""
    decoder_methods = {m: f for m in ("set_eagle3_layers_to_capture", "set_dflash_layers_to_capture")
                       if (f := _method(models, *DECODER, m))}
    decoder = type("Decoder", (), decoder_methods)()
    decoder.layers = [SimpleNamespace() for _ in range(n)]
    decoder.layers_to_capture = []
    decoder.capture_aux_hidden_states = False
    hook = resolve(models, *wrapper, "set_eagle3_layers_to_capture")
    model = type("Wrapper", (), {"set_eagle3_layers_to_capture": hook} if hook else {})()
    model.model = decoder
    model.config = SimpleNamespace(num_hidden_layers=n)
    model.pp_group = SimpleNamespace(is_last_rank=last_rank, is_first_rank=True, world_size=1)
    model.capture_aux_hidden_states = False
    error = ""
    try:
        model.set_eagle3_layers_to_capture(layer_ids)
    except Exception as exc:  # the broken releases fail here in different ways
        error = f"{type(exc).__name__}: {exc}"
    flagged = tuple(i for i, layer in enumerate(decoder.layers)
                    if getattr(layer, "_is_layer_to_capture", False))
    expected = (2, n // 2, n - 3) if layer_ids is None else tuple(i + 1 for i in layer_ids)
    works = not error and flagged == expected and model.capture_aux_hidden_states is True
    return Outcome(works, flagged, model.capture_aux_hidden_states,
                   tuple(decoder.layers_to_capture), error)


def capture_outcome(models: Path) -> dict[str, Outcome]:
    """For each wrapper present: does capture work for the drafter's ids AND for None?"""
    results = {}
    for wrapper in WRAPPERS:
        if not (models / wrapper[0]).exists():
            continue
        with_ids = call(models, wrapper, [1, 31, 60])
        default = call(models, wrapper, None)
        results[":".join(wrapper)] = with_ids if not with_ids.works else default
    return results
