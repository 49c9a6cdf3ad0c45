"""Arrow columns read in place by native code: a string array's offsets, data and validity
buffers as numpy views of the array's own memory (no copy, no Python object per row; not through
``to_numpy``, which imports pandas), and what Python type a column's values take when a record
is read as a dict (``to_pylist``), which tells whether the row-by-row rules of a command can be
applied to the column as a whole."""

from __future__ import annotations

import numpy as np


def string_buffers(array) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, int] | None]:
    """``(offsets, data, validity)`` of an Arrow ``string`` or ``large_string`` array: its
    offsets (int32 or int64, one more than its rows, its slice only) into the data bytes (the
    whole buffer), and its :func:`validity_bits`."""
    import pyarrow as pa

    _, offsets, data = array.buffers()
    kind = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets, dtype=kind)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offsets, data, validity_bits(array)


def float64_values(array) -> np.ndarray:
    """The values of a float64 Arrow array without nulls, a view of its buffer."""
    values = np.frombuffer(array.buffers()[1], dtype=np.float64)
    return values[array.offset : array.offset + len(array)]


def validity_bits(array) -> tuple[np.ndarray, int] | None:
    """The validity bitmap of an Arrow array (bit i, least significant first, is row i -
    offset) and the bit of its first row; None when it has no null."""
    if array.null_count == 0:
        return None
    bitmap = array.buffers()[0]
    if bitmap is None:  # a null-typed array: every row null, no bitmap
        return np.zeros((len(array) + 7) // 8, dtype=np.uint8), 0
    return np.frombuffer(bitmap, dtype=np.uint8), array.offset


def value_kind(arrow_type) -> str | None:
    """The Python type of the non-null values of an Arrow type read into dicts: ``"str"``,
    ``"number"`` (int or float), ``"list"``, ``"other"`` (never any of these: bool, bytes,
    dates and times, decimals, dicts), or None when that depends on more than the type
    (dictionary, extension, view and union types)."""
    import pyarrow as pa

    t = pa.types
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "str"
    if t.is_integer(arrow_type) or t.is_floating(arrow_type):
        return "number"
    lists = (t.is_list, t.is_large_list, t.is_fixed_size_list, t.is_map)
    if any(is_kind(arrow_type) for is_kind in lists):
        return "list"
    others = (
        t.is_boolean, t.is_null, t.is_temporal, t.is_decimal, t.is_binary, t.is_large_binary,
        t.is_fixed_size_binary, t.is_struct,
    )  # fmt: skip
    if any(is_kind(arrow_type) for is_kind in others):
        return "other"
    return None
