"""Reading and writing training records for the curation commands (dedup, decontaminate).

Kept records are written unchanged: JSONL lines are copied byte for byte, Parquet rows are
re-written with the input's own schema. Every problem names the file and line (Parquet: row).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.data.conversation import (
    MESSAGE_FIELDS,
    BadRecordError,
    message_role,
    message_text,
)
from plamo_fast.errors import UsageError

PARQUET_SUFFIXES = (".parquet",)
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
# Fields read by default: user turns of conversations (the fields and message shapes of
# plamo_fast.data.conversation), and the prompt-like fields of instruction datasets
# (Alpaca/Dolly `instruction`/`input`, QA `question`).
TEXT_FIELDS = ("prompt", "instruction", "input", "question", "query")


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
        number = 0
        for batch in _parquet_batches(path):
            try:
                records = batch.to_pylist()
            except UnicodeDecodeError as exc:
                raise BadRecordError(
                    f"{path}: rows {number + 1}-{number + batch.num_rows}: invalid UTF-8 in a "
                    f"string column ({exc.reason})"
                ) from None
            for record in records:
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


def _parquet_batches(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        return
    try:
        file = pq.ParquetFile(path)
        yield from file.iter_batches(batch_size=4096)
    except (pa.ArrowException, OSError) as exc:
        raise BadRecordError(f"{path}: unreadable Parquet file: {exc}") from None


def _parse_line(number: int, raw: bytes) -> Row:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Row(number, raw, None, f"invalid UTF-8 at byte {exc.start}")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return Row(number, raw, None, f"malformed JSON: {exc}")
    except RecursionError:
        return Row(number, raw, None, "malformed JSON: nested too deeply")
    if b"\\u" in raw and _LONE_SURROGATE.search(raw) and _has_surrogate(record):
        return Row(number, raw, None, "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)")
    if not isinstance(record, dict):
        return Row(number, raw, None, f"expected a JSON object, got {type(record).__name__}")
    return Row(number, raw, record)


_LONE_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def _has_surrogate(value) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def where(path: Path, row: Row) -> str:
    return f"{path}:{row.number}" if row.number else str(path)


def user_texts(record: dict, extra_fields: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``(field, text)`` for every user-side text of a record: user turns of ``messages`` /
    ``conversations`` (ShareGPT ``from``/``value`` too), ``prompt`` (a string or messages),
    ``instruction``, ``input``, ``question``, ``query``, and ``extra_fields``. A field that is
    null (as Parquet stores a column a row lacks) counts as absent."""
    found: list[tuple[str, str]] = []
    for key in MESSAGE_FIELDS:
        if record.get(key) is not None:
            found.extend(_user_turns(record[key], key))
    extra = tuple(
        f for f in dict.fromkeys(extra_fields) if f not in (*MESSAGE_FIELDS, *TEXT_FIELDS)
    )
    for key in (*TEXT_FIELDS, *extra):
        value = record.get(key)
        if isinstance(value, str):
            if value.strip():
                found.append((key, value))
        elif isinstance(value, list):
            found.extend(_user_turns(value, key, every_role=key in extra))
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
        if not every_role and str(message_role(message)).lower() not in ("user", "human"):
            continue  # assistant/system/tool turns are not checked (their content may be null)
        text = message_text(message)
        if text is None:
            raise BadRecordError(f"{key}[{i}] is a user turn without text content")
        turns.append((f"{key}[{i}]", text))
    return turns


def record_text(record: dict) -> str:
    """The whole record as canonical JSON (sorted keys), the ``--key record`` text of dedup:
    field names and non-string values take part, so labels 0 and 1 differ."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)


def output_paths(
    inputs: list[Path], out: Path, report: Path | None = None
) -> tuple[bool, list[Path]]:
    """``(single_file, paths)``: one input and an ``out`` with its suffix names a file;
    otherwise ``out`` is a folder holding each input under its own name. Refuses a report that
    is the output or lies in the output folder, and inputs that would share a name there.
    Whether ``out`` and the report may be written where they are named (not over an input, the
    current directory, a home directory, or a folder that is not our own output) is decided by
    :func:`plamo_fast.outputs.check_output` when they are written."""
    if report is not None and report.resolve() == out.resolve():
        raise UsageError(f"report {report} is the output; name another file")
    if len(inputs) == 1 and out.suffix.lower() == inputs[0].suffix.lower():
        return True, [out]
    if out.suffix.lower() in (*PARQUET_SUFFIXES, *JSONL_SUFFIXES):
        raise UsageError(
            f"{len(inputs)} inputs are written to a folder, one file each: -o {out} names a "
            "file (give a folder, or one input with the same suffix)"
        )
    if report is not None and report.resolve().is_relative_to(out.resolve()):
        raise UsageError(f"report {report} is inside the output folder {out}; put it elsewhere")
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
