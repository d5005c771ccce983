"""A class the analysis judges must be bound once in its module, by one class statement.

SGLang's model registry holds the class a name is bound to when ``EntryClass`` is evaluated; code
that runs later (a wrapper building its decoder, another module's ``qwen3_5.X``) gets the name's
last binding; a class statement's bases are looked up when it runs. A name bound twice can mean
a different class to each, so such a file is refused (exit 5) with nothing written: apply used to
patch the last definition and check said 0 while the registry served the first, unpatched one.
Classes the analysis does not judge may be defined as often as the file likes.
"""

from __future__ import annotations

import pytest

from support.marks import first_fast


WRAPPER = "Qwen3_5ForConditionalGeneration"
TWIN_WRAPPER = f"\n\nclass {WRAPPER}(Qwen3VLForConditionalGeneration):\n    pass\n"


def _append(text: str, code: str) -> str:
    return text + code


def _before_entry_class(text: str, code: str) -> str:
    head, tail = text.rsplit("\nEntryClass = ", 1)
    return f"{head}{code}\n\nEntryClass = {tail}"


def _in_qwen3_5(s, edit, code: str) -> str:
    s.file().write_text(edit(s.file().read_text(), code))
    return "qwen3_5.py"


def _assert_refused(s, name: str, cls: str, *commands: tuple[str, ...]) -> None:
    before = {p.name: p.read_bytes() for p in s.models.iterdir() if p.is_file()}
    for command in commands:
        done = s.invoke(*command)
        assert done.returncode == 5, (command, done.stdout, done.stderr)
        assert f"{s.file(name)}" in done.stderr and cls in done.stderr, done.stderr
        assert "sglang==0.5" in done.stderr and "Traceback" not in done.stderr
    assert {p.name: p.read_bytes() for p in s.models.iterdir() if p.is_file()} == before


def test_a_second_wrapper_class_after_entry_class_is_refused_and_nothing_is_written(site):
    s = site("0.5.21")
    _in_qwen3_5(s, _append, TWIN_WRAPPER)
    lines = s.file().read_text().splitlines()
    first, second = [i + 1 for i, line in enumerate(lines) if line.startswith(f"class {WRAPPER}(")]

    _assert_refused(s, "qwen3_5.py", WRAPPER, ("apply",), ("check",), ("status",), ("diff",))
    said = s.invoke("apply").stderr
    assert f"line {first}" in said and f"line {second}" in said and "EntryClass" in said, said


LAYOUTS = {
    "redefined-before-entry-class": (_before_entry_class, TWIN_WRAPPER, WRAPPER),
    "defined-again-under-a-condition": (
        _append, f"\nif _is_npu:\n    class {WRAPPER}(Qwen3VLForConditionalGeneration):\n        pass\n", WRAPPER),
    "defined-again-in-a-try": (
        _before_entry_class, f"\ntry:\n    pass\nexcept ImportError:\n    class {WRAPPER}:\n        pass\n", WRAPPER),
    "rebound-by-assignment": (_append, f"\n{WRAPPER} = Qwen3_5MoeForConditionalGeneration\n", WRAPPER),
    "rebound-by-unpacking": (_before_entry_class, f"\n{WRAPPER}, _x = Qwen3_5MoeForConditionalGeneration, 1\n",
                             WRAPPER),
    "rebound-by-import": (
        _append, f"\nfrom sglang.srt.models.qwen3_vl import Qwen3VLForConditionalGeneration as {WRAPPER}\n", WRAPPER),
    "rebound-by-a-loop": (_append, f"\nfor {WRAPPER} in ():\n    pass\n", WRAPPER),
    "rebound-by-walrus": (_append, f"\nif ({WRAPPER} := None):\n    pass\n", WRAPPER),
    "deleted": (_append, f"\ndel {WRAPPER}\n", WRAPPER),
    "rebound-from-a-function": (
        _append, f"\ndef _swap():\n    global {WRAPPER}\n    {WRAPPER} = None\n", WRAPPER),
    # The keyword anywhere on its line (found by word, not inside a name like get_global_...).
    "rebound-from-a-function-after-a-semicolon": (
        _append, f"\ndef _swap():\n    _x = get_global_server_args(); global {WRAPPER}\n    {WRAPPER} = None\n",
        WRAPPER),
    # A star import may bind any name: the first class judged is the decoder.
    "rebound-by-a-star-import": (_append, "\nfrom sglang.srt.models.qwen3_vl import *\n", "Qwen3_5ForCausalLM"),
    "defined-again-in-a-function-that-registers-it": (
        _append, f"\n\ndef _make():\n    class {WRAPPER}(Qwen3VLForConditionalGeneration):\n        pass\n\n"
                  f"    return {WRAPPER}\n\n\nEntryClass = [Qwen3_5MoeForConditionalGeneration, _make()]\n", WRAPPER),
    "moe-wrapper-twice": (_append, "\n\nclass Qwen3_5MoeForConditionalGeneration(Qwen3VLForConditionalGeneration):"
                                   "\n    pass\n", "Qwen3_5MoeForConditionalGeneration"),
    "decoder-twice": (_append, "\n\nclass Qwen3_5ForCausalLM(nn.Module):\n    pass\n", "Qwen3_5ForCausalLM"),
    "moe-decoder-twice": (_before_entry_class, "\n\nclass Qwen3_5MoeForCausalLM(Qwen3_5ForCausalLM):\n    pass\n",
                          "Qwen3_5MoeForCausalLM"),
}


