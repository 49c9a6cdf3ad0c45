"""Reading and writing training records for the curation commands (dedup, decontaminate).

Kept records are written unchanged: JSONL lines are copied byte for byte, Parquet rows are
re-written with the input's own schema. Every problem names the file and line (Parquet: row).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.errors import PlamoFastError, UsageError

PARQUET_SUFFIXES = (".parquet",)
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
USER_ROLES = ("user", "human")
# Fields read by default: user turns of conversations, and the prompt-like fields of
# instruction datasets (Alpaca/Dolly `instruction`/`input`, QA `question`).
MESSAGE_FIELDS = ("messages", "conversations", "conversation")
TEXT_FIELDS = ("prompt", "instruction", "input", "question", "query")


class BadRecordError(PlamoFastError, ValueError):
    """A malformed or incomplete input record (the message names the file and line)."""


@dataclass
class Row:
    """One input record: its 1-based line (Parquet: row), raw JSONL bytes, and parsed value
    (or the reason it could not be parsed)."""

    number: int
    raw: bytes | None
    record: dict | None
    error: str | None = None


def input_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise UsageError(f"{path}: unknown input format (expected .jsonl, .json lines or .parquet)")


def iter_input(path: Path) -> Iterator[Row]:
    """Every record of a JSONL or Parquet file; a file without records yields one error row."""
    path = Path(path)
    any_row = False
    if input_format(path) == "parquet":
        import pyarrow.parquet as pq

        number = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                number += 1
                any_row = True
                yield Row(number, None, record)
    else:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                any_row = True
                yield _parse_line(number, raw)
    if not any_row:
        yield Row(0, None, None, "empty file (no records)")


def _parse_line(number: int, raw: bytes) -> Row:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Row(number, raw, None, f"invalid UTF-8 at byte {exc.start}")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return Row(number, raw, None, f"malformed JSON: {exc}")
    if not isinstance(record, dict):
        return Row(number, raw, None, f"expected a JSON object, got {type(record).__name__}")
    return Row(number, raw, record)


def where(path: Path, row: Row) -> str:
    return f"{path}:{row.number}" if row.number else str(path)


def user_texts(record: dict, extra_fields: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``(field, text)`` for every user-side text of a record: user turns of ``messages`` /
    ``conversations`` (ShareGPT ``from``/``value`` too), ``prompt`` (a string or messages),
    ``instruction``, ``input``, ``question``, ``query``, and ``extra_fields``."""
    found: list[tuple[str, str]] = []
    for key in MESSAGE_FIELDS:
        if key in record:
            found.extend(_user_turns(record[key], key))
    for key in (*TEXT_FIELDS, *extra_fields):
        value = record.get(key)
        if isinstance(value, str):
            if value.strip():
                found.append((key, value))
        elif isinstance(value, list):
            found.extend(_user_turns(value, key, every_role=key in extra_fields))
    return found


def _user_turns(value, key: str, every_role: bool = False) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise BadRecordError(f"field {key!r} should be a list of messages")
    turns = []
    for i, message in enumerate(value):
        if isinstance(message, str):
            turns.append((f"{key}[{i}]", message))
            continue
        if not isinstance(message, dict):
            raise BadRecordError(f"{key}[{i}] should be a message object")
        role = message.get("role", message.get("from"))
        content = message.get("content", message.get("value", message.get("text")))
        if not isinstance(content, str):
            raise BadRecordError(f"{key}[{i}] has no string content")
        if every_role or str(role).lower() in USER_ROLES:
            turns.append((f"{key}[{i}]", content))
    return turns


def record_text(record: dict) -> str:
    """Every string value of a record, depth first in key order, joined by newlines (the
    ``--key record`` text of dedup)."""
    parts: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(record)
    return "\n".join(parts)


def output_paths(inputs: list[Path], out: Path) -> tuple[bool, list[Path]]:
    """``(single_file, paths)``: one input and an ``out`` with its suffix names a file;
    otherwise ``out`` is a folder holding each input under its own name."""
    if len(inputs) == 1 and out.suffix.lower() == inputs[0].suffix.lower():
        return True, [out]
    names = [p.name for p in inputs]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise UsageError(
            f"inputs share the file name {clashes[0]!r}; the output folder would hold them "
            "under the same name (rename one)"
        )
    return False, [out / n for n in names]


class RecordWriter:
    """Writes kept records in the input's format: JSONL bytes as read, Parquet rows with the
    input's schema (row groups as they come)."""

    def __init__(self, source: Path, target: Path):
        self.format = input_format(source)
        self.target = target
        self.count = 0
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._schema = pq.read_schema(source)
            self._writer = pq.ParquetWriter(target, self._schema, compression="zstd")
            self._pending: list[dict] = []
        else:
            self._file = open(target, "wb")  # noqa: SIM115 (closed by close())

    def write(self, row: Row) -> None:
        self.count += 1
        if self.format == "parquet":
            self._pending.append(row.record)
            if len(self._pending) >= 8192:
                self._flush()
        else:
            raw = row.raw
            self._file.write(raw if raw.endswith(b"\n") else raw + b"\n")

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            table = pa.Table.from_pylist(self._pending, schema=self._schema)
            self._writer.write_table(table)
            self._pending = []

    def close(self) -> None:
        if self.format == "parquet":
            self._flush()
            self._writer.close()
        else:
            self._file.close()
