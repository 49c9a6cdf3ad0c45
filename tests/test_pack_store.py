"""pack's document store: spilled to files (the CLI) or kept in memory (``plamo_fast.pack(df)``)
it gives the same rows for any mix of appends; in memory, a pre-tokenized table's int32 columns
are used in place (no copy) and small appends are joined, so that the gather of each chunk of
rows does not take one array per document."""

from __future__ import annotations

import numpy as np
import pytest
from chat_fixtures import CHATML, make_tokenizer

import plamo_fast
from plamo_fast.data import pack as pack_module
from plamo_fast.data.packing import gather_table

pa = pytest.importorskip("pyarrow")


def fill(stores, rng, docs: int, odd: set[int]) -> None:
    """The same ``docs`` documents into each store, one at a time or a few together; a
    document in ``odd`` has a label that is neither its token nor -100."""
    done = 0
    while done < docs:
        k = min(int(rng.integers(1, 5)), docs - done)
        lengths = rng.integers(1, 30, k)
        ids = rng.integers(0, 1000, int(lengths.sum()), dtype=np.int32)
        labels = np.where(rng.random(len(ids)) < 0.5, -100, ids).astype(np.int32)
        ends = np.cumsum(lengths)
        for j in range(k):
            if done + j in odd:
                labels[ends[j] - 1] = ids[ends[j] - 1] + 1
        one_by_one = k == 1 and rng.random() < 0.5
        for store in stores:
            if one_by_one:
                store.append(ids, labels, 1, done, 0)
            else:
                store.append_many(ids, labels, lengths, np.ones(k), np.arange(done, done + k), 0)
        done += k


@pytest.mark.parametrize("seed", range(30))
def test_spilled_and_in_memory_stores_gather_the_same_rows(tmp_path, seed: int):
    rng = np.random.default_rng(seed)
    docs = int(rng.integers(1, 60))
    odd = set(rng.integers(0, docs, int(rng.integers(0, 3))).tolist())
    spilled, memory = pack_module._DocStore(tmp_path / "spill"), pack_module._DocStore(None)
    fill((spilled, memory), rng, docs, odd)
    assert spilled.labels_masked == (not odd)
    assert not memory.labels_masked
    order = rng.permutation(docs).astype(np.int64)
    cuts = (
        sorted(rng.choice(np.arange(1, docs), min(3, docs - 1), replace=False)) if docs > 1 else []
    )
    rows = np.array([0, *cuts, docs], dtype=np.int64)
    tables = []
    for store in (spilled, memory):
        tokens, labels, offsets = store.files()
        tables.append(
            gather_table(
                tokens,
                labels,
                offsets,
                order,
                rows,
                labels_masked=store.labels_masked,
                doc_ids=np.arange(docs),
            )  # fmt: skip
        )
    assert tables[0].equals(tables[1])
    spilled.storage.remove()
    assert not (tmp_path / "spill").exists()


def watch_gather(monkeypatch) -> list[list[np.ndarray]]:
    """The token arrays of each native gather from memory chunks."""
    seen = []
    real = pack_module._native.gather_chunks

    def gather_chunks(tokens, *args):
        seen.append(list(tokens))
        return real(tokens, *args)

    monkeypatch.setattr(pack_module._native, "gather_chunks", gather_chunks)
    return seen


def test_a_pretokenized_tables_columns_are_used_in_place(monkeypatch):
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 200, 3000)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    ids = rng.integers(0, 1000, int(offsets[-1])).astype(np.int32)
    labels = np.where(rng.random(len(ids)) < 0.3, -100, ids).astype(np.int32)
    table = pa.table(
        {
            "input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids)),
            "labels": pa.ListArray.from_arrays(pa.array(offsets), pa.array(labels)),
        }
    )
    seen = watch_gather(monkeypatch)
    plamo_fast.pack(table, tokenizer=None, max_length=1024)
    values = np.frombuffer(table.column("input_ids").chunk(0).values.buffers()[1], np.int32)
    chunks = seen[0]
    assert 1 < len(chunks) == len({id(c) for c in chunks})  # one per record batch
    assert all(np.shares_memory(chunk, values) for chunk in chunks)
    assert sum(len(c) for c in chunks) == len(ids)


def test_dpo_pairs_are_joined_into_few_chunks(tmp_path, monkeypatch):
    """A DPO pair is added on its own (two documents); in memory they are joined, not kept as
    one array each (which made every gather walk thousands of arrays)."""
    tokenizer = make_tokenizer(tmp_path / "tok", CHATML)
    pairs = [
        {"prompt": f"question {i}?", "chosen": f"yes {i}", "rejected": f"no {i} " * (i % 5 + 1)}
        for i in range(3000)
    ]
    seen = watch_gather(monkeypatch)
    monkeypatch.setattr(pack_module, "CHUNK_TOKENS", 4096)
    rows = plamo_fast.pack(
        pa.Table.from_pylist(pairs), tokenizer=tokenizer, max_length=256, kind="dpo"
    )
    assert rows.num_rows > 10 and len(seen) > 5
    assert max(len(chunks) for chunks in seen) <= 2
