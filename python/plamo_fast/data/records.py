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


def iter_rows(path: Path) -> Iterator[tuple[int, dict | BadRecordError]]:
    """``(line_or_row_number, record)`` for each record; a bad line (malformed JSON, invalid
    UTF-8, a lone surrogate, not an object) yields a :class:`BadRecordError` with the reason
    instead. Reading is :func:`plamo_fast.data.curation_io.iter_input`'s; an empty file yields
    nothing."""
    from plamo_fast.data.curation_io import iter_input

    for row in iter_input(Path(path)):
        if row.number == 0:
            continue  # the empty-file marker: callers report empty inputs themselves
        yield row.number, BadRecordError(row.error) if row.error is not None else row.record


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
