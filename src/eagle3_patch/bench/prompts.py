"""The prompts a benchmark sends: the built-in set, a user's JSONL file, and how chats become text.

Chat-form prompts are rendered to one text string here and sent to SGLang's native
``/generate`` as ``text``. We do not use ``/v1/chat/completions``: the losslessness
check needs the exact generated token ids, which ``/generate`` returns as
``output_ids`` (every release 0.5.8 - 0.5.23, ``tokenizer_manager.py``) and the
OpenAI route does not. Both servers receive the very same string, so the comparison
is token-exact whatever template we pick; we use Qwen's ChatML layout (tool results
wrapped in ``<tool_response>`` inside a user turn, as Qwen3's own template does) so
the drafter sees the kind of text it was tuned on.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from eagle3_patch.errors import BadInput
from eagle3_patch.site.filebytes import NotAFile, read_bytes
from eagle3_patch.text.jsontext import loads
from eagle3_patch.text.masking import shown

BUILTIN_NAME = "builtin"
# Far above any real prompt set (the built-in one is 30 KB), far below what would strain memory.
PROMPTS_FILE_CAP = 64 * 2**20
_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Prompt:
    """One benchmark prompt: ``text`` is sent as-is; ``messages`` are rendered first."""

    id: str
    bucket: str
    text: str | None = None
    messages: tuple[tuple[str, str], ...] = ()

    def render(self) -> str:
        """The exact string sent to the server."""
        if self.text is not None:
            return self.text
        return render_chatml(self.messages)


def render_chatml(messages: tuple[tuple[str, str], ...]) -> str:
    """Qwen ChatML with the assistant turn opened, ready for generation."""
    parts = []
    for role, content in messages:
        if role == "tool":
            parts.append(f"<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n")
        else:
            parts.append(f"<|im_start|>{role}\n{content}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def builtin_prompts() -> list[Prompt]:
    """The project's own set: short chat, long multi-turn, agentic transcripts, coding."""
    source = resources.files("eagle3_patch.bench").joinpath("data/builtin_prompts.jsonl")
    return _parse_lines(_jsonl_lines(source.read_text(encoding="utf-8")), BUILTIN_NAME)


def load_prompts(path: Path) -> list[Prompt]:
    """Read a JSONL prompts file; every problem is a ``BadInput`` naming file and line."""
    try:
        lines = _jsonl_lines(_read_regular_file(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(
            f"Cannot read the prompts file {path}.",
            f"Reason: {exc}.",
            "Pass a readable UTF-8 JSONL file, one prompt per line, e.g. "
            '{"bucket": "chat", "messages": [{"role": "user", "content": "Hi"}]}',
        ) from exc
    prompts = _parse_lines(lines, str(path))
    if not prompts:
        raise BadInput(
            f"The prompts file {path} holds no prompts.",
            "Every line is blank.",
            'Add one JSON object per line, e.g. {"bucket": "coding", "text": "Write a quicksort"}',
        )
    return prompts


def _read_regular_file(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``PROMPTS_FILE_CAP`` bytes;
    ``filebytes.read_bytes`` decides, on the descriptor it reads."""
    try:
        return read_bytes(str(path), limit=PROMPTS_FILE_CAP)
    except NotAFile as exc:
        if exc.errno == errno.EFBIG:
            raise BadInput(
                f"The prompts file {path} is larger than the {PROMPTS_FILE_CAP // 2**20} MiB "
                "eagle3-patch reads.",
                f"It is {exc.strerror}; every prompt is held in memory for the whole run, so the "
                "file is refused rather than read.",
                "Pass a smaller set: a benchmark needs tens to thousands of prompts, not millions.",
            ) from None
        raise BadInput(
            f"The prompts file {path} is not a regular file: it is {exc.strerror}.",
            "A stream (a pipe, /dev/zero, /dev/urandom) has no end to read up to, and the "
            "prompts are read whole before the first request.",
            "Write the prompts to a file first and pass that, e.g. "
            "`some-command > prompts.jsonl && eagle3-patch bench --prompts prompts.jsonl ...`",
        ) from None


def select_buckets(prompts: list[Prompt], buckets: tuple[str, ...]) -> list[Prompt]:
    """Keep only the named buckets; naming a bucket that does not exist is a user error."""
    if not buckets:
        return prompts
    known = sorted({p.bucket for p in prompts})
    unknown = [b for b in buckets if b not in known]
    if unknown:
        raise BadInput(
            f"No prompts in bucket(s): {shown(', '.join(unknown))}.",
            f"The prompt set has buckets: {shown(', '.join(known), limit=1000)}.",
            "Pass --bucket with one of those names, or drop --bucket to run them all.",
        )
    return [p for p in prompts if p.bucket in buckets]


def _jsonl_lines(text: str) -> list[str]:
    # Only "\n" ends a JSONL line (a "\r" before it is JSON whitespace): str.splitlines also
    # splits at U+2028, U+2029 and U+0085, which json.dumps(ensure_ascii=False) leaves raw in strings.
    return text.split("\n")


def _parse_lines(lines: list[str], origin: str) -> list[Prompt]:
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            prompt = _parse_one(loads(line), number)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:  # nesting past Python's limit
            raise BadInput(
                f"Line {number} of {origin} is not a usable prompt.",
                f"Reason: {exc}.",
                'Each line must be a JSON string, or an object with "text" (or "prompt") or '
                '"messages" ([{"role": ..., "content": ...}]), optionally "id" and "bucket".',
            ) from exc
        if prompt.id in seen:
            raise BadInput(
                f"Line {number} of {origin} repeats the prompt id '{shown(prompt.id)}'.",
                "Ids name prompts in the report and must be unique.",
                "Give each line its own \"id\", or leave \"id\" out to number lines automatically.",
            )
        seen.add(prompt.id)
        prompts.append(prompt)
    return prompts


def _parse_one(obj: object, number: int) -> Prompt:
    if isinstance(obj, str):
        obj = {"text": obj}
    if not isinstance(obj, dict):
        raise TypeError(f"expected a JSON object or string, got {type(obj).__name__}")
    pid = str(obj.get("id", f"line-{number}"))
    bucket = str(obj.get("bucket", "custom"))
    text = obj.get("text", obj.get("prompt"))
    messages = obj.get("messages")
    if (text is None) == (messages is None):
        raise ValueError('give exactly one of "text"/"prompt" or "messages"')
    if text is not None:
        if not isinstance(text, str) or not text:
            raise ValueError('"text" must be a non-empty string')
        return Prompt(pid, bucket, text=text)
    if not isinstance(messages, list) or not messages:
        raise ValueError('"messages" must be a non-empty list')
    turns = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role not in _ROLES or not isinstance(content, str):
            raise ValueError(f"each message needs a role in {_ROLES} and a string content")
        turns.append((role, content))
    return Prompt(pid, bucket, messages=tuple(turns))
