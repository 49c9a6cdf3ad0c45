"""Global best-fit-decreasing packing of document lengths into rows of at most ``max_length``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from plamo_fast import _native
from plamo_fast.data.conversation import IGNORE_INDEX


def pack_lengths(
    lengths: Sequence[int] | np.ndarray, max_length: int, seed: int = 0
) -> list[np.ndarray]:
    """Rows of item indices: every item (1..=max_length long) in exactly one row, no row longer
    than ``max_length``, deterministic for a given ``seed`` (which orders items of equal length).
    """
    order, starts = _best_fit_decreasing(lengths, max_length, seed)
    return [order[starts[r] : starts[r + 1]] for r in range(len(starts) - 1)]


def _best_fit_decreasing(
    lengths: Sequence[int] | np.ndarray, max_length: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pack_lengths` as two flat arrays, ``(order, row_starts)``: row ``r`` holds
    ``order[row_starts[r]:row_starts[r + 1]]`` (no Python object per item or row)."""
    if max_length <= 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    array = np.asarray(lengths, dtype=np.int64)
    if array.size and (array.min() < 1 or array.max() > max_length):
        bad = int(np.flatnonzero((array < 1) | (array > max_length))[0])
        raise ValueError(f"item {bad} has length {int(array[bad])}, outside 1..={max_length}")
    items, starts = _native.best_fit_decreasing_rows(
        np.ascontiguousarray(array, dtype=np.uint32), max_length, seed
    )
    order = np.frombuffer(items, dtype="<u4").astype(np.int64)
    return order, np.frombuffer(starts, dtype="<u8").astype(np.int64)


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n), vectorized (per-document use)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _int_array(values: np.ndarray):
    """A ``pyarrow`` int32 or int64 array viewing ``values`` (no copy; unlike ``pa.array``,
    which imports pandas to inspect numpy input, a quarter of a second)."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    kind = {np.dtype(np.int32): pa.int32(), np.dtype(np.int64): pa.int64()}[values.dtype]
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _list_array(values, offsets: np.ndarray):
    """An Arrow list column from flat values and row offsets (large_list past 2**31 values)."""
    import pyarrow as pa

    if offsets[-1] < 2**31:
        return pa.ListArray.from_arrays(_int_array(offsets.astype(np.int32)), values)
    return pa.LargeListArray.from_arrays(_int_array(offsets.astype(np.int64)), values)


def plan_rows(
    lengths: np.ndarray, max_length: int, *, group_sizes: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The packing decision on lengths alone: ``(order, row_doc_offsets)``, the documents in row
    order and where each row's documents start in it. ``group_sizes`` keeps consecutive
    documents together in one row, in order (a DPO pair: prompt+chosen, then prompt+rejected)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    sizes = (
        np.ones(len(lengths), dtype=np.int64)
        if group_sizes is None
        else np.asarray(group_sizes, dtype=np.int64)
    )
    if int(sizes.sum()) != len(lengths) or (sizes.size and sizes.min() < 1):
        raise ValueError("group_sizes must be positive and cover every document")
    group_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    group_lengths = (
        np.add.reduceat(lengths, group_starts) if len(lengths) else np.zeros(0, dtype=np.int64)
    )
    group_order, row_starts = _best_fit_decreasing(group_lengths, max_length, seed)
    order = concat_ranges(group_starts[group_order], sizes[group_order])
    # Documents before each row: the group sizes summed up to each row's first group.
    docs_before = np.concatenate([[0], np.cumsum(sizes[group_order])]).astype(np.int64)
    return order, docs_before[row_starts]


def row_chunks(
    order: np.ndarray, row_doc_offsets: np.ndarray, lengths: np.ndarray, max_tokens: int
):
    """Splits planned rows into consecutive chunks of about ``max_tokens`` tokens: yields
    ``(order_chunk, row_doc_offsets_chunk)`` with offsets rebased to the chunk."""
    row_tokens = np.add.reduceat(lengths[order], row_doc_offsets[:-1]) if len(order) else order
    row_end_tokens = np.cumsum(row_tokens)
    start_row = 0
    rows = len(row_doc_offsets) - 1
    if rows == 0:  # one empty chunk, so that writers still learn the schema
        yield order[:0], row_doc_offsets[:1]
    while start_row < rows:
        base = row_end_tokens[start_row - 1] if start_row else 0
        end_row = int(np.searchsorted(row_end_tokens, base + max_tokens, side="right"))
        end_row = max(end_row, start_row + 1)
        first, last = row_doc_offsets[start_row], row_doc_offsets[end_row]
        yield order[first:last], row_doc_offsets[start_row : end_row + 1] - first
        start_row = end_row


def gather_table(
    tokens: np.ndarray | str | os.PathLike,
    labels: np.ndarray | str | os.PathLike,
    doc_offsets: np.ndarray,
    order: np.ndarray,
    row_doc_offsets: np.ndarray,
    *,
    doc_ids: np.ndarray,
    source_ids: np.ndarray | None = None,
    pair_ids: np.ndarray | None = None,
    labels_masked: bool = False,
):
    """The ``pyarrow.Table`` of planned rows. ``tokens``/``labels`` are int32 arrays, lists of
    int32 arrays taken end to end (each document within one), or the paths of ``pack``'s spill
    files (little-endian int32 values; with ``labels_masked``, labels as one bit per token):
    only the documents of ``order`` are read, natively, into arrays of this chunk's size (files
    by positional reads, never mapped, so that only the chunk is resident)."""
    import pyarrow as pa

    doc_offsets = np.asarray(doc_offsets, dtype=np.int64)
    order = np.ascontiguousarray(order, dtype=np.int64)
    # This chunk's documents only (not a diff of every document's offsets for each chunk).
    ordered_lengths = doc_offsets[order + 1] - doc_offsets[order]
    row_token_offsets = np.concatenate([[0], np.cumsum(ordered_lengths)])[row_doc_offsets]
    total = int(row_token_offsets[-1])
    out_ids, out_labels, out_positions = (np.empty(total, dtype=np.int32) for _ in range(3))
    spilled = isinstance(tokens, str | os.PathLike)
    if labels_masked and not spilled:
        raise ValueError("labels_masked is for spill files; arrays hold labels as values")
    if isinstance(tokens, list):
        _native.gather_chunks(
            tokens, labels, doc_offsets, order, out_ids, out_labels, out_positions
        )
    elif spilled:
        _native.gather_spilled(
            tokens, labels, doc_offsets, order, out_ids, out_labels, out_positions,
            labels_masked=labels_masked,
        )  # fmt: skip
    else:
        _native.gather_documents(
            np.ascontiguousarray(tokens, dtype=np.int32),
            np.ascontiguousarray(labels, dtype=np.int32),
            doc_offsets,
            order,
            out_ids,
            out_labels,
            out_positions,
        )

    def per_doc(values: np.ndarray, dtype) -> pa.Array:
        return _list_array(_int_array(np.asarray(values).astype(dtype)), row_doc_offsets)

    columns = {
        "input_ids": _list_array(_int_array(out_ids), row_token_offsets),
        "labels": _list_array(_int_array(out_labels), row_token_offsets),
        "position_ids": _list_array(_int_array(out_positions), row_token_offsets),
        "seq_lengths": per_doc(ordered_lengths, np.int32),
        "doc_ids": per_doc(np.asarray(doc_ids)[order], np.int64),
    }
    if source_ids is not None:
        columns["source_ids"] = per_doc(np.asarray(source_ids)[order], np.int32)
    if pair_ids is not None:
        columns["pair_ids"] = per_doc(np.asarray(pair_ids)[order], np.int64)
    return pa.table(columns)


def pack_documents(
    tokens: np.ndarray,
    labels: np.ndarray,
    doc_offsets: np.ndarray,
    max_length: int,
    *,
    doc_ids: np.ndarray | None = None,
    source_ids: np.ndarray | None = None,
    pair_ids: np.ndarray | None = None,
    group_sizes: np.ndarray | None = None,
    seed: int = 0,
):
    """Packs documents stored back to back (``tokens[doc_offsets[i]:doc_offsets[i + 1]]``) into
    rows and returns a ``pyarrow.Table`` with the columns of ``plamo-fast pack``: ``input_ids``,
    ``labels`` (-100 also on each document's first token, so no target crosses a document
    boundary), ``position_ids`` (restarting per document), ``seq_lengths``, ``doc_ids`` and,
    when given, ``source_ids`` and ``pair_ids`` (see :func:`plan_rows` for ``group_sizes``).

    The packing decision and the token copy run natively; token-level data is never indexed
    from Python."""
    doc_offsets = np.asarray(doc_offsets, dtype=np.int64)
    lengths = np.diff(doc_offsets)
    if doc_ids is None:
        doc_ids = np.arange(len(lengths), dtype=np.int64)
    order, row_doc_offsets = plan_rows(lengths, max_length, group_sizes=group_sizes, seed=seed)
    return gather_table(
        tokens,
        labels,
        doc_offsets,
        order,
        row_doc_offsets,
        doc_ids=doc_ids,
        source_ids=source_ids,
        pair_ids=pair_ids,
    )


def pad_rows(table, max_length: int, pad_id: int):
    """Pads every row of a packed table to ``max_length``: ``pad_id`` tokens labelled -100 with
    positions from 0, recorded as a trailing segment in ``seq_lengths`` whose ``doc_ids`` (and
    ``source_ids``/``pair_ids``) entry is -1, so segment lengths still sum to the row length."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = np.asarray(pc.list_value_length(table["input_ids"]).to_numpy(), dtype=np.int64)
    pads = max_length - lengths
    rows = len(lengths)
    token_row = np.repeat(np.arange(rows), lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    new_index = token_row * max_length + (np.arange(offsets[-1]) - offsets[:-1][token_row])
    new_offsets = np.arange(rows + 1, dtype=np.int64) * max_length

    def padded_tokens(name: str, fill) -> pa.Array:
        values = table[name].combine_chunks().flatten().to_numpy()
        out = np.full(rows * max_length, fill, dtype=np.int32)
        out[new_index] = values
        if name == "position_ids":  # positions of the padding restart at 0
            pad_row = np.repeat(np.arange(rows), pads)
            starts = np.concatenate([[0], np.cumsum(pads)])[:-1]
            pad_pos = np.arange(int(pads.sum())) - starts[pad_row]
            mask = np.ones(rows * max_length, dtype=bool)
            mask[new_index] = False
            out[mask] = pad_pos
        return pa.ListArray.from_arrays(_int_array(new_offsets.astype(np.int32)), _int_array(out))

    def with_pad_segment(name: str, pad_value, dtype) -> pa.Array:
        column = table[name].combine_chunks()
        values = column.flatten().to_numpy()
        counts = np.asarray(pc.list_value_length(column).to_numpy(), dtype=np.int64)
        has_pad = pads > 0
        seg_offsets = np.concatenate([[0], np.cumsum(counts + has_pad)])
        out = np.empty(int(seg_offsets[-1]), dtype=dtype)
        row_of = np.repeat(np.arange(rows), counts)
        seg_index = seg_offsets[:-1][row_of] + (
            np.arange(len(values)) - np.concatenate([[0], np.cumsum(counts)])[:-1][row_of]
        )
        out[seg_index] = values
        pad_slots = seg_offsets[1:][has_pad] - 1
        out[pad_slots] = pads[has_pad] if pad_value is None else pad_value
        return pa.ListArray.from_arrays(_int_array(seg_offsets.astype(np.int32)), _int_array(out))

    columns = {
        "input_ids": padded_tokens("input_ids", pad_id),
        "labels": padded_tokens("labels", IGNORE_INDEX),
        "position_ids": padded_tokens("position_ids", 0),
        "seq_lengths": with_pad_segment("seq_lengths", None, np.int32),
    }
    for name, dtype in (("doc_ids", np.int64), ("source_ids", np.int32), ("pair_ids", np.int64)):
        if name in table.column_names:
            columns[name] = with_pad_segment(name, -1, dtype)
    return pa.table(columns)
