"""The native Parquet writer of integer-list columns (``_native.ParquetListWriter``, pack's
output): what it writes reads back, with pyarrow and with polars, as the table it was given,
with the schema, metadata and row groups pyarrow's writer gives; pack's output is the same
table whichever writer wrote it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plamo_fast import _native
from plamo_fast.data import pack as pack_module
from plamo_fast.data.pack import PARQUET_OPTIONS, pack

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def list_array(lengths, values, large: bool = False):
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    if large:
        return pa.LargeListArray.from_arrays(pa.array(offsets.astype(np.int64)), pa.array(values))
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))


def random_table(rng: np.random.Generator, rows: int, max_len: int, empty_share: float = 0.1):
    """int32 and int64 list columns over the whole value ranges, some rows empty."""
    lengths = rng.integers(1, max_len + 1, rows)
    lengths[rng.random(rows) < empty_share] = 0
    total = int(lengths.sum())
    i32 = rng.integers(-(2**31), 2**31, total, dtype=np.int32)
    i64 = rng.integers(-(2**63), 2**63 - 1, total, dtype=np.int64)
    other = rng.integers(0, max_len + 1, rows)  # a column with its own row lengths
    return pa.table(
        {
            "input_ids": list_array(lengths, i32),
            "doc_ids": list_array(lengths, i64),
            "seq_lengths": list_array(other, rng.integers(0, 9, int(other.sum()), dtype=np.int32)),
        }
    )


def write_native(path: Path, tables, compression: str = "snappy", page_bytes: int = 1 << 20):
    """``tables`` written by pack's own writer (``_NativeParquetWriter``, as pack opens it)."""
    writer = pack_module._NativeParquetWriter.open(
        path, tables[0], compression=compression, page_bytes=page_bytes
    )
    assert writer is not None
    for table in tables:
        writer.write_table(table)
    writer.close()


def write_pyarrow(path: Path, tables) -> None:
    with pq.ParquetWriter(path, tables[0].schema, **PARQUET_OPTIONS) as writer:
        for table in tables:
            writer.write_table(table)


def assert_reads_back(path: Path, expected) -> None:
    """pyarrow and polars (an independent reader) both read ``expected`` back."""
    import polars as pl

    got = pq.read_table(path)
    assert got.schema == expected.schema
    assert got.equals(expected)
    frame = pl.read_parquet(path)
    assert frame.columns == expected.column_names
    for name in expected.column_names:
        assert frame[name].to_list() == expected[name].to_pylist(), name


@pytest.mark.parametrize("compression", ["snappy", "none"])
def test_random_columns_in_many_row_groups_and_pages_read_back(tmp_path: Path, compression):
    rng = np.random.default_rng(11)
    tables = [random_table(rng, int(n), 300) for n in rng.integers(1, 200, 12)]
    tables[3] = random_table(rng, 90, 300).slice(7, 50)  # offsets not from 0, values after
    path = tmp_path / "x.parquet"
    # Pages of 2 KiB: most column chunks hold several, and rows longer than a page (up to
    # 300 int64 values) take a page each.
    write_native(path, tables, compression, page_bytes=2048)
    assert_reads_back(path, pa.concat_tables(tables))
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 12
    assert meta.num_rows == sum(t.num_rows for t in tables)
    codec = {"snappy": "SNAPPY", "none": "UNCOMPRESSED"}[compression]
    for g, table in enumerate(tables):
        group = meta.row_group(g)
        assert group.num_rows == table.num_rows
        for c, name in enumerate(table.column_names):
            chunk = group.column(c)
            assert chunk.compression == codec and chunk.path_in_schema == f"{name}.list.element"
            lengths = np.diff(pack_module._list_buffers(table[name].chunk(0))[0])
            assert chunk.num_values == int(np.maximum(lengths, 1).sum())  # an empty row: 1 level
            assert not chunk.is_stats_set and not chunk.has_dictionary_page


def test_long_rows_and_single_value_rows(tmp_path: Path):
    rng = np.random.default_rng(5)
    long_rows = list_array([70_000, 1, 130_000], rng.integers(0, 50_000, 200_001, dtype=np.int32))
    ones = np.ones(50_000, dtype=np.int64)
    tables = [
        pa.table({"a": long_rows, "b": list_array([1, 1, 1], np.arange(3, dtype=np.int64))}),
        pa.table(
            {
                "a": list_array(ones, np.arange(50_000, dtype=np.int32)),
                "b": list_array(ones, np.arange(50_000, dtype=np.int64)),
            }
        ),
    ]
    path = tmp_path / "x.parquet"
    write_native(path, tables, page_bytes=64 << 10)  # the long rows are several pages long
    assert_reads_back(path, pa.concat_tables(tables))


