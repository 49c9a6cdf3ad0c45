"""The Python API on data frames: :func:`dedup`, :func:`decontaminate` and :func:`pack` take a
``polars.DataFrame`` / ``LazyFrame``, a ``pyarrow.Table`` (or anything with the Arrow C stream
interface), a 🤗 ``datasets.Dataset``, or a path, and return the same kind of table (polars in,
polars out; Arrow in, Arrow out; a Dataset in, a Dataset out).

They run the very code of ``plamo-fast dedup`` / ``decontaminate`` / ``pack`` on the same
records, so the results are the CLI's. :func:`dedup` and :func:`decontaminate` hand the table to
that code in memory (:class:`plamo_fast.data.curation_io.TableInput`: a polars frame's Arrow
data as ``to_arrow`` gives it, without a copy; dedup reads its key columns straight from the
Arrow buffers where it can, :mod:`plamo_fast.data.columns`, other records a batch at a time) and
select the kept rows by a mask: nothing is written (near dedup's n-gram sets aside, in a file
unlinked as soon as it is open). :func:`pack` reads the table in memory the same way (a
pre-tokenized one a record batch at a time over its Arrow buffers) and returns the rows the CLI
would write, as it gathers them: nothing is written but the report (to a scratch folder removed
on return); the documents stay in memory (pre-tokenized int32 columns as views of their Arrow
buffers, others at 8 bytes a token) beside the packed rows returned. A bad record is named by
its row (``row N``, 1-based).

polars (the ``[polars]`` extra) and datasets are imported only when such an object is given.
"""

from __future__ import annotations

import os
from pathlib import Path

from plamo_fast.errors import UsageError

CLUSTER_COLUMNS = ("kept", "cluster_id", "jaccard")
# How reports number records (plamo_fast.data.curation.location).
NUMBER_KEYS = ("line", "record", "row")


def dedup(
    data,
    *,
    key: str = "prompt",
    near: bool = False,
    threshold: float = 0.8,
    keep: str = "first",
    keep_column: str | None = None,
    ngram: int = 5,
    num_perm: int = 128,
    seed: int = 0,
    fields: tuple[str, ...] = (),
    clusters: bool = False,
    skip_bad: bool = False,
    guard=None,
    allow_empty: bool = False,
):
    """The records of ``data`` without duplicates, as ``plamo-fast dedup`` keeps them (same
    options, same meaning). With ``clusters``, every row instead, with ``kept`` (bool),
    ``cluster_id`` (the 0-based row index of the record kept for its cluster; its own index
    for a record without duplicates; null for a row dropped for another reason) and
    ``jaccard`` (a removed duplicate's lowest key Jaccard in its cluster, 1.0 exact; null
    otherwise)."""
    from plamo_fast.data.dedup import dedup_table

    if clusters and skip_bad:
        raise UsageError(
            "clusters=True places every row, so it needs every row readable: drop the bad "
            "rows first, or leave skip_bad off to have the first one named"
        )
    table = to_arrow(data)
    taken = [name for name in CLUSTER_COLUMNS if name in table.column_names]
    if clusters and taken:
        raise UsageError(f"the data has a column {taken[0]!r}, which clusters=True adds")
    kept, report, _ = dedup_table(
        table, clusters=clusters, near=near, threshold=threshold, key=key, keep=keep,
        keep_column=keep_column, ngram=ngram, num_perm=num_perm, seed=seed,
        fields=tuple(fields), skip_bad=skip_bad, guard=guard, allow_empty=allow_empty,
    )  # fmt: skip
    if clusters:
        return _like(data, _with_clusters(table, report))
    return _rows_at(data, table, kept)


def decontaminate(
    data,
    benchmarks,
    *,
    fields: tuple[str, ...] = (),
    bench_field: str | None = None,
    skip_bad: bool = False,
    guard=None,
    params=None,
    allow_empty: bool = False,
):
    """``(kept, report)``: the records of ``data`` that hold no benchmark question, as
    ``plamo-fast decontaminate --bench ...`` keeps them (``benchmarks``: its ``--bench`` specs;
    ``params``: a :class:`plamo_fast.data.decontaminate.LeakParams`), and one report row per
    removed record: ``index`` (its 0-based row) and the CLI report's fields (benchmark, item,
    kind of match, score, ... or the provenance reason)."""
    from plamo_fast.data.decontaminate import LeakParams, decontaminate_table

    if isinstance(benchmarks, str | os.PathLike):
        benchmarks = [benchmarks]
    table = to_arrow(data)
    kept, report, _ = decontaminate_table(
        table, [str(b) for b in benchmarks], fields=tuple(fields), bench_field=bench_field,
        skip_bad=skip_bad, guard=guard, params=params or LeakParams(), allow_empty=allow_empty,
    )  # fmt: skip
    removed = [_indexed(entry) for entry in report]
    return _rows_at(data, table, kept), _like(data, _rows_table(removed))


def _indexed(entry: dict) -> dict:
    """A report entry with the row's 0-based ``index`` for its file and number."""
    index = _number(entry) - 1
    rest = {k: v for k, v in entry.items() if k not in ("file", *NUMBER_KEYS)}
    return {"index": index, **rest}


def _rows_table(rows: list[dict]):
    import pyarrow as pa

    return pa.Table.from_pylist(rows) if rows else pa.table({"index": pa.array([], pa.int64())})


