"""Upstream drift around the anchors, and behaviour equal to SGLang 0.5.22's own fix."""

from __future__ import annotations

import re

import pytest

from support.standins import call, capture_outcome


pytestmark = pytest.mark.slow  # drift sweeps around every anchor

BASE = "0.5.12"


def _comments_in_neighbours(text):
    return text.replace("    def get_input_embeddings(self):\n",
                        "    def get_input_embeddings(self):\n        \"\"\"Docstring added upstream.\"\"\"\n"
                        "        # a comment about set_eagle3_layers_to_capture\n", 1)


def _changed_annotations(text):
    return text.replace("def set_dflash_layers_to_capture(self, layers_to_capture: list[int]):",
                        "def set_dflash_layers_to_capture(self, layers_to_capture: \"Sequence[int]\") -> None:")


def _reordered_methods(text):
    # Move the decoder's set_dflash_layers_to_capture to the top of its class body.
    method = re.search(r"    def set_dflash_layers_to_capture\(.*?\n(?=    \S|\n    @)", text, re.S).group(0)
    text = text.replace(method, "", 1)
    anchor = "class Qwen3_5ForCausalLM(nn.Module):\n"
    return text.replace(anchor, anchor + method + "\n", 1)


def _class_between_wrappers(text):
    anchor = "class Qwen3_5MoeForConditionalGeneration("
    return text.replace(anchor, "class Unrelated:\n    def set_eagle3_layers_to_capture(self):\n"
                                "        return None\n\n\n" + anchor, 1)


def _crlf(text):
    return text.replace("\n", "\r\n")


DRIFTS = [_comments_in_neighbours, _changed_annotations, _reordered_methods,
          _class_between_wrappers, _crlf]


@pytest.mark.parametrize("drift", DRIFTS, ids=lambda f: f.__name__.strip("_"))
def test_patch_survives_drift_and_reverts_to_the_drifted_bytes(site, drift):
    s = site(BASE)
    original = s.read().decode()
    drifted = drift(original)
    assert drifted != original
    s.file().write_bytes(drifted.encode())
    assert s.run("apply").returncode == 0
    assert s.run("check").returncode == 0
    assert all(o.works for o in capture_outcome(s.models).values())
    patched = s.read()
    if drift is _crlf:
        assert patched.count(b"\n") == patched.count(b"\r\n")
    assert s.run("revert").returncode == 0
    assert s.read() == drifted.encode()


SCENARIOS = [
    ([1, 31, 60], 64, True),
    (None, 64, True),
    ([1, 31, 60], 64, False),   # a non-last pipeline rank does nothing
    ([0, 3, 5], 8, True),
    (None, 8, True),
]


@pytest.mark.parametrize("patched_release", ["0.5.12", "0.5.21"])
@pytest.mark.parametrize("ids,n,last_rank", SCENARIOS)
def test_patched_behaviour_equals_native_0_5_22(site, patched_release, ids, n, last_rank):
    patched, native = site(patched_release), site("0.5.22")
    assert patched.run("apply").returncode == 0
    wrappers = [("qwen3_5.py", "Qwen3_5ForConditionalGeneration"),
                ("qwen3_5.py", "Qwen3_5MoeForConditionalGeneration")]
    if patched.file("qwen3_5_text.py").exists():
        wrappers.append(("qwen3_5_text.py", "Qwen3_5ForCausalLM"))
    for wrapper in wrappers:
        ours = call(patched.models, wrapper, ids, n, last_rank)
        theirs = call(native.models, wrapper, ids, n, last_rank)
        assert ours == theirs, wrapper
        assert ours.works is last_rank
