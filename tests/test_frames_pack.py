"""``plamo_fast.pack(df)``: a polars frame (or Arrow table) is packed in memory, with nothing of
it written anywhere, into exactly the rows ``plamo-fast pack`` writes for the same records in a
file; a bad row is named ``row N``. Pre-tokenized frames are read a record batch at a time over
their Arrow buffers, as pre-tokenized Parquet is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from chat_fixtures import CONVERSATIONS, TEMPLATES, make_tokenizer

import plamo_fast
from plamo_fast.cli import main
from plamo_fast.data import pack as pack_module
from plamo_fast.data.conversation import BadRecordError

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def pretokenized(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        ids = rng.integers(0, 1000, int(rng.integers(2, 60))).tolist()
        cut = int(rng.integers(1, len(ids)))
        rows.append({"input_ids": ids, "labels": [-100] * cut + ids[cut:]})
    return rows


def cli_pack(tmp_path: Path, df, *options: str):
    """The rows ``plamo-fast pack`` writes for ``df`` written as Parquet, and its report."""
    tmp_path.mkdir(exist_ok=True)
    data = tmp_path / "cli.parquet"
    df.write_parquet(data)
    out = tmp_path / "cli_packed"
    assert main(["pack", str(data), "-o", str(out), "-q", *options]) == 0
    report = json.loads((out / "pack_report.json").read_text())
    return pq.read_table(out / "data.parquet"), report


@pytest.fixture
def small_batches(monkeypatch):
    """Record batches of a few rows: a frame's rows come in many slices of its arrays."""
    monkeypatch.setattr(pack_module, "READ_TOKENS", 256)


def test_pack_of_a_pretokenized_frame_is_the_cli_pack_of_the_same_parquet(
    tmp_path: Path, monkeypatch, small_batches
):
    # Two chunks (polars keeps them apart), so the table's arrays are chunked too.
    rows = pretokenized(400)
    df = pl.concat([pl.DataFrame(rows[:150]), pl.DataFrame(rows[150:])], rechunk=False)
    assert df.n_chunks() == 2
    expected, report = cli_pack(tmp_path, df, "-L", "128")
    assert report["examples_packed"] == 400 and expected.num_rows > 10
    by_record = []  # no Python object per record: only the native batch checks
    monkeypatch.setattr(pack_module, "_read_record", lambda *a: by_record.append(a))
    got = plamo_fast.pack(df, tokenizer=None, max_length=128)
    assert not by_record
    assert isinstance(got, pl.DataFrame) and got.equals(pl.from_arrow(expected))
    assert plamo_fast.pack(df.lazy(), tokenizer=None, max_length=128).equals(got)
    table = plamo_fast.pack(df.to_arrow(), tokenizer=None, max_length=128)
    assert isinstance(table, pa.Table) and table.equals(expected)
    # int32 lists (as Parquet written by others holds them) and padding: the same.
    narrow = df.with_columns(pl.col("input_ids", "labels").cast(pl.List(pl.Int32)))
    padded, _ = cli_pack(tmp_path / "pad", narrow, "-L", "128", "--pad", "--pad-id", "0")
    got = plamo_fast.pack(narrow, tokenizer=None, max_length=128, pad=True, pad_id=0)
    assert got.equals(pl.from_arrow(padded))


def test_pack_of_a_text_frame_is_the_cli_pack_of_the_same_parquet(tmp_path: Path):
    pytest.importorskip("tokenizers")
    tokenizer = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    df = pl.DataFrame({"messages": CONVERSATIONS * 4, "id": list(range(len(CONVERSATIONS) * 4))})
    options = ("--tokenizer", str(tokenizer), "-L", "96", "--seed", "3")
    expected, report = cli_pack(tmp_path, df, *options)
    assert report["examples_packed"] == df.height
    got = plamo_fast.pack(df, tokenizer=tokenizer, max_length=96, seed=3)
    assert got.equals(pl.from_arrow(expected)) and got.height > 1
    # Preference pairs, and a 🤗 Dataset (a Dataset back).
    pairs = pl.DataFrame(
        [
            {"prompt": c[0]["content"], "chosen": c[1]["content"], "rejected": "No."}
            for c in CONVERSATIONS * 2
        ]
    )
    options = ("--tokenizer", str(tokenizer), "-L", "96", "--kind", "dpo")
    expected, report = cli_pack(tmp_path / "dpo", pairs, *options)
    assert report["examples_packed"] == pairs.height
    got = plamo_fast.pack(pairs, tokenizer=tokenizer, max_length=96, kind="dpo")
    assert got.equals(pl.from_arrow(expected))
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset(datasets.table.InMemoryTable(pairs.to_arrow()))
    got = plamo_fast.pack(dataset, tokenizer=tokenizer, max_length=96, kind="dpo")
    assert isinstance(got, datasets.Dataset) and got.data.table.equals(expected)


