"""The built-in prompt set, the JSONL loader and the chat rendering."""

from __future__ import annotations

import json

import pytest

from eagle3_patch.bench.prompts import Prompt, builtin_prompts, load_prompts, render_chatml, select_buckets
from eagle3_patch.errors import EXIT_BAD_INPUT, BadInput


def test_builtin_set_covers_the_drafters_four_buckets():
    prompts = builtin_prompts()
    assert {p.bucket for p in prompts} == {"chat", "multi-turn", "agentic", "coding"}
    assert len({p.id for p in prompts}) == len(prompts)
    assert all(sum(p.bucket == b for p in prompts) >= 2 for b in {p.bucket for p in prompts})


def test_builtin_agentic_prompts_end_on_a_tool_result_awaiting_the_assistant():
    for prompt in select_buckets(builtin_prompts(), ("agentic",)):
        text = prompt.render()
        assert "<tools>" in text and "</tool_response><|im_end|>\n<|im_start|>assistant\n" in text


def test_chat_renders_as_chatml_with_the_assistant_turn_open():
    text = render_chatml((("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "Bye")))
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    )


def test_tool_results_render_as_tool_response_in_a_user_turn():
    assert render_chatml((("tool", "42"),)) == (
        "<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )


def test_raw_text_prompts_are_sent_verbatim():
    assert Prompt("x", "custom", text="raw <b>text</b>").render() == "raw <b>text</b>"


def test_jsonl_accepts_strings_text_prompt_and_messages(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [
        json.dumps("just a string"),
        "",
        json.dumps({"id": "t", "bucket": "coding", "text": "Write fizzbuzz"}),
        json.dumps({"prompt": "alias of text"}),
        json.dumps({"bucket": "chat", "messages": [{"role": "user", "content": "Hi"}]}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prompts = load_prompts(path)
    assert [(p.id, p.bucket) for p in prompts] == [
        ("line-1", "custom"), ("t", "coding"), ("line-4", "custom"), ("line-5", "chat"),
    ]
    assert prompts[3].messages == (("user", "Hi"),)


def test_unreadable_prompts_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput) as caught:
        load_prompts(tmp_path / "missing.jsonl")
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "missing.jsonl" in caught.value.message


@pytest.mark.parametrize(
    "line",
    ['{"text": ', "[1, 2]", '{"text": "a", "messages": []}', '{"messages": [{"role": "robot", "content": "x"}]}', "{}"],
    ids=["broken-json", "not-an-object", "both-kinds", "unknown-role", "empty"],
)
def test_malformed_line_is_bad_input_naming_the_line(tmp_path, line):
    path = tmp_path / "p.jsonl"
    path.write_text('"fine"\n' + line + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match="Line 2 of"):
        load_prompts(path)


def test_a_line_nested_past_pythons_recursion_limit_is_bad_input_not_a_crash(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('"fine"\n' + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match="Line 2 of"):
        load_prompts(path)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"],
                         ids=["line-separator", "paragraph-separator", "next-line"])
def test_jsonl_lines_end_only_at_newlines_so_unicode_separators_stay_in_the_text(tmp_path, separator):
    path = tmp_path / "p.jsonl"
    # json.dumps(..., ensure_ascii=False) writes these raw inside strings; str.splitlines ends a line at each.
    text = f"one{separator}two"
    lines = [json.dumps({"text": text}, ensure_ascii=False), json.dumps("second")]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8", newline="")
    prompts = load_prompts(path)
    assert [(p.id, p.text) for p in prompts] == [("line-1", text), ("line-2", "second")]


def test_repeated_prompt_ids_are_rejected(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', encoding="utf-8")
    with pytest.raises(BadInput, match="repeats the prompt id 'a'"):
        load_prompts(path)


def test_empty_prompts_file_is_bad_input(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(BadInput, match="holds no prompts"):
        load_prompts(path)


def test_unknown_bucket_is_bad_input_listing_the_known_ones():
    with pytest.raises(BadInput) as caught:
        select_buckets(builtin_prompts(), ("chat", "poetry"))
    assert "poetry" in caught.value.what
    assert "agentic, chat, coding, multi-turn" in caught.value.why
