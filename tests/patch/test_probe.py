"""The behavioural probe on small, known method bodies."""

from __future__ import annotations

import ast

import pytest

from eagle3_patch.patch import probe
from eagle3_patch.patch.hooks import DECODER_SOURCE, MULTIMODAL_WRAPPER_SOURCE

# What Qwen3-VL's wrapper does on 0.5.11-0.5.21: assigns a list nobody reads.
LIST_ONLY = '''\
def set_eagle3_layers_to_capture(self, layer_ids: Optional[List[int]] = None):
    self.capture_aux_hidden_states = True
    self.model.capture_aux_hidden_states = True
    if layer_ids is None:
        num_layers = self.config.num_hidden_layers
        self.model.layers_to_capture = [2, num_layers // 2, num_layers - 3]
    else:
        self.model.layers_to_capture = [val + 1 for val in layer_ids]
'''


def _fn(source):
    return probe.compile_method(ast.parse(source).body[0])


def test_our_wrapper_with_our_decoder_works():
    decoder = {"set_eagle3_layers_to_capture": _fn(DECODER_SOURCE)}
    assert probe.wrapper_problem(_fn(MULTIMODAL_WRAPPER_SOURCE), decoder) is None
    assert probe.decoder_problem(_fn(DECODER_SOURCE)) is None


def test_list_only_wrapper_is_reported_with_where_the_flags_went():
    decoder = {"set_eagle3_layers_to_capture": _fn(DECODER_SOURCE)}
    problem = probe.wrapper_problem(_fn(LIST_ONLY), decoder)
    assert problem == "set_eagle3_layers_to_capture([1, 31, 60]) flags decoder layers [], expected [2, 32, 61]"


def test_wrapper_delegating_to_a_decoder_without_the_method_raises_and_is_reported():
    problem = probe.wrapper_problem(_fn(MULTIMODAL_WRAPPER_SOURCE), {})
    assert problem.startswith("set_eagle3_layers_to_capture([1, 31, 60]) raised AttributeError")


def test_off_by_one_wrapper_is_caught():
    shifted = MULTIMODAL_WRAPPER_SOURCE.replace("[val + 1 for val in layer_ids]", "list(layer_ids)")
    decoder = {"set_eagle3_layers_to_capture": _fn(DECODER_SOURCE)}
    assert "flags decoder layers [1, 31, 60]" in probe.wrapper_problem(_fn(shifted), decoder)


def test_annotations_naming_unimported_types_do_not_matter():
    assert probe.wrapper_problem(_fn(LIST_ONLY), {}) is not None  # compiled despite Optional/List


def test_a_definition_needing_module_globals_is_a_value_error():
    node = ast.parse("def set_eagle3_layers_to_capture(self, ids=DEFAULT_IDS):\n    pass\n").body[0]
    with pytest.raises(ValueError, match="cannot define set_eagle3_layers_to_capture"):
        probe.compile_method(node)