def test_the_frame_is_never_written(tmp_path: Path, monkeypatch, small_batches):
    """No Parquet file is written: neither the input's rows (they used to be staged as a
    temporary one) nor the packed rows (they used to go through a scratch data.parquet); and
    the documents are not spilled (they stay in memory); the scratch folder of the report is
    removed on return."""
    import tempfile

    df = pl.DataFrame(pretokenized(200))
    expected, _ = cli_pack(tmp_path, df, "-L", "128")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    import plamo_fast.data.pack as pack_module

    written = []
    real_writer, real_native = pq.ParquetWriter, pack_module._native.ParquetListWriter

    def watched(real):
        def writer(where, *args, **kwargs):
            written.append(Path(where))
            return real(where, *args, **kwargs)

        return writer

    def refuse(*args, **kwargs):
        raise AssertionError("the data was written to a file")

    monkeypatch.setattr(pq, "ParquetWriter", watched(real_writer))
    monkeypatch.setattr(pack_module._native, "ParquetListWriter", watched(real_native))
    monkeypatch.setattr(pq, "write_table", refuse)
    monkeypatch.setattr(pack_module._native, "LabelMaskSpill", refuse)
    monkeypatch.setattr(pack_module._native, "gather_spilled", refuse)
    got = plamo_fast.pack(df, tokenizer=None, max_length=128)
    assert got.equals(pl.from_arrow(expected))
    assert written == []
    assert list(scratch.iterdir()) == []


def test_a_bad_row_is_named_by_its_row(tmp_path: Path, small_batches):
    rows = pretokenized(60)
    bad = [dict(r) for r in rows]
    bad[41] = {"input_ids": [5, -3, 7], "labels": [-100, 1, 2]}  # refused by the batch checks
    with pytest.raises(BadRecordError, match=r"^row 42: input_ids\[1\] = -3 is not a token id"):
        plamo_fast.pack(pl.DataFrame(bad), tokenizer=None, max_length=128)
    bad[41] = {"input_ids": None, "labels": [1, 2]}  # a null: read record by record
    with pytest.raises(BadRecordError, match=r"^row 42: "):
        plamo_fast.pack(pl.DataFrame(bad), tokenizer=None, max_length=128)
    # With skip_bad, counted as the CLI counts it.
    df = pl.DataFrame(bad)
    expected, _ = cli_pack(tmp_path, df, "-L", "128", "--skip-bad")
    got = plamo_fast.pack(df, tokenizer=None, max_length=128, skip_bad=True)
    assert got.equals(pl.from_arrow(expected)) and got["doc_ids"].explode().n_unique() == 59
    with pytest.raises(BadRecordError, match=r"^the data: no records \(empty file\)"):
        plamo_fast.pack(pl.DataFrame(rows).head(0), tokenizer=None, max_length=128)


def test_a_bad_text_row_is_named_by_its_row(tmp_path: Path):
    pytest.importorskip("tokenizers")
    tokenizer = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    messages = [*CONVERSATIONS, [{"role": "robot", "content": "beep"}]]
    with pytest.raises(BadRecordError, match=r"^row 4: messages\[0\]: unknown role 'robot'"):
        plamo_fast.pack(pl.DataFrame({"messages": messages}), tokenizer=tokenizer, max_length=96)
    with pytest.raises(plamo_fast.PlamoFastError, match=r"^row 1: this record is a conversation"):
        plamo_fast.pack(pl.DataFrame({"messages": messages}), tokenizer=None, max_length=96)