def test_schema_metadata_and_layout_are_pyarrows(tmp_path: Path):
    rng = np.random.default_rng(2)
    tables = [random_table(rng, 50, 100) for _ in range(3)]
    native, reference = tmp_path / "native.parquet", tmp_path / "pyarrow.parquet"
    write_native(native, tables)
    write_pyarrow(reference, tables)
    ours, theirs = pq.ParquetFile(native), pq.ParquetFile(reference)
    assert ours.schema.equals(theirs.schema)  # the Parquet schema, levels and names
    assert ours.schema_arrow == theirs.schema_arrow
    m, r = ours.metadata, theirs.metadata
    assert m.metadata == r.metadata  # ARROW:schema, byte for byte
    assert (m.num_rows, m.num_row_groups, m.num_columns) == (r.num_rows, r.num_row_groups, 3)
    assert m.format_version == r.format_version
    assert m.created_by.startswith("plamo-fast version ")
    for g in range(m.num_row_groups):
        for c in range(m.num_columns):
            a, b = m.row_group(g).column(c), r.row_group(g).column(c)
            assert (a.num_values, a.physical_type, a.compression) == (
                b.num_values,
                b.physical_type,
                b.compression,
            )
            assert set(a.encodings) == set(b.encodings) == {"PLAIN", "RLE"}
    assert pq.read_table(native).equals(pq.read_table(reference))


def test_large_lists_keep_their_type(tmp_path: Path):
    lengths = [3, 0, 2]
    table = pa.table({"a": list_array(lengths, np.arange(5, dtype=np.int32), large=True)})
    path = tmp_path / "x.parquet"
    write_native(path, [table])
    assert_reads_back(path, table)


def test_an_empty_file_has_the_schema(tmp_path: Path):
    table = pa.table({"a": list_array([], np.zeros(0, dtype=np.int32))})
    native, reference = tmp_path / "native.parquet", tmp_path / "pyarrow.parquet"
    write_native(native, [table])
    write_pyarrow(reference, [table])
    got = pq.read_table(native)
    assert got.num_rows == 0 and got.schema == pq.read_table(reference).schema == table.schema


def test_bad_input_is_refused_with_the_file_and_column(tmp_path: Path):
    path = tmp_path / "x.parquet"
    writer = _native.ParquetListWriter(path, [("a", "int32"), ("b", "int64")])
    offsets = np.array([0, 2, 3], dtype=np.int64)
    i32, i64 = np.arange(3, dtype=np.int32), np.arange(3, dtype=np.int64)
    with pytest.raises(ValueError, match=r"^column 1: values must be int64"):
        writer.write_row_group([(offsets, i32), (offsets, i32)])
    with pytest.raises(ValueError, match=r"^column 0: offsets must be int64"):
        writer.write_row_group([(offsets.astype(np.int32), i32), (offsets, i64)])
    with pytest.raises(ValueError, match=r"x\.parquet: column a: offsets must be non-decreasing"):
        writer.write_row_group([(offsets[::-1].copy(), i32), (offsets, i64)])
    with pytest.raises(ValueError, match=r"x\.parquet: column b has 1 rows, column a 2"):
        writer.write_row_group([(offsets, i32), (offsets[:2].copy(), i64)])
    with pytest.raises(ValueError, match=r"^1 columns given for a file of 2"):
        writer.write_row_group([(offsets, i32)])
    with pytest.raises(ValueError, match=r"must be C-contiguous"):
        writer.write_row_group([(offsets, np.arange(6, dtype=np.int32)[::2]), (offsets, i64)])
    writer.write_row_group([(offsets, i32), (offsets, i64)])
    writer.close()
    writer.close()  # a second close does nothing
    with pytest.raises(ValueError, match="closed"):
        writer.write_row_group([(offsets, i32), (offsets, i64)])
    assert pq.read_table(path).to_pylist() == [{"a": [0, 1], "b": [0, 1]}, {"a": [2], "b": [2]}]
    with pytest.raises(ValueError, match="type must be 'int32' or 'int64'"):
        _native.ParquetListWriter(path, [("a", "float")])
    with pytest.raises(ValueError, match="compression must be"):
        _native.ParquetListWriter(path, [("a", "int32")], compression="zstd")
    missing = tmp_path / "no" / "x.parquet"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        _native.ParquetListWriter(missing, [("a", "int32")])


