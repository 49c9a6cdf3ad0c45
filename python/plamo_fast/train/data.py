"""Packed training rows (the Parquet `plamo-fast pack` writes) and micro-batches.

A row holds several documents back to back; ``position_ids`` restart at 0 per document, which
is how the model keeps documents from attending to each other (transformers builds a
block-diagonal causal mask from them for SDPA/eager, and flash-attention uses them as varlen
boundaries). ``labels`` are -100 where nothing is trained, including each document's first
token, so the one-token shift never predicts across documents.

The dataset is never held in Python objects or in process memory. :func:`load_packed` streams
the Parquet files once, a quarter of a million tokens at a time, validates every row on the way
(vectorised over the Arrow offsets and values) and writes the columns training reads, without
compression, to an Arrow IPC file; training memory-maps that file, and ``rows[i]`` is a set of
zero-copy NumPy views into it. A process therefore has in memory only the pages of the rows it
reads (each rank its own micro-batches), which the kernel can drop again. Parquet itself
cannot be used that way: its pages are zstd-compressed, so a mapped Parquet file is still
decompressed into process memory in full (2 GB for 100M tokens), and decompressing the row
group that holds one row (16M tokens as ``pack`` writes them) for each row read is far too slow.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import operator
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plamo_fast.data.packing import IGNORE_INDEX
from plamo_fast.errors import UsageError


@dataclass
class PackedRow:
    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray
    seq_lengths: np.ndarray
    pair_ids: np.ndarray | None = None  # per document (DPO); -1 for padding

    @property
    def trained_tokens(self) -> int:
        return int(np.count_nonzero(self.labels[1:] != IGNORE_INDEX))


# Columns training reads, and their type in the mapped copy: one value per token, then one per
# document.
TOKEN_COLUMNS = ("input_ids", "labels", "position_ids")
REQUIRED = (*TOKEN_COLUMNS, "seq_lengths")
PAIRS = "pair_ids"
# Tokens decoded at a time while converting: conversion needs about 40 MB at any data size.
BATCH_TOKENS = 1 << 18
# The mapped copy in a cache folder, its manifest (written last) and the lock of the conversion.
CACHE_NAME = "packed.arrow"
# Rows read between two releases of the mapped pages (see PackedRows).
RELEASE_EVERY = 8
FORMAT = 1


def parquet_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.parquet"))
            if not found:
                raise UsageError(f"{p}: no .parquet files (expected the output of plamo-fast pack)")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"packed data {p} does not exist")
    return files


def load_packed(
    paths: list[str], *, need_pairs: bool = False, cache_dir: str | os.PathLike | None = None
) -> PackedRows:
    """Every row of the packed Parquet files, in file order, as a memory-mapped
    :class:`PackedRows`. DPO data (``pair_ids``) is refused for SFT, which would train the
    rejected answers.

    ``cache_dir`` (a run folder) keeps the uncompressed copy as ``packed.arrow`` with a manifest
    naming the source files (path, size, modification time, inode): the first process converts
    under a file lock while the others wait, and later loads of the same files reuse it. Without
    it the copy goes to the temporary folder and is unlinked as soon as it is mapped (each
    process then converts for itself)."""
    files = parquet_files(paths)
    columns = _columns(files, need_pairs)
    label = ", ".join(map(str, paths))
    if cache_dir is None:
        fd, name = tempfile.mkstemp(prefix="plamo-fast-packed-", suffix=".arrow")
        os.close(fd)
        try:
            info = _convert(files, columns, Path(name), label)
            return PackedRows(Path(name), info)
        finally:
            os.unlink(name)  # the mapping keeps the data until the rows are freed
    return _cached(files, columns, Path(cache_dir), label)


def _columns(files: list[Path], need_pairs: bool) -> list[str]:
    """The columns to read, after checking every file's schema (no data is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = [*REQUIRED, PAIRS] if need_pairs else list(REQUIRED)
    for file in files:
        schema = pq.read_schema(file)
        names = set(schema.names)
        missing = set(REQUIRED) - names
        if missing:
            raise UsageError(f"{file}: not packed data, missing columns {sorted(missing)}")
        if need_pairs and PAIRS not in names:
            raise UsageError(f"{file}: DPO needs rows packed with --kind dpo (no pair_ids)")
        if not need_pairs and PAIRS in names:
            raise UsageError(f"{file}: DPO pairs (pair_ids); SFT needs rows packed with --kind sft")
        for name in wanted:
            kind = schema.field(name).type
            if not (
                (pa.types.is_list(kind) or pa.types.is_large_list(kind))
                and pa.types.is_integer(kind.value_type)
            ):
                raise UsageError(f"{file}: column {name} is {kind}, expected lists of integers")
    return wanted


