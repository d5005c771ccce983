"""How many drafted tokens the target accepted: the fields each SGLang release sends, pooled.

``_calculate_spec_decoding_metrics`` (``managers/tokenizer_manager.py``) puts these in the
finished chunk's ``meta_info`` of a speculative server, under names that changed:

- 0.5.9 - 0.5.10: ``spec_accept_token_num``, ``spec_draft_token_num``, ``spec_accept_histogram``
- 0.5.11: ``spec_accepted_drafts``, ``spec_proposed_drafts``, ``spec_accept_histogram``
- 0.5.12 - 0.5.20: ``spec_num_correct_drafts``, ``spec_num_proposed_drafts``,
  ``spec_correct_drafts_histogram``, plus 0.5.11's names as aliases
- 0.5.21 - 0.5.23: ``spec_num_correct_drafts``, ``spec_num_proposed_drafts``,
  ``spec_correct_drafts_histogram`` only

The proposed count is verify passes x (``speculative_num_draft_tokens`` - 1); the histogram's
entry k counts the verify passes that accepted exactly k drafts (``schedule_batch.py``), and is
sent only once a pass was counted. A server that sends none of these gets ``None``: never a guess.
Counts past ``serverjson.MAX_COUNT``, more drafts accepted than proposed, or a histogram that counts
no pass are no SGLang's: ``malformed`` says so, and the stream is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eagle3_patch.bench.serverjson import MAX_COUNT, is_count, is_counts

# A histogram has an entry per number of drafts a verify pass can accept (speculative_num_draft_tokens;
# SGLang's configurations use a few, tree drafting some dozens). Each request keeps its own, and the
# JSON report prints them all: a stream line of a million entries made a report of hundreds of MB.
MAX_HISTOGRAM = 1024


@dataclass(frozen=True)
class AcceptanceFields:
    """One release family's names for the accepted and proposed counts and the histogram."""

    accepted: str
    proposed: str
    histogram: str


# Newest first: 0.5.12 - 0.5.20 send both of the first two sets, and the newest names win.
FIELD_SETS = (
    AcceptanceFields("spec_num_correct_drafts", "spec_num_proposed_drafts", "spec_correct_drafts_histogram"),
    AcceptanceFields("spec_accepted_drafts", "spec_proposed_drafts", "spec_accept_histogram"),
    AcceptanceFields("spec_accept_token_num", "spec_draft_token_num", "spec_accept_histogram"),
)
COUNT_FIELDS = tuple(dict.fromkeys(name for f in FIELD_SETS for name in (f.accepted, f.proposed)))
HISTOGRAM_FIELDS = tuple(dict.fromkeys(f.histogram for f in FIELD_SETS))


@dataclass(frozen=True)
class Acceptance:
    """Drafts accepted over drafts proposed, and passes per number of drafts accepted."""

    accepted_drafts: int
    proposed_drafts: int
    histogram: tuple[int, ...] | None
    fields: str  # the accepted-count field it was read from, so a reader knows the release family

    @property
    def rate(self) -> float | None:
        return self.accepted_drafts / self.proposed_drafts if self.proposed_drafts else None

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted_drafts": self.accepted_drafts,
            "proposed_drafts": self.proposed_drafts,
            "rate": self.rate,
            "histogram": list(self.histogram) if self.histogram is not None else None,
            "fields": self.fields,
        }


def malformed(meta: Mapping[str, Any]) -> str | None:
    """Why a chunk's ``meta_info`` acceptance fields cannot be SGLang's (the field named), or None."""
    for name in COUNT_FIELDS:
        if meta.get(name) is not None and not is_count(meta[name]):
            return f"'meta_info.{name}' is not a count (a whole number from 0 to {MAX_COUNT})"
    for name in HISTOGRAM_FIELDS:
        histogram = meta.get(name)
        if histogram is None:
            continue
        if not is_counts(histogram):
            return f"'meta_info.{name}' is not a list of counts (whole numbers from 0 to {MAX_COUNT})"
        if len(histogram) > MAX_HISTOGRAM:
            return (f"'meta_info.{name}' has {len(histogram)} entries, one per number of drafts a verify pass "
                    f"accepted; no drafting configuration proposes more than {MAX_HISTOGRAM}")
        if not any(histogram):
            return f"'meta_info.{name}' counts no verify pass (SGLang sends it only once a pass ran)"
    for names in FIELD_SETS:
        accepted, proposed = meta.get(names.accepted), meta.get(names.proposed)
        if accepted is not None and proposed is not None and accepted > proposed:
            return (f"'meta_info.{names.accepted}' says {accepted} drafts were accepted of "
                    f"{proposed} proposed ('meta_info.{names.proposed}')")
    return None


def read_acceptance(meta: Mapping[str, Any]) -> Acceptance | None:
    """The acceptance a finished chunk reports (checked by ``malformed``), or None when its release
    sends none."""
    for names in FIELD_SETS:
        if meta.get(names.accepted) is not None and meta.get(names.proposed) is not None:
            histogram = meta.get(names.histogram)
            return Acceptance(
                accepted_drafts=meta[names.accepted],
                proposed_drafts=meta[names.proposed],
                histogram=tuple(histogram) if histogram is not None else None,
                fields=names.accepted,
            )
    return None


def pool(items: Iterable[Acceptance | None]) -> Acceptance | None:
    """All requests' counts summed; histograms summed entry by entry where every request sent one."""
    present = [a for a in items if a is not None]
    if not present:
        return None
    histograms = [a.histogram for a in present]
    histogram = None
    if all(h is not None for h in histograms):
        width = max(len(h) for h in histograms)
        histogram = tuple(sum(h[k] for h in histograms if k < len(h)) for k in range(width))
    return Acceptance(
        accepted_drafts=sum(a.accepted_drafts for a in present),
        proposed_drafts=sum(a.proposed_drafts for a in present),
        histogram=histogram,
        fields=present[0].fields,
    )
