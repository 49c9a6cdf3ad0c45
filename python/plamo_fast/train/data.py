"""Packed training rows (the Parquet `plamo-fast pack` writes) and micro-batches.

A row holds several documents back to back; ``position_ids`` restart at 0 per document, which
is how the model keeps documents from attending to each other (transformers builds a
block-diagonal causal mask from them for SDPA/eager, and flash-attention uses them as varlen
boundaries). ``labels`` are -100 where nothing is trained, including each document's first
token, so the one-token shift never predicts across documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plamo_fast.errors import UsageError

IGNORE = -100


@dataclass
class PackedRow:
    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray
    seq_lengths: np.ndarray
    pair_ids: np.ndarray | None = None  # per document (DPO); -1 for padding

    @property
    def trained_tokens(self) -> int:
        return int(np.count_nonzero(self.labels[1:] != IGNORE))


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


def load_packed(paths: list[str], *, need_pairs: bool = False) -> list[PackedRow]:
    """Every row of the packed Parquet files, in file order. DPO data (``pair_ids``) is refused
    for SFT, which would train the rejected answers."""
    import pyarrow.parquet as pq

    rows: list[PackedRow] = []
    for file in parquet_files(paths):
        table = pq.read_table(file)
        names = set(table.column_names)
        missing = {"input_ids", "labels", "position_ids", "seq_lengths"} - names
        if missing:
            raise UsageError(f"{file}: not packed data, missing columns {sorted(missing)}")
        if need_pairs and "pair_ids" not in names:
            raise UsageError(f"{file}: DPO needs rows packed with --kind dpo (no pair_ids)")
        if not need_pairs and "pair_ids" in names:
            raise UsageError(f"{file}: DPO pairs (pair_ids); SFT needs rows packed with --kind sft")
        columns = {n: table.column(n).to_pylist() for n in names & _COLUMNS}
        for i in range(table.num_rows):
            row = PackedRow(
                np.asarray(columns["input_ids"][i], dtype=np.int64),
                np.asarray(columns["labels"][i], dtype=np.int64),
                np.asarray(columns["position_ids"][i], dtype=np.int64),
                np.asarray(columns["seq_lengths"][i], dtype=np.int64),
                np.asarray(columns["pair_ids"][i], dtype=np.int64)
                if "pair_ids" in columns
                else None,
            )
            if int(row.seq_lengths.sum()) != len(row.input_ids):
                raise UsageError(f"{file}: row {i + 1}: seq_lengths do not add up to the row")
            rows.append(row)
    if not rows:
        raise UsageError(f"{', '.join(paths)}: no rows")
    if not any(r.trained_tokens for r in rows):
        raise UsageError(f"{', '.join(paths)}: no trained token in any row (all labels are -100)")
    return rows


def _pairs(columns: dict, i: int) -> np.ndarray | None:
    return np.asarray(columns["pair_ids"][i], dtype=np.int64) if "pair_ids" in columns else None


_COLUMNS = {"input_ids", "labels", "position_ids", "seq_lengths", "pair_ids"}


def epoch_order(n_rows: int, micro_batch_rows: int, seed: int, epoch: int, shuffle: bool):
    """Micro-batches (lists of row indices) of one epoch, shuffled per (seed, epoch)."""
    order = np.arange(n_rows)
    if shuffle:
        np.random.default_rng([seed, epoch]).shuffle(order)
    return [order[i : i + micro_batch_rows].tolist() for i in range(0, n_rows, micro_batch_rows)]


def collate(rows: list[PackedRow], pad_id: int = 0) -> dict:
    """Tensors for one micro-batch: rows padded to the longest (padding is its own segment:
    positions from 0, labels -100), plus per-document spans for sequence log-probs."""
    import torch

    length = max(len(r.input_ids) for r in rows)
    ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    labels = np.full((len(rows), length), IGNORE, dtype=np.int64)
    positions = np.zeros((len(rows), length), dtype=np.int64)
    docs = []  # (row, start, length, pair id)
    for b, r in enumerate(rows):
        n = len(r.input_ids)
        ids[b, :n] = r.input_ids
        labels[b, :n] = r.labels
        positions[b, :n] = r.position_ids
        positions[b, n:] = np.arange(length - n)
        start = 0
        for d, seg in enumerate(r.seq_lengths.tolist()):
            pair = int(r.pair_ids[d]) if r.pair_ids is not None else -1
            docs.append((b, start, seg, pair))
            start += seg
    return {
        "input_ids": torch.from_numpy(ids),
        "labels": torch.from_numpy(labels),
        "position_ids": torch.from_numpy(positions),
        "docs": docs,
    }