def pack(
    data,
    *,
    tokenizer,
    max_length: int,
    kind: str = "sft",
    chat_template=None,
    truncate: str = "drop",
    last_turn_only: bool = False,
    seed: int = 0,
    skip_bad: bool = False,
    pad: bool = False,
    pad_id: int | None = None,
    trust_remote_code: bool = False,
    allow_empty: bool = False,
):
    """The packed rows of ``data``'s records, as ``plamo-fast pack`` writes them to
    ``data.parquet`` (same options, same meaning; ``tokenizer`` None when every record is
    pre-tokenized). A table is read in memory, never written. Memory: the packed rows (about 12
    bytes a token) and, while packing, the documents' tokens and labels (8 bytes a token, none
    for the int32 list columns of a pre-tokenized table, which are used in place); the CLI
    spills the documents to disk instead."""
    from plamo_fast.data.curation_io import TableInput
    from plamo_fast.data.pack import pack_rows

    source = Path(data) if isinstance(data, str | os.PathLike) else TableInput(to_arrow(data))
    rows, _ = pack_rows(
        [source], tokenizer, max_length=max_length, kind=kind, chat_template=chat_template,
        truncate=truncate, last_turn_only=last_turn_only, seed=seed, skip_bad=skip_bad, pad=pad,
        pad_id=pad_id, trust_remote_code=trust_remote_code, allow_empty=allow_empty,
    )  # fmt: skip
    return _like(data, rows)


def to_arrow(data):
    """``data`` as a ``pyarrow.Table``: a polars DataFrame/LazyFrame, an Arrow table or
    record batch, a ``datasets.Dataset`` (its rows in order, a selection included), any
    object with the Arrow C stream interface (``__arrow_c_stream__``), or the path of an input
    of the CLI (JSONL or a JSON array, Parquet, a saved dataset folder)."""
    import pyarrow as pa

    if isinstance(data, str | os.PathLike):
        return _read_input(Path(data))
    kind = _kind(data)
    if kind == "polars":
        if hasattr(data, "collect"):  # a LazyFrame
            data = data.collect()
        return data.to_arrow()
    if kind == "datasets":
        return data.with_format("arrow")[:]
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise UsageError(
        f"expected a polars DataFrame/LazyFrame, a pyarrow Table, a datasets.Dataset or a "
        f"path, got {type(data).__name__}"
    )


def _read_input(path: Path):
    import pyarrow as pa

    from plamo_fast.data.conversation import BadRecordError
    from plamo_fast.data.curation_io import (
        check_input,
        input_format,
        iter_input,
        load_dataset_folder,
        where,
    )

    form = input_format(check_input(path))
    if form == "parquet":
        return _read_parquet(path)
    if form == "hf":
        return load_dataset_folder(path).with_format("arrow")[:]
    records = []
    for row in iter_input(path):
        if row.error is not None:
            raise BadRecordError(f"{where(path, row)}: {row.error}")
        records.append(row.record)
    return pa.Table.from_pylist(records)


def _kind(data) -> str:
    module = type(data).__module__.split(".")[0]
    return module if module in ("polars", "datasets") else "arrow"


def _read_parquet(path: Path):
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _with_clusters(table, report: list[dict]):
    """Every row of ``table`` with the ``kept``, ``cluster_id`` and ``jaccard`` columns of the
    dedup report's entries (one per cluster with duplicates; one per record otherwise
    dropped)."""
    import numpy as np
    import pyarrow as pa

    n = table.num_rows
    kept = np.ones(n, dtype=bool)
    cluster = np.arange(n, dtype=np.int64)
    cluster_valid = np.ones(n, dtype=bool)
    jaccard = np.full(n, np.nan)
    for entry in report:
        if "reason" in entry:  # dropped, not as a duplicate (provenance)
            i = _number(entry) - 1
            kept[i], cluster_valid[i] = False, False
            continue
        root = _number(entry["kept"]) - 1
        for removed in entry["removed"]:
            i = _number(removed) - 1
            kept[i], cluster[i], jaccard[i] = False, root, removed["jaccard"]
    columns = {
        "kept": pa.array(kept),
        "cluster_id": pa.array(cluster, mask=~cluster_valid),
        "jaccard": pa.array(jaccard, mask=np.isnan(jaccard)),
    }
    for name in CLUSTER_COLUMNS:
        table = table.append_column(name, columns[name])
    return table


def _number(place: dict) -> int:
    """The 1-based number of a report's record: its ``line`` (JSONL line or Parquet row),
    ``record`` (JSON array element) or ``row`` (saved dataset row)."""
    return next(place[k] for k in NUMBER_KEYS if place.get(k) is not None)


def _rows_at(data, table, kept):
    """The rows ``kept`` (0-based, ascending) of ``table`` as the kind of object ``data`` is,
    selected by a mask (a frame converted from polars comes in many chunks, over which Arrow's
    ``take`` is several times slower; for polars, the frame made back from ``table`` is filtered
    by polars)."""
    import numpy as np

    mask = np.zeros(table.num_rows, dtype=bool)
    mask[np.asarray(kept, dtype=np.int64)] = True
    if _kind(data) == "polars":  # (a path's kind is "arrow")
        import polars

        return polars.from_arrow(table).filter(polars.Series(mask))
    import pyarrow as pa

    return _like(data, table.filter(pa.array(mask)))


def _like(data, table):
    """``table`` as the kind of object ``data`` is."""
    kind = _kind(data) if not isinstance(data, str | os.PathLike) else "arrow"
    if kind == "polars":
        import polars

        return polars.from_arrow(table)
    if kind == "datasets":
        import datasets

        return datasets.Dataset(datasets.table.InMemoryTable(table))
    return table
