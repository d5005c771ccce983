"""Run a resolved hook against stand-in model objects and see where the flags land.

Deciding "native", "unpatched" or "patched" by reading method text would break
on the next upstream refactor. Instead the method Python would resolve is
compiled on its own and called exactly as SGLang's model runner calls it, on
stand-ins with the attributes the Qwen3.5 classes have (``layers``,
``pp_group``, ``config``, ``model``). What counts is the outcome: which
decoder layers end up with ``_is_layer_to_capture`` and whether aux capture is
on. Only function definitions are executed, never module-level code.
"""

from __future__ import annotations

import __future__
import ast
import builtins
import copy
from dataclasses import dataclass
from types import FunctionType, SimpleNamespace

from eagle3_patch.patch.hooks import CAPTURE_FLAG
from eagle3_patch.text.masking import shown

PROBE_LAYERS = 64
# The drafter's ids ("output of layer k") and SGLang's default for ``None``
# both mean capture at the input of layers 2, 32 and 61 when n = 64.
PROBE_IDS = [1, 31, 60]
EXPECTED = [2, PROBE_LAYERS // 2, PROBE_LAYERS - 3]


@dataclass(frozen=True)
class Outcome:
    flagged: tuple[int, ...]
    capture_on: bool
    error: str | None = None


def compile_method(node: ast.FunctionDef) -> FunctionType:
    """A function object from one method definition, without running its class.

    Decorators are dropped and annotations are left unevaluated, so a method
    compiles without the module's imports; a body that needs module globals
    fails when called, and that failure is reported as the probe's outcome.
    Raises ValueError if even the definition needs something we do not have.
    """
    bare = copy.copy(node)
    bare.decorator_list = []
    module = ast.fix_missing_locations(ast.Module(body=[bare], type_ignores=[]))
    code = compile(module, "<eagle3-patch probe>", "exec",
                   flags=__future__.annotations.compiler_flag, dont_inherit=True)
    namespace: dict = {"__builtins__": builtins}
    try:
        exec(code, namespace)  # noqa: S102 - defines one function, runs nothing else
    except Exception as exc:  # e.g. a default value naming a module global
        raise ValueError(f"cannot define {node.name} on its own: {_failure(exc)}") from None
    return namespace[node.name]


def _pp_group(last: bool) -> SimpleNamespace:
    return SimpleNamespace(is_last_rank=last, is_first_rank=True, world_size=1)


def make_decoder(methods: dict[str, FunctionType], n: int = PROBE_LAYERS) -> object:
    cls = type("ProbeDecoder", (), dict(methods))
    decoder = cls()
    decoder.layers = [SimpleNamespace() for _ in range(n)]
    decoder.layers_to_capture = []
    decoder.capture_aux_hidden_states = False
    decoder.pp_group = _pp_group(True)
    decoder.start_layer, decoder.end_layer = 0, n
    decoder.config = SimpleNamespace(num_hidden_layers=n)
    return decoder


def make_wrapper(hook: FunctionType, decoder: object, n: int = PROBE_LAYERS,
                 last_rank: bool = True) -> object:
    cls = type("ProbeWrapper", (), {"set_eagle3_layers_to_capture": hook})
    wrapper = cls()
    wrapper.model = decoder
    wrapper.config = SimpleNamespace(num_hidden_layers=n)
    wrapper.pp_group = _pp_group(last_rank)
    wrapper.capture_aux_hidden_states = False
    return wrapper


def flagged_layers(decoder: object) -> tuple[int, ...]:
    return tuple(i for i, layer in enumerate(decoder.layers) if getattr(layer, CAPTURE_FLAG, False))


def run_wrapper(hook: FunctionType, decoder_methods: dict[str, FunctionType],
                layer_ids: list[int] | None, last_rank: bool = True) -> Outcome:
    """Call ``wrapper.set_eagle3_layers_to_capture(layer_ids)`` on fresh stand-ins."""
    decoder = make_decoder(decoder_methods)
    wrapper = make_wrapper(hook, decoder, last_rank=last_rank)
    try:
        wrapper.set_eagle3_layers_to_capture(layer_ids)
    except Exception as exc:  # any failure of upstream code is an outcome, not a crash
        return Outcome(flagged_layers(decoder), wrapper.capture_aux_hidden_states, _failure(exc))
    return Outcome(flagged_layers(decoder), bool(wrapper.capture_aux_hidden_states))


def run_decoder(method: FunctionType, layers_to_capture: list[int]) -> Outcome:
    """Call ``decoder.set_eagle3_layers_to_capture(layers_to_capture)`` on a fresh stand-in."""
    decoder = make_decoder({"set_eagle3_layers_to_capture": method})
    try:
        method(decoder, list(layers_to_capture))
    except Exception as exc:  # see run_wrapper
        return Outcome(flagged_layers(decoder), False, _failure(exc))
    return Outcome(flagged_layers(decoder), True)


def wrapper_problem(hook: FunctionType, decoder_methods: dict[str, FunctionType]) -> str | None:
    """Why this wrapper hook does not make EAGLE-3 capture work, or None if it does."""
    for ids in (PROBE_IDS, None):
        outcome = run_wrapper(hook, decoder_methods, ids)
        call = f"set_eagle3_layers_to_capture({ids})"
        if outcome.error:
            return f"{call} raised {outcome.error}"
        if list(outcome.flagged) != EXPECTED:
            return f"{call} flags decoder layers {list(outcome.flagged)}, expected {EXPECTED}"
        if not outcome.capture_on:
            return f"{call} leaves capture_aux_hidden_states off"
    return None


def decoder_problem(method: FunctionType) -> str | None:
    """Why this decoder hook does not set the per-layer flags, or None if it does."""
    outcome = run_decoder(method, EXPECTED)
    if outcome.error:
        return f"set_eagle3_layers_to_capture({EXPECTED}) raised {outcome.error}"
    if list(outcome.flagged) != EXPECTED:
        return f"flags decoder layers {list(outcome.flagged)}, expected {EXPECTED}"
    return None


def _failure(exc: Exception) -> str:
    """What the probed code raised, as status and check quote it: the file's code wrote the
    message, so it is an excerpt, escaped (its text may even fail to convert)."""
    try:
        said = str(exc)
    except Exception:  # whatever its __str__ raises, the failure is still the probed code's
        said = "(a message that cannot be shown)"
    return shown(f"{type(exc).__name__}: {said}")