def _schema(columns: list[str]):
    import pyarrow as pa

    return pa.schema([(c, pa.list_(pa.int64() if c == PAIRS else pa.int32())) for c in columns])


def _convert(files: list[Path], columns: list[str], dest: Path, label: str) -> dict:
    """Validates every row and writes ``columns`` uncompressed to the Arrow IPC file ``dest``
    (one record batch per decoded batch); returns the rows of each batch and the digest."""
    import pyarrow as pa

    _check_space(files, dest.parent)
    schema = _schema(columns)
    digest = _Digest(columns)
    batch_rows, trained = [], False
    with pa.OSFile(str(dest), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for file in files:
            first_row = 0
            for batch in _batches(file, columns):
                batch = _canonical(batch, schema, file, first_row)
                trained |= _validate(batch, file, first_row)
                digest.update(batch)
                writer.write_batch(batch)
                batch_rows.append(batch.num_rows)
                first_row += batch.num_rows
    pa.default_memory_pool().release_unused()  # the decoded batches' memory, for the model
    if sum(batch_rows) == 0:
        raise UsageError(f"{label}: no rows")
    if not trained:
        raise UsageError(f"{label}: no trained token in any row (all labels are -100)")
    return {"batch_rows": batch_rows, "digest": digest.hexdigest()}


def _batches(file: Path, columns: list[str]) -> Iterator:
    """Record batches of about BATCH_TOKENS tokens, read with small buffered reads (no
    pre-buffering of whole column chunks, no memory map: the compressed file is not resident)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(file, memory_map=False, buffer_size=1 << 20, pre_buffer=False)
    meta = parquet.metadata
    paths = [meta.schema.column(i).path.split(".")[0] for i in range(meta.num_columns)]
    leaf = paths.index("input_ids")
    tokens = sum(meta.row_group(g).column(leaf).num_values for g in range(meta.num_row_groups))
    per_batch = max(1, BATCH_TOKENS * meta.num_rows // max(tokens, 1))
    yield from parquet.iter_batches(batch_size=per_batch, columns=columns, use_threads=False)


def _canonical(batch, schema, file: Path, first_row: int):
    """``batch`` in the mapped copy's types (int32 tokens, int64 pair ids, 32-bit offsets);
    null rows or values are refused."""
    import pyarrow as pa

    arrays = []
    for field in schema:
        column = batch.column(field.name)
        for nulls, what in ((_null_rows(column), "is null"), (_null_values(column), "holds nulls")):
            if nulls is not None and nulls.any():
                row = first_row + int(np.flatnonzero(nulls)[0]) + 1
                raise UsageError(f"{file}: row {row}: {field.name} {what}")
        try:
            arrays.append(column.cast(field.type))
        except (pa.ArrowInvalid, OverflowError) as e:
            raise UsageError(
                f"{file}: {field.name}: values out of range for {field.type} ({e})"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _null_rows(column) -> np.ndarray | None:
    """Per row, whether the row itself is null (None when none is)."""
    if column.null_count == 0:
        return None
    return column.is_null().to_numpy(zero_copy_only=False)


def _null_values(column) -> np.ndarray | None:
    """Per row, whether any value in it is null (None when no value is)."""
    if column.values.null_count == 0:
        return None
    offsets = column.offsets.to_numpy()
    null = np.asarray(column.values.is_null().to_numpy(zero_copy_only=False), dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(null)])
    return before[offsets[1:]] > before[offsets[:-1]]


def _lists(batch, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column's per-row lengths and its values, as zero-copy NumPy views."""
    column = batch.column(name)
    offsets = column.offsets.to_numpy()
    return np.diff(offsets), column.values.to_numpy()[offsets[0] : offsets[-1]]


def _validate(batch, file: Path, first_row: int) -> bool:
    """Checks the rows of one batch (vectorised); returns whether any token in it is trained."""

    def refuse(bad: np.ndarray, reason: str) -> None:
        if bad.any():
            raise UsageError(f"{file}: row {first_row + int(np.flatnonzero(bad)[0]) + 1}: {reason}")

    lengths, labels = _lists(batch, "labels")
    token_lengths, _ = _lists(batch, "input_ids")
    for name in TOKEN_COLUMNS[1:]:
        other = lengths if name == "labels" else _lists(batch, name)[0]
        refuse(other != token_lengths, f"{name} and input_ids differ in length")
    counts, seq = _lists(batch, "seq_lengths")
    row_of_doc = np.repeat(np.arange(len(counts)), counts)
    refuse(np.bincount(row_of_doc[seq < 1], minlength=len(counts)) > 0,
           "seq_lengths must be positive")  # fmt: skip
    sums = np.bincount(row_of_doc, weights=seq, minlength=len(counts))
    refuse(sums != token_lengths, "seq_lengths do not add up to the row")
    if PAIRS in batch.schema.names:
        refuse(_lists(batch, PAIRS)[0] != counts, "pair_ids and seq_lengths differ in length")
    trained = labels != IGNORE_INDEX
    starts = np.concatenate([[0], np.cumsum(token_lengths)])[:-1][token_lengths > 0]
    trained[starts] = False  # a row's first token has no previous token to predict it
    return bool(trained.any())


class _Digest:
    """sha256 over the content of the columns training reads (in the mapped copy's types),
    independent of how rows are split into files, row groups or batches: per column, one hash of
    the row lengths (int64) and one of the values, combined at the end with the row count."""

    def __init__(self, columns: list[str]):
        self.parts = {c: (hashlib.sha256(), hashlib.sha256()) for c in columns}
        self.rows = 0

    def update(self, batch) -> None:
        self.rows += batch.num_rows
        for name, (lengths, values) in self.parts.items():
            n, v = _lists(batch, name)
            lengths.update(n.astype("<i8").tobytes())
            values.update(np.ascontiguousarray(v).data)

    def hexdigest(self) -> str:
        record = {
            "format": FORMAT,
            "rows": self.rows,
            "columns": {c: [a.hexdigest(), b.hexdigest()] for c, (a, b) in self.parts.items()},
        }
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def drop_copy(folder: Path) -> None:
    """Delete the mapped copy kept in ``folder`` and its manifest, once the stage is published:
    it is 12 bytes a token, and a later run of the stage makes it again. Rows mapped from it
    stay readable until they are freed."""
    for name in (CACHE_NAME, f"{CACHE_NAME}.json"):
        (folder / name).unlink(missing_ok=True)


def _cached(files: list[Path], columns: list[str], folder: Path, label: str) -> PackedRows:
    """The mapped copy kept in ``folder``: reused when its manifest names the same files and
    columns, else made (by one process at a time)."""
    folder.mkdir(parents=True, exist_ok=True)
    dest, manifest = folder / CACHE_NAME, folder / f"{CACHE_NAME}.json"
    key = {"format": FORMAT, "columns": columns, "sources": [_identity(f) for f in files]}
    with _exclusive(folder / f"{CACHE_NAME}.lock"):
        stored = _read_json(manifest)
        if not (
            stored
            and stored.get("key") == key
            and dest.is_file()
            and dest.stat().st_size == stored.get("bytes")
        ):
            manifest.unlink(missing_ok=True)
            print(f"plamo-fast: writing an uncompressed, memory-mapped copy of {label} to {dest}")
            partial = folder / f".{CACHE_NAME}.partial-{uuid.uuid4().hex}"
            try:
                info = _convert(files, columns, partial, label)
                os.replace(partial, dest)
            finally:
                partial.unlink(missing_ok=True)
            stored = {"key": key, "bytes": dest.stat().st_size, **info}
            _write_json(manifest, stored)
        return PackedRows(dest, stored)


def _identity(file: Path) -> dict:
    """What tells a source file apart from a changed one without reading it (``pack`` replaces
    its output by a rename, which gives a new inode)."""
    st = file.stat()
    return {"path": str(file.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "inode": st.st_ino}  # fmt: skip


def _check_space(files: list[Path], folder: Path) -> None:
    import pyarrow.parquet as pq

    values = 0
    for file in files:
        meta = pq.read_metadata(file)
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            values += sum(group.column(i).num_values for i in range(group.num_columns))
    need, free = values * 4 + (1 << 20), shutil.disk_usage(folder).free
    if need > free:
        raise UsageError(
            f"{folder}: the uncompressed copy of the packed data needs about {need / 2**30:.1f} "
            f"GiB and only {free / 2**30:.1f} GiB are free"
        )


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``lock`` (other processes wait). On a file system without
    locks every process converts by itself; the copies are identical and replace each other
    atomically, as they do on Windows (no ``fcntl``)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock, "a+") as handle:
        with suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_json(path: Path, value: dict) -> None:
    partial = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex}")
    partial.write_text(json.dumps(value, indent=1), encoding="utf-8")
    os.replace(partial, path)


