"""What dedup and decontaminate share: their outputs, walking the inputs with bad-record
handling, the provenance guard, progress, and the run summary."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.data.accounting import check_kept
from plamo_fast.data.curation_io import (
    BadRecordError,
    Row,
    input_format,
    input_size,
    iter_input,
    where,
)
from plamo_fast.data.provenance import ProvenanceGuard
from plamo_fast.outputs import atomic_output

BATCH = 4096


@dataclass
class CurationSummary:
    records_read: int = 0
    records_kept: int = 0
    bad_records: int = 0
    dropped: Counter = field(default_factory=Counter)
    bad_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "records_read": self.records_read,
            "records_kept": self.records_kept,
            "bad_records_skipped": self.bad_records,
            "dropped": dict(sorted(self.dropped.items())),
            "bad_examples": self.bad_examples[:20],
        }

    def check_kept(self, command: str, allow_empty: bool) -> None:
        """No silent empty output (:func:`plamo_fast.data.accounting.check_kept`): every record
        read (bad ones too) and the reasons those not kept were dropped; the first bad record
        is named when there is one."""
        dropped = {**self.dropped, "bad_records_skipped": self.bad_records}
        hint = f"first bad record: {self.bad_examples[0]}" if self.bad_examples else None
        read = self.records_read + self.bad_records
        check_kept(command, read, self.records_kept, dropped, allow_empty, hint=hint)


def number_key(row: Row) -> str:
    """What a row's number is, as reports name it: ``line`` (a JSONL line or Parquet row),
    ``record`` (the Nth element of a JSON array, 1-based) or ``row`` (a saved dataset's), as
    :func:`plamo_fast.data.curation_io.where` tells them apart in messages."""
    return row.unit or "line"


def location(path: Path, number: int, key: str) -> dict:
    """Where a record is, in reports: ``{"file": path, key: number}`` (``key`` from
    :func:`number_key`)."""
    return {"file": str(path), key: number}


@contextmanager
def curation_outputs(
    output: Path,
    report: Path | None,
    *,
    folder: bool,
    command: str,
    inputs: Iterable[str | os.PathLike],
    overwrite: bool,
) -> Iterator[tuple[Path, Path | None]]:
    """Partial paths of the output (a folder when ``folder``, else a file) and of the report
    (None without one), each checked against ``inputs`` first and published when the block
    ends without error (see :func:`plamo_fast.outputs.atomic_output`)."""
    options = {"command": command, "inputs": list(inputs), "overwrite": overwrite}
    with atomic_output(output, folder=folder, **options) as out:
        if report is None:
            yield out, None
            return
        with atomic_output(report, folder=False, **options) as report_partial:
            yield out, report_partial


class ReportWriter:
    """One JSON line per removed record (``None`` path: no report)."""

    def __init__(self, path: Path | None):
        # Closed by close(); the writer outlives any one block.
        self._file = open(path, "w", encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, entry: dict) -> None:
        if self._file:
            self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._file:
            self._file.close()


class ReportList:
    """The report's entries kept in memory (the Python API's reports)."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def write(self, entry: dict) -> None:
        self.entries.append(entry)

    def close(self) -> None:
        pass


def good_rows(
    path: Path,
    *,
    skip_bad: bool,
    guard: ProvenanceGuard,
    summary: CurationSummary,
    report: ReportWriter,
    advance: Callable[[int], None],
) -> Iterator[Row]:
    """The rows of ``path`` that parse and pass the provenance guard. A bad row raises
    :class:`BadRecordError` naming file and line, or is counted with ``skip_bad``; a guarded row
    is reported and counted as dropped."""
    for row in iter_input(path):
        advance(len(row.raw) if row.raw is not None else 0)
        if row.error is not None:
            reject_bad(path, row, row.error, skip_bad, summary)
            continue
        summary.records_read += 1
        reason = guard.drop_reason(row.record, path)
        if reason is not None:
            summary.dropped["provenance"] += 1
            report.write({**location(path, row.number, number_key(row)), "reason": reason})
            continue
        yield row
    if input_format(path) != "jsonl":  # Parquet and saved datasets: no raw bytes per row
        advance(input_size(path))


def reject_bad(path: Path, row: Row, message: str, skip_bad: bool, summary: CurationSummary):
    text = f"{where(path, row)}: {message}"
    if not skip_bad:
        raise BadRecordError(text + " (pass --skip-bad to count and skip bad records)")
    summary.bad_records += 1
    summary.bad_examples.append(text)


def batched(rows: Iterator[Row], size: int = BATCH) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def byte_progress(label: str, inputs: list[Path], show: bool):
    """``(advance(nbytes), stop())`` over the total size of the inputs. The bar is redrawn
    after each 1/500 of the total (at least 64 KiB), not per record."""
    total = sum(input_size(p) for p in inputs)
    update, stop = progress_bar(label, total, transfer=True, show=show)
    step = max(total // 500, 1 << 16)
    done, shown = [0], [0]

    def advance(nbytes: int) -> None:
        done[0] += nbytes
        if done[0] - shown[0] >= step:
            shown[0] = done[0]
            update(done[0])

    return advance, stop
