"""A drafter's safetensors file is refused exactly where the ``safetensors`` library refuses to open it.

SGLang opens the drafter with that library only after it has loaded the target (minutes, tens of
GB): every file the library would refuse must be exit 8 before that, naming the file (and the
tensor, where one is at fault), and every file it opens must pass. Each case is written byte for
byte and put to both: our check, and the installed library's ``safe_open``.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import SafetensorError, safe_open

from eagle3_patch.cli import main
from eagle3_patch.errors import EXIT_BAD_INPUT, BadInput
from eagle3_patch.serve.checkpoint import read_header
from eagle3_patch.serve.tensorheader import DTYPE_BITS

from support.releases import install_release
from support.serve_fixtures import write_drafter, write_header, write_sharded, write_target



@pytest.fixture(scope="module")
def sglang(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_release("0.5.12", tmp_path_factory.mktemp("site"))


def serve_dry_run(sglang: Path, drafter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  capsys: pytest.CaptureFixture) -> tuple[int, str]:
    monkeypatch.setenv("PYTHONPATH", str(sglang.parent))
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--python", sys.executable, "--sglang-dir", str(sglang), "--model",
              str(write_target(tmp_path / "target")), "--drafter", str(drafter), "--dry-run"])
    return exited.value.code, capsys.readouterr().err


def library_opens(path: Path) -> bool:
    try:
        with safe_open(str(path), framework="np") as opened:
            opened.keys()
    except SafetensorError:
        return False
    return True


def we_accept(path: Path) -> bool:
    try:
        read_header(path)
    except BadInput as exc:
        assert str(path) in exc.what, exc.message
        return False
    return True


def test_data_offsets_past_the_end_of_the_file_are_exit_8_naming_file_and_tensor(
        sglang, tmp_path, monkeypatch, capsys):
    drafter = write_drafter(tmp_path / "compressed")
    weights = drafter / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])  # a download cut short
    assert not library_opens(weights)

    code, err = serve_dry_run(sglang, drafter, tmp_path, monkeypatch, capsys)

    assert code == EXIT_BAD_INPUT, err
    # t2d (BOOL x 248320) holds the last bytes: its end lies past the end of the file.
    assert f"{weights}: tensor t2d" in err and "past the end of the file" in err, err
    assert "internal error" not in err


def test_a_tensor_whose_byte_size_is_not_shape_times_dtype_is_exit_8_naming_it(
        sglang, tmp_path, monkeypatch, capsys):
    drafter = write_drafter(tmp_path / "compressed")
    weights = drafter / "model.safetensors"
    header = {"fc.weight": {"dtype": "BF16", "shape": [3, 5], "data_offsets": [0, 32]}}
    write_header(weights, json.dumps(header).encode(), b"\0" * 32)
    assert not library_opens(weights)

    code, err = serve_dry_run(sglang, drafter, tmp_path, monkeypatch, capsys)

    assert code == EXIT_BAD_INPUT, err
    assert f"{weights}: tensor fc.weight" in err and "32 bytes" in err and "30 bytes" in err, err


def entry(dtype: object = "U8", shape: object = (2,), offsets: object = (0, 2)) -> dict:
    return {"dtype": dtype, "shape": list(shape) if isinstance(shape, tuple) else shape,
            "data_offsets": list(offsets) if isinstance(offsets, tuple) else offsets}


def raw(header: object) -> bytes:
    return json.dumps(header).encode()


def extra(text: str) -> bytes:
    """A tensor entry carrying an extra field the library ignores, spelled ``text``."""
    return ('{"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2], "x": ' + text + "}}").encode()


U64 = 2**64
# name -> (header bytes, bytes of tensor data after it)
CASES = {
    "two-tensors": (raw({"a": entry(), "b": entry("F32", (1,), (2, 6))}), 6),
    "tensors-out-of-order": (raw({"b": entry("F32", (1,), (2, 6)), "a": entry()}), 6),
    "data-past-the-end": (raw({"a": entry()}), 1),
    "bytes-after-the-last-tensor": (raw({"a": entry()}), 3),
    "size-not-shape-times-dtype": (raw({"a": entry("BF16", (3,), (0, 4))}), 4),
    "gap-between-tensors": (raw({"a": entry(), "b": entry("U8", (2,), (3, 5))}), 5),
    "overlapping-tensors": (raw({"a": entry("U8", (4,), (0, 4)), "b": entry("U8", (2,), (2, 4))}), 4),
    "same-offsets-twice": (raw({"a": entry(), "b": entry()}), 2),
    "not-starting-at-zero": (raw({"a": entry("U8", (2,), (2, 4))}), 4),
    "begin-after-end": (raw({"a": entry("U8", (0,), (4, 0))}), 4),
    "empty-tensors-share-an-offset": (raw({"a": entry("U8", (0,), (0, 0)), "b": entry("U8", (0,), (0, 0)),
                                           "c": entry()}), 2),
    "scalar": (raw({"a": entry("U8", (), (0, 1))}), 1),
    "no-tensors": (raw({}), 0),
    "unknown-dtype": (raw({"a": entry("X16")}), 2),
    "lower-case-dtype": (raw({"a": entry("u8")}), 2),
    "dtype-as-a-one-key-map": (b'{"a": {"dtype": {"U8": null}, "shape": [2], "data_offsets": [0, 2]}}', 2),
    "dtype-map-with-a-value": (b'{"a": {"dtype": {"U8": 1}, "shape": [2], "data_offsets": [0, 2]}}', 2),
    "dtype-map-of-two": (b'{"a": {"dtype": {"U8": null, "I8": null}, "shape": [2], "data_offsets": [0, 2]}}', 2),
    "half-a-byte": (raw({"a": entry("F4", (3,), (0, 2))}), 2),
    "sub-byte-dtype-whole-bytes": (raw({"a": entry("F6_E2M3", (4,), (0, 3))}), 3),
    "shape-product-overflows": (raw({"a": entry("U8", (2**32, 2**32, 0), (0, 0))}), 0),
    "zero-before-the-overflow": (raw({"a": entry("U8", (0, 2**32, 2**32), (0, 0))}), 0),
    "bits-overflow": (raw({"a": entry("F64", (2**61,), (0, 0))}), 0),
    "largest-dimension": (raw({"a": entry("U8", (U64 - 1, 0), (0, 0))}), 0),
    "dimension-past-usize": (raw({"a": entry("U8", (U64,), (0, 0))}), 0),
    "offset-past-usize": (raw({"a": entry("U8", (0,), (U64, U64))}), 0),
    "negative-dimension": (raw({"a": entry("U8", (-1,), (0, 0))}), 0),
    "minus-zero-dimension": (b'{"a": {"dtype": "U8", "shape": [-0], "data_offsets": [0, 0]}}', 0),
    "float-dimension": (b'{"a": {"dtype": "U8", "shape": [2.0], "data_offsets": [0, 2]}}', 2),
    "exponent-offset": (b'{"a": {"dtype": "U8", "shape": [0], "data_offsets": [0E0, 0]}}', 0),
    "boolean-dimension": (b'{"a": {"dtype": "U8", "shape": [true], "data_offsets": [0, 1]}}', 1),
    "three-offsets": (raw({"a": entry("U8", (2,), (0, 2, 2))}), 2),
    "offsets-as-an-object": (raw({"a": entry("U8", (2,), {"0": 0, "1": 2})}), 2),
    "shape-missing": (raw({"a": {"dtype": "U8", "data_offsets": [0, 2]}}), 2),
    "tensor-as-a-sequence": (raw({"a": ["U8", [2], [0, 2]]}), 2),
    "short-sequence": (raw({"a": ["U8", [2]]}), 2),
    "tensor-null": (raw({"a": None}), 0),
    "extra-field": (extra("1"), 2),
    "metadata-null": (raw({"__metadata__": None, "a": entry()}), 2),
    "metadata-of-strings": (raw({"__metadata__": {"format": "pt"}, "a": entry()}), 2),
    "metadata-with-a-number": (raw({"__metadata__": {"k": 1}, "a": entry()}), 2),
    "metadata-list": (raw({"__metadata__": [], "a": entry()}), 2),
    "header-a-list": (b"[1, 2]", 0),
    "header-empty": (b"", 0),
    "duplicate-tensor-last-wins": (b'{"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}, '
                                   b'"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}', 4),
    "duplicate-tensor-last-too-short": (b'{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, '
                                        b'"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}', 4),
    "duplicate-metadata": (b'{"__metadata__": {}, "__metadata__": {}}', 0),
    "duplicate-metadata-key": (b'{"__metadata__": {"k": "a", "k": "b"}}', 0),
    "duplicate-dtype-field": (b'{"a": {"dtype": "U8", "dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}', 2),
    "duplicate-extra-field": (extra('1, "x": 2'), 2),
    "nan": (extra("NaN"), 2),
    "number-out-of-range": (extra("1e400"), 2),
    "integer-of-400-digits": (extra("1" * 400), 2),
    "integer-of-300-digits": (extra("1" * 300), 2),
    "integer-of-5000-digits": (extra("1" * 5000), 2),
    "lone-surrogate": (extra('"\\ud800"'), 2),
    "lone-low-surrogate": (extra('"\\udc00"'), 2),
    "surrogate-pair": (extra('"\\ud83d\\ude00"'), 2),
    "control-character": (extra('"a\tb"'), 2),
    "nested-127-deep": (extra("[" * 125 + "]" * 125), 2),
    "nested-128-deep": (extra("[" * 126 + "]" * 126), 2),
    "nested-200000-deep": (extra("[" * 200_000 + "]" * 200_000), 2),
    "utf-16": ('{"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}'.encode("utf-16"), 2),
    "byte-order-mark": (b"\xef\xbb\xbf" + raw({"a": entry()}), 2),
    "invalid-utf-8": (b'{"a\xff": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}', 2),
    "encoded-surrogate": (b'{"a\xed\xa0\x80": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}', 2),
    "padded-with-spaces": (raw({"a": entry()}) + b"     ", 2),
    "padded-with-nul": (raw({"a": entry()}) + b"\0\0", 2),
    "form-feed-before": (b"\x0c" + raw({"a": entry()}), 2),
}


@pytest.mark.parametrize(("header", "data"), CASES.values(), ids=CASES.keys())
def test_our_check_refuses_what_the_library_refuses_and_passes_what_it_opens(header, data, tmp_path):
    weights = tmp_path / "model.safetensors"
    write_header(weights, header, b"\0" * data)

    assert we_accept(weights) == library_opens(weights)


def test_the_dtypes_we_know_are_the_librarys_with_their_sizes(tmp_path):
    weights = tmp_path / "model.safetensors"
    write_header(weights, raw({"a": entry("?")}), b"\0" * 2)
    with pytest.raises(SafetensorError) as refused:
        safe_open(str(weights), framework="np")
    # The library lists every dtype it knows when it meets one it does not.
    assert set(re.findall(r"`(\w+)`", str(refused.value).split("expected one of")[1])) == set(DTYPE_BITS)
    for dtype, bits in DTYPE_BITS.items():
        size = 8 // bits if bits < 8 else 1  # elements filling whole bytes
        for nbytes in (size * bits // 8, size * bits // 8 + 1):
            write_header(weights, raw({"a": entry(dtype, (size,), (0, nbytes))}), b"\0" * nbytes)
            assert we_accept(weights) == library_opens(weights) == (nbytes * 8 == size * bits), (dtype, nbytes)


def random_header(rng: random.Random) -> tuple[bytes, int]:
    """A header a writer with bugs might produce: offsets, shapes, dtypes and lengths slightly off."""
    dtypes = [*DTYPE_BITS, "bf16", "F8", "Q4"]
    tensors, end = {}, 0
    for i in range(rng.randint(0, 4)):
        dtype = rng.choice(dtypes)
        shape = [rng.choice([0, 1, 2, 3, 4, 7, 8, 2**31, 2**63]) for _ in range(rng.randint(0, 3))]
        count = int(np.prod(shape, dtype=object)) if shape else 1
        size = count * DTYPE_BITS.get(dtype, 8) // 8
        begin = end + rng.choice([0, 0, 0, 0, -1, 1, -size])
        stop = begin + size + rng.choice([0, 0, 0, 0, 1, -1])
        tensors[rng.choice(["w", "b", "d2t", f"t{i}"])] = entry(dtype, shape, (begin, stop))
        end = max(end, stop)
    if rng.random() < 0.2:
        tensors["__metadata__"] = rng.choice([None, {"format": "pt"}, {"n": 1}, []])
    data = min(max(end, 0) + rng.choice([0, 0, 0, -1, 1]), 1 << 16)
    return json.dumps(tensors).encode(), max(data, 0)


def test_random_headers_get_the_librarys_verdict(tmp_path):
    weights, rng = tmp_path / "model.safetensors", random.Random(23)
    verdicts = {True: 0, False: 0}
    for _ in range(400):
        header, data = random_header(rng)
        write_header(weights, header, b"\0" * data)
        opens = library_opens(weights)
        assert we_accept(weights) == opens, header
        verdicts[opens] += 1
    assert min(verdicts.values()) > 50, verdicts  # both verdicts well exercised


def test_a_truncated_shard_of_a_sharded_drafter_is_exit_8_naming_the_shard_and_tensor(
        sglang, tmp_path, monkeypatch, capsys):
    drafter = write_sharded(tmp_path / "compressed")
    shard = drafter / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-10])
    assert not library_opens(shard)

    code, err = serve_dry_run(sglang, drafter, tmp_path, monkeypatch, capsys)

    assert code == EXIT_BAD_INPUT, err
    assert f"{shard}: tensor t2d" in err and "past the end of the file" in err, err


def test_a_header_past_16_mib_is_refused_unparsed_as_no_drafters(tmp_path):
    # The format allows 100 MB, which Python takes minutes to parse when it is hostile JSON; a
    # drafter's header is a few KB.
    weights = tmp_path / "model.safetensors"
    header = json.dumps({"__metadata__": {"pad": "x" * (16 << 20)}}).encode()
    write_header(weights, header, b"")
    assert library_opens(weights)
    with pytest.raises(BadInput, match="too large for a drafter's") as refused:
        read_header(weights)
    assert str(weights) in refused.value.what and f"found {len(header)} bytes" in refused.value.why
