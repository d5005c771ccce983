"""A safetensors header judged as the ``safetensors`` library judges it when it opens the file.

SGLang opens the drafter with that library only after loading the target (minutes, tens of
GB), so a header it would refuse must fail here, in a second, naming the file and the tensor
(the library names neither for a size that does not match). Only the header is read. The
library itself is not asked: it is no dependency of ours, the copy that matters is the one in
SGLang's environment, and it is not imported on serve's fast path. Its rules (0.8: serde's
parsing of the header, then ``Metadata::validate`` and the check that the tensors cover the
file exactly) are written out here, and tests/test_serve_weights_header.py holds every one of
them, and random headers, against the installed library.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import NoReturn

from eagle3_patch.errors import BadInput
from eagle3_patch.text.jsontext import finite_float, loads, reason
from eagle3_patch.text.masking import shown, shown_json

# Element sizes in bits of the dtypes safetensors knows (its `Dtype` enum, 0.8).
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
    "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
# Shapes and offsets are Rust `usize`s (64-bit), and their products are checked against it.
USIZE_END = 2**64
# serde_json refuses JSON nested this deep (objects and arrays together).
MAX_DEPTH = 128
# A tensor read as serde reads the struct: an object with these fields, or a list of them in order.
FIELDS = ("dtype", "shape", "data_offsets")
REDOWNLOAD = "Re-download the drafter; a truncated or interrupted download is the usual cause."


class _Object(dict):
    """A JSON object, with the keys it repeated (Python keeps the last value, as serde's maps do;
    serde refuses a repeated struct field)."""

    repeated: frozenset = frozenset()


def _object(pairs: list) -> _Object:
    found = _Object(pairs)
    if len(found) < len(pairs):
        seen: set = set()
        found.repeated = frozenset(key for key, _ in pairs if key in seen or seen.add(key))
    return found


# What makes Python's reading of the text differ from serde's, searched for before parsing so that
# an ordinary header takes json's fast path: an escape (a key spelled "\u0064type", a lone
# surrogate), "-0" (a float to serde), an integer past f64's range.
_RISKY = re.compile(r"\\u|-0(?![\d.eE])|\d{310}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[{]}")))


def parse_header(source: str, raw: bytes) -> object:
    """The header's JSON, parsed only where serde_json parses it: UTF-8 (no BOM), no NaN, no
    number out of f64's range, no lone surrogate escape, nesting under ``MAX_DEPTH``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _refuse(source, f"it is not UTF-8 ({exc})")
    strict = bool(_RISKY.search(text))
    header = _loads(source, text, strict)
    if not strict and _may_repeat_keys(text, header):
        header = _loads(source, text, strict=True)
    if strict and _has_surrogate(header):
        _refuse(source, "a string holds a lone surrogate escape")
    if text.count("[") + text.count("{") >= MAX_DEPTH and _depth(text) >= MAX_DEPTH:
        _refuse(source, f"it is nested {MAX_DEPTH} levels deep or more")
    return header


def _loads(source: str, text: str, strict: bool) -> object:
    hooks = {"object_pairs_hook": _object, "parse_int": _integer} if strict else {}
    try:
        return loads(text, finite=True, **hooks)
    except (ValueError, RecursionError) as exc:
        _refuse(source, reason(exc))


def _may_repeat_keys(text: str, header: object) -> bool:
    """Whether a key serde cares about may be repeated: named more often than it can be once."""
    if not isinstance(header, dict):
        return False
    entries = sum(isinstance(entry, dict) for entry in header.values())
    return text.count('"__metadata__"') > 1 or any(text.count(f'"{field}"') > entries for field in FIELDS)


def _integer(text: str) -> int | float:
    # Past Python's digit limit, int() raises what jsontext.loads reports as NumberTooLong.
    number = int(text)
    # serde reads an integer past u64 (or below zero, or "-0") as a float: no size nor offset.
    if text.startswith("-") or number >= USIZE_END:
        return finite_float(text)
    return number


def _has_surrogate(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _depth(text: str) -> int:
    """How deep the (valid) JSON ``text`` nests objects and arrays, at C speed: its strings
    dropped, its brackets as +1/-1 bytes, the largest running sum."""
    brackets = _STRING.sub("", text).encode().translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(brackets).cast("b")), default=0)


def check_header(source: str, header: object, data_size: int | None = None) -> dict[str, dict]:
    """Tensor name -> {dtype, shape, data_offsets} of a parsed header, refused (``BadInput``)
    where safetensors would refuse the file. ``data_size``: the bytes after the header, when
    known (a Hub header read by range requests is checked again whole once downloaded)."""
    if not isinstance(header, dict):
        malformed(source, "header", header, "a JSON object mapping tensor names to their dtype, shape and offsets")
    if "__metadata__" in getattr(header, "repeated", ()):
        malformed(source, "__metadata__", header["__metadata__"], "one __metadata__ object, not two")
    tensors: dict[str, dict] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            if entry is not None and not (isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())):
                malformed(source, "__metadata__", entry, "a JSON object of strings")
            continue
        tensors[name] = _tensor(source, name, entry)
    _check_layout(source, tensors, data_size)
    return tensors