class PackedRows(Sequence[PackedRow]):
    """The rows of a mapped packed-data copy. ``rows[i]`` holds read-only NumPy views into the
    mapping (no copy; int32 tokens, int64 pair ids). Only the pages of rows read are mapped in,
    and every RELEASE_EVERY reads the process lets go of them (the data stays valid: pages are
    mapped in again from the file, or the kernel's page cache, when a view is read again), so the
    resident memory does not grow with the rows an epoch has read."""

    def __init__(self, path: Path, info: dict):
        import pyarrow as pa

        with open(path, "rb") as handle:
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)  # also on Windows
        if hasattr(mmap, "MADV_RANDOM"):
            self._map.madvise(mmap.MADV_RANDOM)  # no read-around: rows are read in any order
        self._reader = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(self._map)))
        if self._reader.num_record_batches != len(info["batch_rows"]):
            raise UsageError(f"{path}: damaged (not the batches its manifest lists); delete it")
        self.columns = self._reader.schema.names
        self._starts = np.cumsum([0, *info["batch_rows"]])
        self._digest = info["digest"]
        self._views = functools.lru_cache(maxsize=32)(self._batch_views)
        self._reads = 0

    def _batch_views(self, b: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        batch = self._reader.get_batch(b)
        return {
            name: (batch.column(name).offsets.to_numpy(), batch.column(name).values.to_numpy())
            for name in self.columns
        }

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index) -> PackedRow:
        i = operator.index(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"row {index} out of range ({len(self)} rows)")
        self._reads += 1
        if self._reads % RELEASE_EVERY == 0 and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)
        b = int(np.searchsorted(self._starts, i, side="right")) - 1
        j = i - int(self._starts[b])
        views = self._views(b)

        def view(name: str) -> np.ndarray:
            offsets, values = views[name]
            return values[offsets[j] : offsets[j + 1]]

        return PackedRow(*map(view, REQUIRED), view(PAIRS) if PAIRS in views else None)

    def digest(self) -> str:
        """Hex sha256 of everything training reads: for each column (input_ids, labels,
        position_ids, seq_lengths and, for DPO, pair_ids) the row lengths and the values of all
        rows in order, as stored in the mapped copy (little-endian int32, pair ids int64), and
        the row count. It changes with any value or row boundary, and does not depend on how the
        rows are split into files, row groups or batches. Computed while converting; free."""
        return self._digest


