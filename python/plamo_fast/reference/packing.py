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
