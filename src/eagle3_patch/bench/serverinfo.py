"""What a server says it is running: ``GET /server_info``, read field by field.

``GET /server_info`` returns the flattened server arguments (``model_path``,
``speculative_algorithm``, ``speculative_num_steps``, ``speculative_eagle_topk``,
``speculative_num_draft_tokens``, ``incremental_streaming_output`` ...) plus ``version``
(0.5.8 through 0.5.23 agree). ``/get_server_info`` is its deprecated alias, so we use ``/server_info``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from eagle3_patch.bench import failures
from eagle3_patch.bench.serverjson import is_count, is_text
from eagle3_patch.text.masking import printable


@dataclass(frozen=True)
class ServerInfo:
    """What a server says it is running, printed with the results."""

    url: str
    model_path: str
    version: str
    speculative_algorithm: str | None
    speculative_num_steps: int | None
    speculative_eagle_topk: int | None
    speculative_num_draft_tokens: int | None
    speculative_draft_model_path: str | None
    incremental_streaming_output: bool
    # --context-length (None: the model's own) and the scheduler's longest prompt.
    context_length: int | None = None
    max_req_input_len: int | None = None

    @property
    def reserved_tokens(self) -> int:
        """The draft-token slots an EAGLE server reserves in every request's context
        (``num_reserved_tokens``: max(topk x steps, draft tokens); 0 without speculative decoding)."""
        if not self.speculative:
            return 0
        sizes = (self.speculative_eagle_topk, self.speculative_num_steps, self.speculative_num_draft_tokens)
        if not all(is_count(n) for n in sizes):
            return 0
        topk, steps, draft_tokens = sizes
        return max(topk * steps, draft_tokens)

    @property
    def speculative(self) -> bool:
        return bool(self.speculative_algorithm)

    def describe(self) -> str:
        """One line for the report; the server's own words escaped (they are printed to a terminal)."""
        spec = "no speculative decoding"
        if self.speculative:
            spec = (
                f"{printable(self.speculative_algorithm)} steps={self.speculative_num_steps} "
                f"topk={self.speculative_eagle_topk} draft_tokens={self.speculative_num_draft_tokens}"
            )
        return f"{self.url}  {printable(self.model_path)}  ({spec}; SGLang {printable(self.version)})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# /server_info's texts are paths, ids and names: no path the system can open is longer (PATH_MAX).
MAX_INFO_TEXT = 4096
_TEXT = f"text of at most {MAX_INFO_TEXT} characters"


def _info_text(value: Any) -> bool:
    return is_text(value) and len(value) <= MAX_INFO_TEXT


# What each /server_info field bench reads must be (null: not set, or a field this release lacks).
_INFO_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model_path": (_info_text, _TEXT),
    "version": (_info_text, _TEXT),
    "speculative_algorithm": (lambda v: v is None or _info_text(v), f"{_TEXT} or null"),
    "speculative_draft_model_path": (lambda v: v is None or _info_text(v), f"{_TEXT} or null"),
    "speculative_num_steps": (lambda v: v is None or is_count(v), "a count or null"),
    "speculative_eagle_topk": (lambda v: v is None or is_count(v), "a count or null"),
    "speculative_num_draft_tokens": (lambda v: v is None or is_count(v), "a count or null"),
    "incremental_streaming_output": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
}


def read_server_info(url: str, body: Any) -> ServerInfo:
    """The server at ``url`` as its ``/server_info`` answer ``body`` describes it; a ``BenchFailed``
    naming the field for anything that is not SGLang's answer."""
    if not isinstance(body, dict) or "version" not in body or "model_path" not in body:
        raise failures.not_sglang(url, "its /server_info has no 'version' and 'model_path'")
    for name, (fits, kind) in _INFO_FIELDS.items():
        if not fits(body.get(name)):
            raise failures.not_sglang(url, f"its /server_info's '{name}' is not {kind}")
    return ServerInfo(
        url=url,
        model_path=body["model_path"],
        version=body["version"],
        speculative_algorithm=body.get("speculative_algorithm"),
        speculative_num_steps=body.get("speculative_num_steps"),
        speculative_eagle_topk=body.get("speculative_eagle_topk"),
        speculative_num_draft_tokens=body.get("speculative_num_draft_tokens"),
        speculative_draft_model_path=body.get("speculative_draft_model_path"),
        incremental_streaming_output=bool(body.get("incremental_streaming_output")),
        context_length=_count_or_none(body.get("context_length")),
        max_req_input_len=_count_or_none(body.get("max_req_input_len")),
    )


def _count_or_none(value: Any) -> int | None:
    return value if is_count(value, 1) else None
