"""Safetensors files whose zero regions are holes: a 55 GB checkpoint that costs megabytes.

A safetensors file is an 8-byte little-endian header length, a JSON header naming every tensor's
dtype, shape and byte range, then the data. Writing the header, then only the non-zero rows of the
few tensors that have any, then truncating the file to its full length leaves everything else
unwritten: a filesystem with sparse files stores no blocks there, and every read of it returns
zeros. Readers (safetensors, SGLang's loader) see an ordinary checkpoint.

A tensor's non-zero content is given as its leading rows (a tensor of shape ``[r, *rest]`` for a
tensor of shape ``[n, *rest]``, r <= n); of those, only rows holding a non-zero value are written,
each stretch of consecutive such rows in one piece.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct

import torch

DTYPE_NAMES = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
    torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32", torch.float32: "F32",
    torch.int64: "I64", torch.float64: "F64",
}
INDEX_NAME = "model.safetensors.index.json"


def _header(specs: dict[str, tuple[torch.dtype, tuple[int, ...]]]) -> tuple[bytes, dict[str, int]]:
    """The length prefix plus JSON header for these tensors, and each tensor's data offset.

    Larger items come first, then names in order (for the dtypes the kits write, the order of
    safetensors' own writer, which sorts by dtype, then name): every tensor then starts at a
    multiple of its item size. The JSON is padded with spaces to a multiple of 8 bytes, as
    safetensors pads it.
    """
    order = sorted(specs, key=lambda name: (-specs[name][0].itemsize, name))
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offsets, start = {}, 0
    for name in order:
        dtype, shape = specs[name]
        end = start + dtype.itemsize * _numel(shape)
        header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [start, end]}
        offsets[name] = start
        start = end
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, offsets


def write_sparse(path: str, specs: dict[str, tuple[torch.dtype, tuple[int, ...]]],
                 rows: dict[str, torch.Tensor]) -> dict[str, object]:
    """Write a safetensors file holding ``specs``; only the non-zero rows of ``rows`` are stored.

    Returns what a summary says of the file: ``apparent_bytes`` (its length), ``allocated_bytes``
    (the blocks the filesystem holds for it), ``header_sha256`` (length prefix and JSON header)
    and ``written_sha256`` (each stored row's file offset and bytes, in order). Header, stored rows
    and length fix every byte: the rest reads as zeros.
    """
    header, offsets = _header(specs)
    data_bytes = sum(dtype.itemsize * _numel(shape) for dtype, shape in specs.values())
    written = hashlib.sha256()
    with open(path, "wb") as handle:
        handle.write(header)
        for name in sorted(rows):
            dtype, shape = specs[name]
            block = rows[name]
            if block.dtype != dtype or tuple(block.shape[1:]) != tuple(shape[1:]) or block.shape[0] > shape[0]:
                raise ValueError(f"{name}: {block.dtype} {tuple(block.shape)} is not the leading rows "
                                 f"of {dtype} {shape}")
            row_bytes = dtype.itemsize * _numel(shape[1:])
            flat = block.reshape(block.shape[0], -1)
            for first, last in _runs(flat.ne(0).any(dim=1)):
                offset = len(header) + offsets[name] + first * row_bytes
                data = _raw(flat[first:last])
                handle.seek(offset)
                handle.write(data)
                written.update(struct.pack("<Q", offset) + data)
        handle.truncate(len(header) + data_bytes)
    stat = os.stat(path)
    return {
        "apparent_bytes": stat.st_size,
        "allocated_bytes": stat.st_blocks * 512,
        "header_sha256": hashlib.sha256(header).hexdigest(),
        "written_sha256": written.hexdigest(),
    }


def write_index(folder: str, filename_to_names: dict[str, list[str]], total_size: int) -> None:
    """The ``model.safetensors.index.json`` transformers writes beside sharded weights."""
    weight_map = {name: filename for filename, names in filename_to_names.items() for name in names}
    with open(os.path.join(folder, INDEX_NAME), "w", encoding="utf-8") as handle:
        json.dump({"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))},
                  handle, indent=2)
        handle.write("\n")


def _runs(nonzero: torch.Tensor) -> list[tuple[int, int]]:
    """``[first, last)`` of each stretch of consecutive True rows."""
    runs: list[tuple[int, int]] = []
    for index in torch.nonzero(nonzero).flatten().tolist():
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs


def _raw(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().view(torch.uint8).numpy().tobytes()


def _numel(shape) -> int:
    count = 1
    for size in shape:
        count *= size
    return count
