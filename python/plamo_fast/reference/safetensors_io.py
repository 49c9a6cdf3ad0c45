"""A plain-Python safetensors reader and writer (numpy arrays; bfloat16 kept as raw uint16 bits).

Independent of the Rust reader on purpose: tests read merged shards back through this module.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

# safetensors dtype -> numpy storage dtype (bfloat16 is stored as its uint16 bit pattern).
STORAGE_DTYPES = {
    "BF16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def write_safetensors(
    path: str | Path, tensors: dict[str, tuple[str, np.ndarray]], metadata: dict | None = None
) -> None:
    """Writes ``{name: (dtype, array)}``; arrays hold storage values (uint16 bits for BF16)."""
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    blobs = []
    for name, (dtype, array) in tensors.items():
        data = np.ascontiguousarray(array, dtype=STORAGE_DTYPES[dtype]).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path: str | Path) -> dict[str, tuple[str, np.ndarray]]:
    """Reads every tensor as ``{name: (dtype, storage array)}``."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        storage = STORAGE_DTYPES[entry["dtype"]]
        array = np.frombuffer(
            raw, dtype=storage, count=(end - begin) // storage.itemsize, offset=8 + n + begin
        )
        out[name] = (entry["dtype"], array.reshape(entry["shape"]))
    return out


def read_model(folder: str | Path) -> dict[str, tuple[str, np.ndarray]]:
    """Reads every tensor of a model folder (single file or sharded with an index)."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors: dict = {}
    for name in files:
        tensors.update(read_safetensors(folder / name))
    return tensors
