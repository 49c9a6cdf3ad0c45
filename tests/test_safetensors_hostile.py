"""Hostile and corrupt inputs: each is refused with a clear message, exit 1, nothing written."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import write_model
from plamo_fast import _native
from plamo_fast.cli import main
from plamo_fast.errors import InvalidFileError


def raw_file(path: Path, header: dict | bytes, data: bytes = b"", length: int | None = None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(text) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + text + data)


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


CASES = {
    "too_short": (lambda p: p.write_bytes(b"\x01\x02"), "shorter than the 8-byte header length"),
    "header_beyond_file": (
        lambda p: raw_file(p, {"x": entry()}, b"\0" * 8, length=10_000),
        "goes beyond the end of the file",
    ),
    "header_over_limit": (
        lambda p: raw_file(p, b"{}", length=200_000_000),
        "exceeds the 100000000-byte limit",
    ),
    "not_json": (lambda p: raw_file(p, b"{not json", b""), "not a valid JSON object"),
    "duplicate_key": (
        lambda p: raw_file(
            p,
            b'{"x":'
            + json.dumps(entry()).encode()
            + b',"x":'
            + json.dumps(entry()).encode()
            + b"}",
            b"\0" * 8,
        ),
        "duplicate key",
    ),
    "offsets_out_of_bounds": (
        lambda p: raw_file(p, {"x": entry(offsets=(0, 800))}, b"\0" * 8),
        "out of bounds",
    ),
    "offsets_reversed": (
        lambda p: raw_file(p, {"x": entry(offsets=(8, 0))}, b"\0" * 8),
        "out of bounds",
    ),
    "overlap": (
        lambda p: raw_file(
            p, {"x": entry(offsets=(0, 8)), "y": entry(offsets=(4, 12))}, b"\0" * 12
        ),
        "overlaps",
    ),
    "gap": (lambda p: raw_file(p, {"x": entry(offsets=(4, 12))}, b"\0" * 12), "unused bytes"),
    "shape_vs_bytes": (
        lambda p: raw_file(p, {"x": entry(shape=(3,), offsets=(0, 8))}, b"\0" * 8),
        "need 12 bytes but data_offsets give 8",
    ),
    "shape_overflow": (
        lambda p: raw_file(p, {"x": entry(shape=(2**40, 2**40), offsets=(0, 8))}, b"\0" * 8),
        "overflows",
    ),
    "unknown_dtype": (
        lambda p: raw_file(p, {"x": entry(dtype="F128")}, b"\0" * 8),
        "unknown dtype",
    ),
    "trailing_data": (lambda p: raw_file(p, {"x": entry()}, b"\0" * 20), "cover 8"),
    "unknown_field": (
        lambda p: raw_file(p, {"x": {**entry(), "evil": 1}}, b"\0" * 8),
        "malformed header entry",
    ),
}


def good_model(folder: Path) -> Path:
    return write_model(folder, {"x": ("F32", np.ones(2, np.float32))})


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_safetensors_refused(tmp_path: Path, case: str, capsys):
    make, message = CASES[case]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    make(bad / "model.safetensors")
    with pytest.raises(InvalidFileError, match=message) as info:
        _native.SafetensorsModel(bad)
    assert "model.safetensors" in str(info.value)

    good = good_model(tmp_path / "good")
    out = tmp_path / "out"
    code = main(["merge", str(good), str(bad), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "good"]  # no partial folder


def sharded(tmp_path: Path, weight_map: dict) -> Path:
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


@pytest.mark.parametrize(
    "shard", ["../outside.safetensors", "/etc/passwd", "a/../../x", "./../x.safetensors"]
)
def test_index_path_leaving_the_folder_is_refused(tmp_path: Path, shard: str):
    (tmp_path / "outside.safetensors").write_bytes(b"")
    folder = sharded(tmp_path, {"x": shard})
    with pytest.raises(InvalidFileError, match="leaves the model folder"):
        _native.SafetensorsModel(folder)


def test_index_and_shard_must_agree(tmp_path: Path):
    from plamo_fast.reference.safetensors_io import write_safetensors

    folder = sharded(tmp_path, {"x": "s1.safetensors", "missing": "s1.safetensors"})
    write_safetensors(folder / "s1.safetensors", {"x": ("F32", np.ones(2, np.float32))})
    with pytest.raises(InvalidFileError, match="'missing'|\"missing\""):
        _native.SafetensorsModel(folder)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {}}))
    with pytest.raises(InvalidFileError, match="lists no tensors"):
        _native.SafetensorsModel(folder)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"x": "s1.safetensors"}})
    )
    write_safetensors(
        folder / "s1.safetensors",
        {"x": ("F32", np.ones(2, np.float32)), "y": ("F32", np.ones(2, np.float32))},
    )
    with pytest.raises(InvalidFileError, match="not listed"):
        _native.SafetensorsModel(folder)


def test_pickled_weights_are_never_loaded(tmp_path: Path, capsys):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    # A pickle that would run code if it were ever unpickled.
    (folder / "pytorch_model.bin").write_bytes(
        b"cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR."
    )
    with pytest.raises(InvalidFileError, match="never loaded"):
        _native.SafetensorsModel(folder)
    good = good_model(tmp_path / "good")
    assert main(["merge", str(good), str(folder), "-o", str(tmp_path / "out"), "-q"]) == 1
    assert "pickled" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out").exists()


def test_missing_folder_and_missing_weights(tmp_path: Path, capsys):
    good = good_model(tmp_path / "good")
    assert main(["merge", str(good), str(tmp_path / "nope"), "-q"]) == 1
    assert "not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    assert main(["merge", str(good), str(empty), "-q"]) == 1
    assert "no model.safetensors" in capsys.readouterr().err
