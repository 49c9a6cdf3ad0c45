"""Reference best-fit-decreasing: for each item, longest first, scan every open row for the
tightest fit. Quadratic, obviously correct; the native packer must reach the same row count and
the same multiset of row lengths (which row of equal free space takes an item does not change
what follows)."""

from __future__ import annotations


def best_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    free: list[int] = []
    for item in order:
        best = None
        for r, space in enumerate(free):
            if space >= lengths[item] and (best is None or space < free[best]):
                best = r
        if best is None:
            rows.append([])
            free.append(capacity)
            best = len(rows) - 1
        rows[best].append(item)
        free[best] -= lengths[item]
    return rows


def label_mask_bits(ids: list[int], labels: list[int]) -> bytes | None:
    """Reference of pack's compact label spill (``_native.LabelMaskSpill``): one bit per token,
    least significant bit first, set where the label is the token, clear where it is -100; the
    last byte padded with clear bits. None when a label is neither."""
    bits = []
    for token, label in zip(ids, labels, strict=True):
        if label == token:
            bits.append(1)
        elif label == -100:
            bits.append(0)
        else:
            return None
    out = bytearray()
    for start in range(0, len(bits), 8):
        out.append(sum(bit << j for j, bit in enumerate(bits[start : start + 8])))
    return bytes(out)