@pytest.mark.parametrize(("edit", "code", "cls"), first_fast(*LAYOUTS.values()), ids=list(LAYOUTS))
def test_a_judged_class_bound_more_than_once_is_refused(site, edit, code, cls):
    s = site("0.5.21")
    _in_qwen3_5(s, edit, code)
    compile(s.file().read_text(), "qwen3_5.py", "exec")  # Python runs it
    _assert_refused(s, "qwen3_5.py", cls, ("apply",), ("check",))


def test_a_rebound_base_of_a_native_wrapper_is_refused_not_called_native(site):
    # 0.5.22's wrappers inherit the hook from qwen3_vl's class; bound to another class before
    # they are defined, they would inherit nothing, and check said "native".
    s = site("0.5.22")
    _in_qwen3_5(s, lambda text, code: text.replace(f"\nclass {WRAPPER}(", code + f"\nclass {WRAPPER}(", 1),
                "\nQwen3VLForConditionalGeneration = nn.Module\n\n")
    _assert_refused(s, "qwen3_5.py", "Qwen3VLForConditionalGeneration", ("apply",), ("check",))


@pytest.mark.parametrize("version", first_fast("0.5.21", "0.5.22"))
def test_the_base_class_defined_twice_in_qwen3_vl_is_refused(site, version):
    s = site(version)
    vl = s.file("qwen3_vl.py")
    vl.write_text(vl.read_text() + "\n\nclass Qwen3VLForConditionalGeneration(nn.Module):\n    pass\n")
    _assert_refused(s, "qwen3_vl.py", "Qwen3VLForConditionalGeneration", ("apply",), ("check",))


def test_the_text_wrapper_defined_twice_in_qwen3_5_text_is_refused(site):
    s = site("0.5.21")
    text = s.file("qwen3_5_text.py")
    text.write_text(text.read_text() + "\n\nclass Qwen3_5ForCausalLM(nn.Module):\n    pass\n")
    _assert_refused(s, "qwen3_5_text.py", "Qwen3_5ForCausalLM", ("apply",), ("check",))


@pytest.mark.parametrize("code", first_fast(
    "\n\nclass Qwen3_5GatedDeltaNet(nn.Module):\n    pass\n",
    "\nlogger = None\nfor _entry_class in ():\n    pass\n",
    f"\n\ndef _describe():\n    {WRAPPER} = None\n    return {WRAPPER}\n",
    f"\n\nclass _Holder:\n    {WRAPPER} = None\n",
    f"\n_names = [{WRAPPER} for {WRAPPER} in ()]\n",
), ids=["another-class-twice", "other-names-rebound", "a-local-of-that-name", "a-class-attribute-of-that-name",
        "a-comprehension-variable"])
def test_names_the_analysis_does_not_judge_may_be_bound_twice(site, code):
    s = site("0.5.21")
    _in_qwen3_5(s, _append, code)
    assert s.invoke("apply").returncode == 0
    assert s.invoke("check").returncode == 0


MOE_DECODER = "class Qwen3_5MoeForCausalLM(Qwen3_5ForCausalLM):\n"
BROKEN_OVERRIDE = ("    def set_eagle3_layers_to_capture(self, layers_to_capture: list[int]):\n"
                   "        self.layers_to_capture = layers_to_capture\n\n")


@pytest.mark.parametrize("patched_first", first_fast(False, True), ids=["unpatched", "patched"])
def test_a_moe_decoder_whose_own_hook_hides_the_patched_one_is_refused(site, patched_first):
    # The MoE wrapper calls its MoE decoder's hook: one defined there that sets no layer flag
    # hides the base's, patched or not, and check said 0.
    s = site("0.5.21")
    if patched_first:
        assert s.invoke("apply").returncode == 0
    s.file().write_text(s.file().read_text().replace(MOE_DECODER, MOE_DECODER + BROKEN_OVERRIDE, 1))
    _assert_refused(s, "qwen3_5.py", "Qwen3_5MoeForCausalLM", ("apply",), ("check",))


def test_plain_revert_leaves_a_file_it_cannot_judge_as_it_is_and_from_backup_puts_the_shipped_one_back(site):
    # A second class appended after apply: revert removed the marker lines from the first class
    # but left its method there, unmarked, and then said exit 5 about a file it had just written.
    s = site("0.5.21")
    shipped = s.read()
    assert s.invoke("apply").returncode == 0
    s.file().write_text(s.file().read_text() + TWIN_WRAPPER)
    _assert_refused(s, "qwen3_5.py", WRAPPER, ("revert",))
    assert s.invoke("revert", "--from-backup").returncode == 0
    assert s.read() == shipped


ASSIGNED = {
    "assigned-after-the-class": f"\n{WRAPPER}.set_eagle3_layers_to_capture = lambda self, layer_ids=None: None\n",
    "setattr": f"\nsetattr({WRAPPER}, 'set_eagle3_layers_to_capture', lambda self, layer_ids=None: None)\n",
    "through-a-loop": ("\nfor _cls in (Qwen3_5ForCausalLM, Qwen3_5MoeForCausalLM):\n"
                       "    _cls.set_eagle3_layers_to_capture = lambda self, layers: None\n"),
    "deleted": f"\ndel {WRAPPER}.set_eagle3_layers_to_capture\n",
    "in-a-function": f"\ndef _later():\n    {WRAPPER}.set_eagle3_layers_to_capture = None\n",
}


@pytest.mark.parametrize("code", first_fast(*ASSIGNED.values()), ids=list(ASSIGNED))
def test_a_hook_method_assigned_outside_its_class_is_refused(site, code):
    # Whatever the class statement defines, such a statement replaces what SGLang calls.
    s = site("0.5.21")
    _in_qwen3_5(s, _append, code)
    compile(s.file().read_text(), "qwen3_5.py", "exec")
    _assert_refused(s, "qwen3_5.py", "set_eagle3_layers_to_capture", ("apply",), ("check",))
