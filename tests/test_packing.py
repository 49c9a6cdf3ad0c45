"""Global best-fit-decreasing packing against the quadratic reference."""

from __future__ import annotations

import numpy as np
import pytest

from plamo_fast.data.packing import pack_lengths
from plamo_fast.reference.packing import best_fit_decreasing


def row_totals(rows, lengths) -> list[int]:
    return sorted(int(sum(lengths[i] for i in row)) for row in rows)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("capacity", [64, 512])
def test_matches_reference_bfd(seed: int, capacity: int):
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(capacity / 10), 1.0, 3000).astype(int), 1, capacity)
    rows = pack_lengths(lengths, capacity, seed=seed)
    reference = best_fit_decreasing(lengths.tolist(), capacity)
    assert len(rows) == len(reference)
    assert row_totals(rows, lengths) == row_totals(reference, lengths)
    flat = np.concatenate(rows)
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # each item exactly once
    assert max(row_totals(rows, lengths)) <= capacity


def test_close_to_the_lower_bound_on_realistic_lengths():
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(np.log(350), 1.0, 100_000).astype(int), 1, 4096)
    rows = pack_lengths(lengths, 4096, seed=0)
    lower_bound = -(-int(lengths.sum()) // 4096)
    assert len(rows) <= lower_bound * 1.0005


def test_seed_determinism_and_errors():
    lengths = [5] * 40 + [3] * 40
    first = pack_lengths(lengths, 16, seed=4)
    again = pack_lengths(lengths, 16, seed=4)
    assert [r.tolist() for r in first] == [r.tolist() for r in again]
    with pytest.raises(ValueError, match="item 1 has length 17"):
        pack_lengths([3, 17], 16)
    with pytest.raises(ValueError, match="outside"):
        pack_lengths([0], 16)
    assert pack_lengths([], 16) == []


def test_pack_documents_columns_keep_every_document_intact():
    from plamo_fast.data.packing import IGNORE_INDEX, pack_documents

    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 40, size=200)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = rng.integers(0, 30000, size=int(offsets[-1])).astype(np.int32)
    labels = np.where(rng.random(tokens.size) < 0.5, IGNORE_INDEX, tokens).astype(np.int32)
    sources = (np.arange(200) % 3).astype(np.int32)
    table = pack_documents(tokens, labels, offsets, 64, source_ids=sources, seed=1)
    seen = set()
    for row in table.to_pylist():
        assert len(row["input_ids"]) <= 64
        assert sum(row["seq_lengths"]) == len(row["input_ids"])
        assert len(row["labels"]) == len(row["position_ids"]) == len(row["input_ids"])
        cursor = 0
        for doc, n, src in zip(row["doc_ids"], row["seq_lengths"], row["source_ids"], strict=False):
            span = slice(cursor, cursor + n)
            assert row["input_ids"][span] == tokens[offsets[doc] : offsets[doc + 1]].tolist()
            expected = labels[offsets[doc] : offsets[doc + 1]].tolist()
            expected[0] = IGNORE_INDEX
            assert row["labels"][span] == expected
            assert row["position_ids"][span] == list(range(n))
            assert src == doc % 3
            seen.add(doc)
            cursor += n
    assert seen == set(range(200))


def test_pad_rows_to_full_length():
    from plamo_fast.data.packing import IGNORE_INDEX, pack_documents, pad_rows

    lengths = np.array([5, 3, 7, 8])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = np.arange(1, offsets[-1] + 1, dtype=np.int32)
    table = pad_rows(pack_documents(tokens, tokens, offsets, 10), 10, pad_id=0)
    for row in table.to_pylist():
        assert len(row["input_ids"]) == len(row["labels"]) == len(row["position_ids"]) == 10
        assert sum(row["seq_lengths"]) == 10
        assert len(row["seq_lengths"]) == len(row["doc_ids"])
        real = sum(n for n, d in zip(row["seq_lengths"], row["doc_ids"], strict=False) if d >= 0)
        if real < 10:
            assert row["doc_ids"][-1] == -1
            assert row["input_ids"][real:] == [0] * (10 - real)
            assert row["labels"][real:] == [IGNORE_INDEX] * (10 - real)
            assert row["position_ids"][real:] == list(range(10 - real))


def test_chunked_gather_equals_one_table():
    import pyarrow as pa

    from plamo_fast.data.packing import gather_table, pack_documents, plan_rows, row_chunks

    rng = np.random.default_rng(9)
    lengths = rng.integers(1, 50, size=500)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = rng.integers(0, 1000, size=int(offsets[-1])).astype(np.int32)
    whole = pack_documents(tokens, tokens, offsets, 64, seed=3)
    order, row_offsets = plan_rows(lengths, 64, seed=3)
    doc_ids = np.arange(len(lengths))
    chunks = [
        gather_table(tokens, tokens, offsets, o, r, doc_ids=doc_ids)
        for o, r in row_chunks(order, row_offsets, lengths, max_tokens=300)
    ]
    assert len(chunks) > 10
    assert all(c.num_rows >= 1 for c in chunks)
    assert pa.concat_tables(chunks).to_pylist() == whole.to_pylist()
