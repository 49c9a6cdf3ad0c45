"""Reading ``pack``'s input records (JSONL or Parquet): each is a conversation to render (its
shapes are :mod:`plamo_fast.data.conversation`'s) or a pre-tokenized document, checked here.
Problems raise :class:`BadRecordError` with the reason; ``pack`` names the file and line
(1-based; Parquet: row)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plamo_fast.data.conversation import (
    IGNORE_INDEX,
    BadRecordError,
    Conversation,
    preference_conversations,
    sft_conversation,
)

# Token ids are stored as int32.
TOKEN_ID_LIMIT = 2**31
# Names of a 0/1 mask of the trained tokens (transformers' and TRL's).
MASK_FIELDS = ("assistant_masks", "completion_mask")


@dataclass
class Tokenized:
    input_ids: np.ndarray  # int32
    labels: np.ndarray  # int32, IGNORE_INDEX where not trained


def iter_rows(path: Path) -> Iterator[tuple[int, str, dict | BadRecordError]]:
    """``(number, where, record)`` for each record: its 1-based line (Parquet: row; JSON array:
    element) and ``FILE:LINE`` (a JSON array's: ``FILE:record N``; a table's: ``row N``); a bad
    line (malformed JSON, invalid UTF-8, a lone surrogate, not an object) yields a
    :class:`BadRecordError` with the reason instead. Reading is
    :func:`plamo_fast.data.curation_io.iter_input`'s (a path, or a ``TableInput``); an empty
    file yields nothing."""
    from plamo_fast.data.curation_io import iter_input, where

    for row in iter_input(path):
        if row.number == 0:
            continue  # the empty-file marker: callers report empty inputs themselves
        record = BadRecordError(row.error) if row.error is not None else row.record
        yield row.number, where(path, row), record


def read_example(
    record, kind: str, last_turn_only: bool, vocab_size: int | None
) -> list[Conversation] | Tokenized:
    """One record: its conversations (one for SFT, chosen and rejected for DPO) or, for an SFT
    record holding ``input_ids``, the checked pre-tokenized document."""
    if kind == "dpo":
        return list(preference_conversations(record))
    if isinstance(record, dict) and record.get("input_ids") is not None:
        return tokenized_example(record, vocab_size)
    return [sft_conversation(record, last_turn_only)]


def tokenized_example(record: dict, vocab_size: int | None) -> Tokenized:
    """A pre-tokenized row: ``input_ids`` with ``labels`` (IGNORE_INDEX or a token id) or a 0/1
    mask (``assistant_masks`` / ``completion_mask``) of the same length. Token ids must lie in
    ``[0, vocab_size)`` when the tokenizer is known, else be valid int32 ids."""
    limit = vocab_size or TOKEN_ID_LIMIT
    below = f"below the vocabulary size {vocab_size}" if vocab_size else f"below {limit}"
    ids = _integers(record["input_ids"], "input_ids")
    bad = np.flatnonzero((ids < 0) | (ids >= limit))
    if bad.size:
        raise BadRecordError(
            f"input_ids[{bad[0]}] = {ids[bad[0]]} is not a token id (0 or more, {below})"
        )
    mask_field = next((f for f in MASK_FIELDS if record.get(f) is not None), None)
    if record.get("labels") is not None:
        labels = _integers(record["labels"], "labels", length=len(ids))
        bad = np.flatnonzero((labels != IGNORE_INDEX) & ((labels < 0) | (labels >= limit)))
        if bad.size:
            raise BadRecordError(
                f"labels[{bad[0]}] = {labels[bad[0]]} is neither {IGNORE_INDEX} nor a token id "
                f"(0 or more, {below})"
            )
    elif mask_field is not None:
        mask = _integers(record[mask_field], mask_field, length=len(ids), bools=True)
        bad = np.flatnonzero((mask != 0) & (mask != 1))
        if bad.size:
            raise BadRecordError(f"{mask_field}[{bad[0]}] = {mask[bad[0]]} is not 0 or 1")
        labels = np.where(mask == 1, ids, IGNORE_INDEX)
    else:
        raise BadRecordError(
            "pre-tokenized rows need 'labels' or a mask ('assistant_masks' or 'completion_mask')"
        )
    return Tokenized(ids.astype(np.int32), labels.astype(np.int32))


def _integers(value, field: str, length: int | None = None, bools: bool = False) -> np.ndarray:
    """``value`` as an int64 array: a non-empty list of integers (``length`` of them if given;
    ``bools``: true/false count as 1/0)."""
    allowed = {int, bool} if bools else {int}
    if not isinstance(value, list) or not value:
        raise BadRecordError(f"{field} must be a non-empty list of integers")
    if length is not None and len(value) != length:
        raise BadRecordError(f"input_ids has {length} tokens but {field} has {len(value)}")
    if not set(map(type, value)) <= allowed:
        at = next(i for i, x in enumerate(value) if type(x) not in allowed)
        raise BadRecordError(f"{field}[{at}] = {value[at]!r:.40} is not an integer")
    try:
        return np.asarray(value, dtype=np.int64)
    except OverflowError:
        raise BadRecordError(f"{field} holds an integer beyond 64 bits") from None


# --- pre-tokenized Parquet, a record batch at a time ------------------------------------------

# Columns whose presence may make a row without input_ids a conversation: such files are read
# record by record.
_CONVERSATION_COLUMNS = ("messages", "conversations", "conversation", "prompt", "instruction")
# Tokens per record batch of the columnar path (input_ids and labels: 8 MiB of int32).
COLUMNAR_BATCH = 1 << 20


@dataclass
class TokenizedBatch:
    """The pre-tokenized rows of one record batch, checked together: ``problems`` maps a row
    (0-based in the batch) to the reason it is refused (the messages of
    :func:`tokenized_example`); the other rows are ``lengths`` long, their tokens back to back in
    ``input_ids`` / ``labels`` (int32, rows in order, refused rows left out)."""

    problems: dict[int, str]
    good: np.ndarray  # bool per row
    lengths: np.ndarray  # int64, good rows only
    input_ids: np.ndarray
    labels: np.ndarray


def columnar_fields(schema) -> list[str] | None:
    """The columns to read when a Parquet file's rows can be checked a batch at a time: an
    ``input_ids`` list of integers and ``labels`` or a mask (lists of integers; a mask may be
    booleans), and no conversation column. None when the file must be read record by record."""
    import pyarrow as pa

    names = schema.names
    if any(c in names for c in _CONVERSATION_COLUMNS) or "input_ids" not in names:
        return None

    def integer_list(name: str, bools: bool) -> bool:
        kind = schema.field(name).type
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
            return False
        value = kind.value_type
        return (pa.types.is_integer(value) and not pa.types.is_uint64(value)) or (
            bools and pa.types.is_boolean(value)
        )

    fields = ["input_ids", *(f for f in ("labels", *MASK_FIELDS) if f in names)]
    if len(fields) == 1 or not all(integer_list(f, f in MASK_FIELDS) for f in fields):
        return None
    return fields


def _list_parts(column) -> tuple[np.ndarray, np.ndarray] | None:
    """``(offsets, values)`` of a list column (offsets from 0, int64; values int32 or int64),
    or None when it holds a null list or a null value."""
    import pyarrow as pa

    if column.null_count:
        return None
    values = column.flatten()
    if values.null_count:
        return None
    offsets = np.asarray(column.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]
    if pa.types.is_boolean(values.type) or values.type.bit_width < 32:
        values = values.cast(pa.int32())
    elif pa.types.is_unsigned_integer(values.type):
        values = values.cast(pa.int64())
    return offsets, values.to_numpy()


def tokenized_batch(batch, fields: list[str], vocab_size: int | None) -> TokenizedBatch | None:
    """Checks the pre-tokenized rows of a record batch together (the rules and messages of
    :func:`tokenized_example`, vectorised); None when a column holds a null (read that batch
    record by record)."""
    label_field = fields[1]
    ids_parts = _list_parts(batch.column("input_ids"))
    label_parts = _list_parts(batch.column(label_field))
    if ids_parts is None or label_parts is None:
        return None
    (ids_off, ids), (lab_off, labs) = ids_parts, label_parts
    rows = len(ids_off) - 1
    limit = vocab_size or TOKEN_ID_LIMIT
    below = f"below the vocabulary size {vocab_size}" if vocab_size else f"below {limit}"
    id_len, lab_len = np.diff(ids_off), np.diff(lab_off)
    problems: dict[int, str] = {}

    def refuse(where_rows: np.ndarray, message) -> None:
        for row in where_rows.tolist():
            problems.setdefault(row, message(row))

    def first_bad(bad: np.ndarray, offsets: np.ndarray):
        """Rows holding a bad value, and each one's first bad position."""
        positions = np.flatnonzero(bad)
        row_of = np.searchsorted(offsets, positions, side="right") - 1
        bad_rows, first = np.unique(row_of, return_index=True)
        return bad_rows, positions[first]

    refuse(np.flatnonzero(id_len == 0), lambda r: "input_ids must be a non-empty list of integers")
    bad_rows, at = first_bad((ids < 0) | (ids >= limit), ids_off)
    where_at = dict(zip(bad_rows.tolist(), at.tolist(), strict=True))
    refuse(
        bad_rows,
        lambda r: (
            f"input_ids[{where_at[r] - ids_off[r]}] = {ids[where_at[r]]} is not a token "
            f"id (0 or more, {below})"
        ),
    )
    refuse(
        np.flatnonzero(lab_len == 0),
        lambda r: f"{label_field} must be a non-empty list of integers",
    )
    refuse(
        np.flatnonzero(lab_len != id_len),
        lambda r: f"input_ids has {id_len[r]} tokens but {label_field} has {lab_len[r]}",
    )
    if label_field == "labels":
        bad = (labs != IGNORE_INDEX) & ((labs < 0) | (labs >= limit))
        what = f"is neither {IGNORE_INDEX} nor a token id (0 or more, {below})"
    else:
        bad = (labs != 0) & (labs != 1)
        what = "is not 0 or 1"
    bad_rows, at = first_bad(bad, lab_off)
    where_at = dict(zip(bad_rows.tolist(), at.tolist(), strict=True))
    refuse(
        bad_rows,
        lambda r: f"{label_field}[{where_at[r] - lab_off[r]}] = {labs[where_at[r]]} {what}",
    )
    good = np.ones(rows, dtype=bool)
    good[list(problems)] = False
    if not good.all():  # keep the good rows' tokens only
        ids = ids[np.repeat(good, id_len)]
        labs = labs[np.repeat(good, lab_len)]
    ids = ids.astype(np.int32, copy=False)
    if label_field == "labels":
        labels = labs.astype(np.int32, copy=False)
    else:
        labels = np.where(labs == 1, ids, np.int32(IGNORE_INDEX)).astype(np.int32, copy=False)
    return TokenizedBatch(problems, good, id_len[good], ids, labels)