def epoch_order(n_rows: int, micro_batch_rows: int, seed: int, epoch: int, shuffle: bool):
    """Micro-batches (lists of row indices) of one epoch, shuffled per (seed, epoch)."""
    order = np.arange(n_rows)
    if shuffle:
        np.random.default_rng([seed, epoch]).shuffle(order)
    return [order[i : i + micro_batch_rows].tolist() for i in range(0, n_rows, micro_batch_rows)]


def collate(rows: Sequence[PackedRow], pad_id: int = 0) -> dict:
    """Tensors for one micro-batch: rows padded to the longest (padding is its own segment:
    positions from 0, labels -100), plus per-document spans for sequence log-probs. Each row is
    copied once, from its mapped views straight into the int64 batch."""
    import torch

    length = max(len(r.input_ids) for r in rows)
    ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    labels = np.full((len(rows), length), IGNORE_INDEX, dtype=np.int64)
    positions = np.empty((len(rows), length), dtype=np.int64)
    pad_positions = np.arange(length)
    docs = []  # (row, start, length, pair id)
    for b, r in enumerate(rows):
        n = len(r.input_ids)
        ids[b, :n] = r.input_ids
        labels[b, :n] = r.labels
        positions[b, :n] = r.position_ids
        positions[b, n:] = pad_positions[: length - n]
        seg = np.asarray(r.seq_lengths, dtype=np.int64)
        starts = np.cumsum(seg) - seg
        pairs = r.pair_ids.tolist() if r.pair_ids is not None else [-1] * len(seg)
        docs.extend(zip([b] * len(seg), starts.tolist(), seg.tolist(), pairs, strict=True))
    return {
        "input_ids": torch.from_numpy(ids),
        "labels": torch.from_numpy(labels),
        "position_ids": torch.from_numpy(positions),
        "docs": docs,
    }
