"""Pre-tokenized Parquet is checked and spilled a record batch at a time (no Python object per
record): the output, the report and every refusal are those of the record-by-record path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from chat_fixtures import write_jsonl

from plamo_fast.data import pack as pack_module
from plamo_fast.data.conversation import BadRecordError
from plamo_fast.data.pack import pack
from plamo_fast.data.records import tokenized_batch as pack_module_tokenized_batch

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

VOCAB = 1000


def random_rows(rng: np.random.Generator, n: int, mask: str | None, wide: bool) -> list[dict]:
    """Good rows and every kind of bad one, in random order (``wide``: int64 values beyond
    int32 among the bad ones)."""
    beyond = [2**31 + 5] if wide else []
    rows = []
    for _ in range(n):
        length = int(rng.integers(1, 40))
        ids = rng.integers(0, VOCAB, length).tolist()
        trained = rng.random(length) < 0.6
        labels = [t if k else -100 for t, k in zip(ids, trained, strict=True)]
        kind = rng.choice(["good"] * 6 + ["empty", "id", "short", "label", "long", "untrained"])
        if kind == "empty":
            ids, labels = [], []
        elif kind == "id":
            ids[int(rng.integers(length))] = int(rng.choice([-1, -7, *beyond]))
        elif kind == "short":
            labels = labels[:-1]
        elif kind == "label":
            labels[int(rng.integers(length))] = int(rng.choice([-5, -101, *beyond]))
        elif kind == "long":
            ids, labels = ids * 3, labels * 3
        elif kind == "untrained":
            labels = [-100] * length
        if mask is None:
            rows.append({"input_ids": ids, "labels": labels})
        else:
            values = [int(x != -100) if x == -100 or 0 <= x < 2**31 else 2 for x in labels]
            rows.append({"input_ids": ids, mask: values})
    return rows


def outputs(out: Path) -> tuple[list[dict], dict]:
    report = json.loads((out / "pack_report.json").read_text())
    for key in ("inputs", "seconds", "bad_records"):  # bad_records: compared apart
        report.pop(key)
    return pq.read_table(out / "data.parquet").to_pylist(), report


@pytest.mark.parametrize("mask", [None, "assistant_masks", "completion_mask"])
@pytest.mark.parametrize("id_type", ["int32", "int64"])
def test_batches_pack_like_records(tmp_path: Path, monkeypatch, mask, id_type):
    monkeypatch.setattr(pack_module, "_batch_rows", lambda path: 7)  # numbered across batches
    checked = []

    def spy(*args):
        checked.append(pack_module_tokenized_batch(*args))
        return checked[-1]

    monkeypatch.setattr(pack_module, "tokenized_batch", spy)
    native = []
    checked_natively = pack_module._checked_natively

    def native_spy(*args):
        native.append(checked_natively(*args))
        return native[-1]

    monkeypatch.setattr(pack_module, "_checked_natively", native_spy)
    rng = np.random.default_rng(len(tmp_path.name))
    rows = random_rows(rng, 120, mask, id_type == "int64")
    rows[50] = {"input_ids": None, (mask or "labels"): None}  # a null: read record by record
    lines = write_jsonl(tmp_path / "rows.jsonl", rows)
    label = mask or "labels"
    kind = pa.list_(pa.int32() if id_type == "int32" else pa.int64())
    label_kind = pa.list_(pa.int32()) if mask else kind
    table = pa.table(
        {
            "input_ids": pa.array([r["input_ids"] for r in rows], kind),
            label: pa.array([r[label] for r in rows], label_kind),
        }
    )
    parquet = tmp_path / "rows.parquet"
    pq.write_table(table, parquet)
    options = {"max_length": 64, "skip_bad": True, "tokenizer": None}
    by_record = pack([lines], output=tmp_path / "a", **options)
    by_batch = pack([parquet], output=tmp_path / "b", **options)
    # 18 batches: those with a refused row (or a mask) checked by tokenized_batch, which
    # names the refusals, one of them (the null) record by record; the others natively.
    assert len(native) == 18 and sum(c is None for c in checked) == 1
    assert len(checked) == sum(n is None for n in native) < (18 if mask is None else 19)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    assert by_record["dropped"]["too_long"] and by_record["dropped"]["no_trainable_token"]
    assert by_record["dropped"]["malformed"] > 5
    assert [m.replace(str(lines), "F") for m in by_record["bad_records"]] == [
        m.replace(str(parquet), "F") for m in by_batch["bad_records"]
    ]
    assert any(
        m.startswith("F:51: ")
        for m in [x.replace(str(lines), "F") for x in by_record["bad_records"]]
    )
    # Without --skip-bad the first bad row stops both, with the same message.
    messages = []
    for path, out in ((lines, "c"), (parquet, "d")):
        with pytest.raises(BadRecordError) as error:
            pack([path], output=tmp_path / out, **{**options, "skip_bad": False})
        messages.append(str(error.value).replace(str(path), "F"))
    assert messages[0] == messages[1]


def test_bool_masks_and_a_known_vocabulary(tmp_path: Path):
    from chat_fixtures import TEMPLATES, make_tokenizer

    tok = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    rows = [
        {"input_ids": [5, 6, 7], "assistant_masks": [False, True, True]},
        {"input_ids": [5, 6, 100_000], "assistant_masks": [False, True, True]},
    ]
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    message = rf"{parquet}:2: input_ids\[2\] = 100000 is not a token id \(0 or more, below the "
    with pytest.raises(BadRecordError, match=message + "vocabulary size"):
        pack([parquet], tok, tmp_path / "o", max_length=16)
    report = pack([parquet], tok, tmp_path / "o", max_length=16, skip_bad=True)
    assert report["examples_packed"] == 1
    (row,) = pq.read_table(tmp_path / "o" / "data.parquet").to_pylist()
    assert row["input_ids"] == [5, 6, 7] and row["labels"] == [-100, 6, 7]


def test_tokenized_batches_are_added_like_one_document_at_a_time(tmp_path: Path, monkeypatch):
    """Conversations tokenized in Rust are added a batch at a time: the same store (so the same
    rows and report) as adding each document through the per-record checks."""
    from chat_fixtures import CONVERSATIONS, SYSTEM_CONVERSATION, TEMPLATES, make_tokenizer

    tok = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    long_chat = SYSTEM_CONVERSATION[:1] + CONVERSATIONS[1] + CONVERSATIONS[2]
    untrained = [{"role": "user", "content": "hi"}]
    chats = [*CONVERSATIONS, long_chat, untrained]
    rng = np.random.default_rng(3)
    records = [{"messages": chats[i]} for i in rng.integers(0, len(chats), 60)]
    data = write_jsonl(tmp_path / "c.jsonl", records)
    monkeypatch.setattr(pack_module, "BATCH", 8)
    together = pack([data], tok, tmp_path / "a", max_length=48)

    def one_at_a_time(self, sources, doc_ids, ids, labels, lengths):
        ends = np.cumsum(lengths)
        for source, doc, end, n in zip(
            np.broadcast_to(sources, lengths.shape), doc_ids, ends, lengths, strict=True
        ):
            self._add(int(source), int(doc), [(ids[end - n : end], labels[end - n : end])], None)

    monkeypatch.setattr(pack_module._Pipeline, "_add_documents", one_at_a_time)
    apart = pack([data], tok, tmp_path / "b", max_length=48)
    assert together["dropped"]["too_long"] and together["dropped"]["no_trainable_token"]
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    assert together["bad_records"] == apart["bad_records"] == []


def good_rows(rng: np.random.Generator, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        ids = rng.integers(0, VOCAB, int(rng.integers(2, 60))).tolist()
        labels = [t if rng.random() < 0.7 else -100 for t in ids]
        labels[-1] = ids[-1]  # a target after the first token: every row packs
        rows.append({"input_ids": ids, "labels": labels})
    return rows


@pytest.mark.parametrize("id_type", ["int32", "int64"])
def test_streamed_multi_row_group_file_packs_like_in_memory(tmp_path: Path, monkeypatch, id_type):
    """A file of many row groups read in record batches that straddle them, checked natively
    (no batch through the per-batch numpy checks), packs to exactly the rows of the in-memory
    packer over all documents at once, and to those of the numpy-checked path."""
    from plamo_fast.data.packing import pack_documents

    rows = good_rows(np.random.default_rng(7), 400)
    kind = pa.list_(pa.int32() if id_type == "int32" else pa.int64())
    table = pa.table(
        {name: pa.array([r[name] for r in rows], kind) for name in ("input_ids", "labels")}
    )
    parquet = tmp_path / "rows.parquet"
    pq.write_table(table, parquet, row_group_size=37)
    assert pq.ParquetFile(parquet).metadata.num_row_groups == 11
    monkeypatch.setattr(pack_module, "_batch_rows", lambda path: 16)
    monkeypatch.setattr(pack_module, "CHUNK_TOKENS", 300)  # many output row groups too

    def refuse(*args):
        raise AssertionError("a clean batch went through the numpy checks")

    monkeypatch.setattr(pack_module, "tokenized_batch", refuse)
    options = {"max_length": 128, "tokenizer": None}
    report = pack([parquet], output=tmp_path / "streamed", **options)
    assert report["examples_packed"] == 400
    streamed = pq.read_table(tmp_path / "streamed" / "data.parquet")
    assert pq.ParquetFile(tmp_path / "streamed" / "data.parquet").metadata.num_row_groups > 10

    lengths = [len(r["input_ids"]) for r in rows]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = {k: np.concatenate([r[k] for r in rows]).astype(np.int32) for k in table.column_names}
    in_memory = pack_documents(flat["input_ids"], flat["labels"], offsets, 128)
    assert streamed.schema == in_memory.schema
    assert streamed.to_pylist() == in_memory.to_pylist()

    monkeypatch.setattr(pack_module, "tokenized_batch", pack_module_tokenized_batch)
    monkeypatch.setattr(pack_module, "_checked_natively", lambda *args: None)
    pack([parquet], output=tmp_path / "numpy", **options)
    assert outputs(tmp_path / "numpy") == outputs(tmp_path / "streamed")


def test_packing_pretokenized_parquet_imports_no_pandas(tmp_path: Path):
    """pyarrow's numpy conversions (``pa.array``, ``to_numpy``) import pandas, about 45 MiB of
    peak RSS and a quarter of a second: the pre-tokenized path reads and builds Arrow buffers
    without them."""
    import subprocess
    import sys

    rows = good_rows(np.random.default_rng(1), 50)
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    script = (
        "import sys\n"
        "from plamo_fast.data.pack import pack\n"
        f"pack([{str(parquet)!r}], None, {str(tmp_path / 'out')!r}, max_length=64)\n"
        "print('pandas' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "False"
    assert pq.read_table(tmp_path / "out" / "data.parquet").num_rows > 0