def test_tables_it_cannot_take_go_to_pyarrow(tmp_path: Path):
    ints = list_array([2, 1], np.arange(3, dtype=np.int32))
    path = tmp_path / "x.parquet"
    native = pack_module._parquet_writer(path, pa.table({"a": ints}))
    assert isinstance(native, pack_module._NativeParquetWriter)
    native.close()
    others = {
        "nulls": pa.table({"a": pa.array([[1, None], [2]], pa.list_(pa.int32()))}),
        "null row": pa.table({"a": pa.array([[1], None], pa.list_(pa.int32()))}),
        "not a list": pa.table({"a": pa.array([1, 2], pa.int32())}),
        "int16": pa.table({"a": pa.array([[1], [2]], pa.list_(pa.int16()))}),
        "required": pa.table(
            {"a": ints}, schema=pa.schema([pa.field("a", ints.type, nullable=False)])
        ),
        "metadata": pa.table({"a": ints}).replace_schema_metadata({"k": "v"}),
        # pyarrow writes a field id into the Parquet schema, the native writer would not.
        "field metadata": pa.table(
            {"a": ints},
            schema=pa.schema([pa.field("a", ints.type, metadata={"PARQUET:field_id": "7"})]),
        ),
    }
    for why, table in others.items():
        writer = pack_module._parquet_writer(path, table)
        assert isinstance(writer, pq.ParquetWriter), why
        writer.write_table(table)
        writer.close()
        assert pq.read_table(path).equals(table), why


def test_options_the_native_writer_does_not_implement_go_to_pyarrow(tmp_path, monkeypatch):
    table = pa.table({"a": list_array([2, 1], np.arange(3, dtype=np.int32))})
    monkeypatch.setitem(pack_module.PARQUET_OPTIONS, "use_dictionary", True)
    writer = pack_module._parquet_writer(tmp_path / "x.parquet", table)
    assert isinstance(writer, pq.ParquetWriter)
    writer.close()


def pretokenized_file(path: Path, rng: np.random.Generator, n: int) -> Path:
    rows = []
    for _ in range(n):
        ids = rng.integers(0, 1000, int(rng.integers(2, 90))).tolist()
        labels = [t if rng.random() < 0.7 else -100 for t in ids]
        labels[-1] = ids[-1]
        rows.append({"input_ids": ids, "labels": labels})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("pad", [False, True])
def test_pack_output_is_the_table_pyarrow_writes(tmp_path: Path, monkeypatch, pad):
    """pack's rows (two sources: source_ids too; padded or not), written natively and by
    pyarrow's writer: the same table, schema, metadata and row groups."""
    rng = np.random.default_rng(4)
    inputs = [pretokenized_file(tmp_path / f"in{i}.parquet", rng, 300) for i in range(2)]
    monkeypatch.setattr(pack_module, "CHUNK_TOKENS", 2000)  # many row groups
    options = {"max_length": 128, "tokenizer": None, "pad": pad, "pad_id": 0 if pad else None}
    opened = []
    real_open = pack_module._NativeParquetWriter.open

    def spy(path, table):
        opened.append(real_open(path, table))
        return opened[-1]

    monkeypatch.setattr(pack_module._NativeParquetWriter, "open", spy)
    pack(inputs, output=tmp_path / "native", **options)
    assert len(opened) == 1 and opened[0] is not None
    monkeypatch.setattr(pack_module._NativeParquetWriter, "open", lambda path, table: None)
    pack(inputs, output=tmp_path / "pyarrow", **options)
    native = pq.ParquetFile(tmp_path / "native" / "data.parquet")
    reference = pq.ParquetFile(tmp_path / "pyarrow" / "data.parquet")
    assert native.schema_arrow == reference.schema_arrow
    assert "source_ids" in native.schema_arrow.names
    assert native.metadata.metadata == reference.metadata.metadata
    groups = [native.metadata.row_group(g).num_rows for g in range(native.num_row_groups)]
    assert len(groups) > 10
    assert groups == [
        reference.metadata.row_group(g).num_rows for g in range(reference.num_row_groups)
    ]
    assert native.read().equals(reference.read())
