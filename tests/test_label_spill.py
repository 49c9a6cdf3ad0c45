"""pack's compact label spill: while every label is its token or -100, one bit per token is
spilled instead of an int32 label (``_native.LabelMaskSpill``), held to the Python reference;
the gather reads it back to the same rows; a document with another label turns the spill back
into int32 labels and the packed rows stay exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from chat_fixtures import packed_documents

from plamo_fast import _native
from plamo_fast.data.pack import pack
from plamo_fast.reference.packing import label_mask_bits


def sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50_000, n, dtype=np.int32)
    labels = np.where(rng.random(n) < 0.4, -100, ids).astype(np.int32)
    return ids, labels


@pytest.mark.parametrize("seed", range(6))
def test_appends_of_any_size_write_the_reference_bits(tmp_path: Path, seed: int):
    rng = np.random.default_rng(seed)
    ids, labels = sample(int(rng.integers(0, 3000)), seed)
    cuts = np.sort(rng.integers(0, len(ids) + 1, int(rng.integers(0, 12))))
    spill = _native.LabelMaskSpill(tmp_path / "mask")
    for a, b in zip([0, *cuts], [*cuts, len(ids)], strict=True):
        assert spill.append(ids[a:b], labels[a:b])
    assert spill.bits == len(ids)
    assert spill.close() == len(ids)
    assert (tmp_path / "mask").read_bytes() == label_mask_bits(ids.tolist(), labels.tolist())


def test_a_batch_with_another_label_is_refused_and_nothing_written(tmp_path: Path):
    ids, labels = sample(100, 1)
    other = labels.copy()
    other[57] = ids[57] + 1
    assert label_mask_bits(ids.tolist(), other.tolist()) is None
    spill = _native.LabelMaskSpill(tmp_path / "mask")
    assert spill.append(ids[:3], labels[:3])
    assert not spill.append(ids[3:], other[3:])
    assert spill.bits == 3
    assert spill.append(ids[3:], labels[3:])
    spill.close()
    assert (tmp_path / "mask").read_bytes() == label_mask_bits(ids.tolist(), labels.tolist())
    with pytest.raises(ValueError, match="3 token ids but 2 labels"):
        _native.LabelMaskSpill(tmp_path / "m2").append(ids[:3], labels[:2])


def test_gathering_with_the_mask_equals_gathering_from_memory(tmp_path: Path):
    ids, labels = sample(5000, 2)
    (tmp_path / "tokens").write_bytes(ids.astype("<i4").tobytes())
    spill = _native.LabelMaskSpill(tmp_path / "mask")
    spill.append(ids, labels)
    spill.close()
    rng = np.random.default_rng(3)
    offsets = np.concatenate([[0], np.sort(rng.choice(np.arange(1, 5000), 300, replace=False))])
    offsets = np.append(offsets, 5000).astype(np.int64)
    order = rng.permutation(len(offsets) - 1).astype(np.int64)
    want = [np.zeros(5000, np.int32) for _ in range(3)]
    got = [np.zeros(5000, np.int32) for _ in range(3)]
    _native.gather_documents(ids, labels, offsets, order, *want)
    _native.gather_spilled(
        tmp_path / "tokens", tmp_path / "mask", offsets, order, *got, labels_masked=True
    )
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="differ in length"):
        _native.gather_spilled(tmp_path / "tokens", tmp_path / "mask", offsets, order, *got)
    _native.labels_from_mask(tmp_path / "tokens", tmp_path / "mask", 4321, tmp_path / "labels")
    values = np.frombuffer((tmp_path / "labels").read_bytes(), dtype="<i4")
    np.testing.assert_array_equal(values, labels[:4321])


@pytest.mark.parametrize("where", [0, 1, 150, 299])
@pytest.mark.parametrize("form", ["jsonl", "parquet"])
def test_a_document_with_another_label_anywhere_packs_exactly(tmp_path: Path, where, form):
    """Documents before the odd one were spilled as bits; from it on the labels are values:
    every document comes out with its own labels (first one masked) either way."""
    import pyarrow as pa

    rng = np.random.default_rng(where)
    records = []
    for _ in range(300):
        ids, labels = sample(int(rng.integers(3, 40)), int(rng.integers(1 << 30)))
        labels[1] = ids[1]  # a target after the first token (else the document is dropped)
        records.append({"input_ids": ids.tolist(), "labels": labels.tolist()})
    records[where]["labels"][-1] = (records[where]["input_ids"][-1] + 1) % 50_000
    if form == "jsonl":
        data = tmp_path / "d.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        data = tmp_path / "d.parquet"
        pq.write_table(pa.Table.from_pylist(records), data, row_group_size=64)
    pack([str(data)], None, tmp_path / "out", max_length=64)
    want = {i: (r["input_ids"], [-100, *r["labels"][1:]]) for i, r in enumerate(records)}
    assert packed_documents(tmp_path / "out") == want
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".plamo-fast-output.json",
        "data.parquet",
        "pack_report.json",
    ]


def test_the_spill_of_masked_labels_is_a_32nd_of_the_values(tmp_path: Path, monkeypatch):
    """The label spill pack writes for response-masked labels: bits, not int32 values."""
    import plamo_fast.data.pack as pack_module

    sizes = {}
    real_files = pack_module._DocStore.files

    def files(self):
        tokens, labels, offsets = real_files(self)
        sizes.update(tokens=tokens.stat().st_size, labels=labels.stat().st_size)
        return tokens, labels, offsets

    monkeypatch.setattr(pack_module._DocStore, "files", files)
    records = []
    for i in range(50):
        ids, labels = sample(64, i)
        records.append({"input_ids": ids.tolist(), "labels": labels.tolist()})
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    pack([str(data)], None, tmp_path / "out", max_length=128)
    assert sizes == {"tokens": 50 * 64 * 4, "labels": 50 * 64 // 8}