def _tensor(source: str, name: str, entry: object) -> dict:
    if isinstance(entry, list) and len(entry) == len(FIELDS):
        entry = dict(zip(FIELDS, entry, strict=True))
    label = f"tensor {shown(name)}"
    if not isinstance(entry, dict):
        malformed(source, label, entry, "a JSON object with dtype, shape and data_offsets")
    twice = [field for field in FIELDS if field in getattr(entry, "repeated", ())]
    if twice:
        malformed(source, f"{label} {twice[0]}", entry[twice[0]], f"one {twice[0]} field, not two")
    dtype, shape, offsets = (entry.get(field) for field in FIELDS)
    if isinstance(dtype, dict) and len(dtype) == 1 and None in dtype.values():
        dtype = next(iter(dtype))  # serde also reads an enum's unit variant as {"NAME": null}
    if not (isinstance(dtype, str) and dtype in DTYPE_BITS):
        malformed(source, f"{label} dtype", entry.get("dtype"),
                  f"a dtype safetensors knows: {', '.join(DTYPE_BITS)}")
    if not _sizes(shape):
        malformed(source, f"{label} shape", shape, f"a list of integers from 0 to {USIZE_END - 1}")
    if not (_sizes(offsets) and len(offsets) == 2):
        malformed(source, f"{label} data_offsets", offsets, f"[begin, end], integers from 0 to {USIZE_END - 1}")
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


def _check_layout(source: str, tensors: dict[str, dict], data_size: int | None) -> None:
    """The tensors' data must tile the bytes after the header: in offset order, each begins
    where the one before it ends, holds exactly shape x dtype, and the last ends at the file's end."""
    end = 0
    for name, entry in sorted(tensors.items(), key=lambda item: item[1]["data_offsets"]):
        begin, stop = entry["data_offsets"]
        if begin > stop:
            _misplaced(source, name, entry, f"it begins after it ends; the tensors' data must follow one "
                                            f"another, so it should begin at byte {end}")
        if begin != end:
            _misplaced(source, name, entry, f"it should begin at byte {end}, where the data before it ends: "
                                            f"tensors' data must follow one another without gaps or overlaps")
        needed = _bytes(source, name, entry)
        if stop - begin != needed:
            _misplaced(source, name, entry, f"it spans {stop - begin} bytes, but shape {shown_json(entry['shape'])} "
                                            f"of {entry['dtype']} takes {needed} bytes")
        end = stop
    if data_size is None or end == data_size:
        return
    if end > data_size:
        name, entry = next((n, e) for n, e in tensors.items() if e["data_offsets"][1] > data_size)
        _misplaced(source, name, entry, f"it ends past the end of the file, which holds {data_size} bytes "
                                        f"of tensor data after its header")
    raise BadInput(
        f"{source}: safetensors data does not match its header: {data_size - end} bytes after the last "
        f"tensor's data (ending at byte {end} of {data_size}) belong to no tensor.",
        "safetensors refuses a file its header does not describe to the end.",
        REDOWNLOAD,
    )


def _bytes(source: str, name: str, entry: dict) -> int:
    count = 1
    for dim in entry["shape"]:  # checked as Rust checks it: a 0 before an overflow saves it
        count *= dim
        if count >= USIZE_END:
            _misplaced(source, name, entry, "its shape's element count overflows a 64-bit size")
    bits = count * DTYPE_BITS[entry["dtype"]]
    if bits >= USIZE_END:
        _misplaced(source, name, entry, "its size in bits overflows a 64-bit size")
    if bits % 8:
        _misplaced(source, name, entry, f"{count} elements of {entry['dtype']} are not a whole number of bytes")
    return bits // 8


def _sizes(value: object) -> bool:
    # bool is an int subclass in Python; `true` is not a size.
    return isinstance(value, list) and all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < USIZE_END for i in value)


def _misplaced(source: str, name: str, entry: dict, why: str) -> NoReturn:
    raise BadInput(
        f"{source}: tensor {shown(name)} cannot be loaded: its data_offsets are "
        f"{shown_json(entry['data_offsets'])}.",
        f"{why[0].upper()}{why[1:]}; safetensors refuses such a file (SGLang would fail only after "
        "loading the target).",
        REDOWNLOAD,
    )


def _refuse(source: str, why: str) -> NoReturn:
    raise BadInput(f"{source}: safetensors header is not valid JSON.",
                   f"Field `header`: {why}.", REDOWNLOAD)


def malformed(source: str, field: str, found: object, expected: str) -> NoReturn:
    """``BadInput``: ``field`` of the header (or index) ``source`` holds ``found``, not ``expected``.
    ``field`` is quoted as it is, so a tensor name in it is passed through ``masking.shown`` first."""
    raise BadInput(
        f"{source}: malformed safetensors header, field `{field}`.",
        f"Found {shown(found) if isinstance(found, str) else shown_json(found)}; expected {expected}.",
        REDOWNLOAD,
    )
