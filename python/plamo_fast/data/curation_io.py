"""Reading and writing training records: :func:`iter_input` is the one reader of every command
(pack, dedup, decontaminate, sample, pairs).

An input is JSONL (``.jsonl``, ``.json``, ``.ndjson``: one object a line), a JSON array of
objects (a ``.json``/``.jsonl`` file whose first non-blank character is ``[``, as Alpaca and
Dolly ship), Parquet, a 🤗 datasets folder written by ``Dataset.save_to_disk`` (its
``state.json``, ``dataset_info.json`` and ``.arrow`` files; read with ``datasets.load_from_disk``,
memory-mapped, so the ``datasets`` package of the ``[train]`` extra is needed), or a 🤗 hub
dataset's name (``NAME``, ``ORG/NAME``, ``ORG/NAME:SPLIT``) that is no path, read from the local
cache in offline mode (``HF_HUB_OFFLINE=1``; :func:`hub_dataset`, never downloaded). The
Python API also hands in Arrow tables held in memory (:class:`TableInput`). Every problem
names where it is: ``FILE:N`` for line N of JSONL or row N of Parquet, ``FILE:record N`` for the
Nth element of a JSON array (1-based: ``jq '.[N-1]'``), ``FOLDER:row N`` for row N of a saved
or cached dataset (1-based: ``dataset[N-1]``), ``row N`` for a table's.
A JSON array is read as a stream, one element at a time, so a big array never stands in memory
as Python objects (only its current element, and 1 MiB of text).

Kept records are written (:class:`RecordWriter`, :func:`copy_records`) in the format the caller
names (:func:`output_paths` decides it from the output's name and ``--output-format``): by
default the input's own, JSONL lines copied byte for byte, Parquet rows re-written with the
input's own schema, a JSON array's elements as JSON lines, a dataset's rows as Parquet with its
Arrow schema (features kept) or as JSON lines when the output is named ``.jsonl``; with
``--output-format hf``, a ``save_to_disk`` folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plamo_fast.data.conversation import (
    ALPACA_INPUT,
    MESSAGE_FIELDS,
    BadRecordError,
    is_alpaca,
    message_role,
    message_text,
)
from plamo_fast.errors import UsageError

PARQUET_SUFFIXES = (".parquet",)
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
# The files of a Dataset.save_to_disk folder (with its data-*.arrow shards), and of a
# DatasetDict's (one such folder per split).
DATASET_FILES = ("state.json", "dataset_info.json")
DATASET_DICT_FILE = "dataset_dict.json"
# Fields read by default: user turns of conversations (the fields and message shapes of
# plamo_fast.data.conversation), and the prompt-like fields of instruction datasets
# (Alpaca/Dolly `instruction`/`input`, QA `question`).
TEXT_FIELDS = ("prompt", "instruction", "input", "question", "query")
_ALPACA_TEXT_FIELDS = TEXT_FIELDS + tuple(f for f in ALPACA_INPUT if f not in TEXT_FIELDS)


class TableInput:
    """Rows held in memory, a ``pyarrow.Table``, read by :func:`iter_input` like an input file:
    the Python API (:mod:`plamo_fast.frames`) hands a data frame's Arrow data to the commands'
    code this way, with nothing written anywhere. Its rows are numbered 1, 2, ... (unit
    ``row``) and named ``row N`` in messages (:func:`where`)."""

    name = "data"  # what a provenance registry's file pattern is matched against

    def __init__(self, table):
        self.table = table

    def __str__(self) -> str:
        return "the data"


@dataclass(slots=True)
class Row:
    """One input record: its 1-based line (Parquet, saved dataset: row; JSON array: element),
    raw JSONL bytes (a JSON array's element: as one JSON line), and parsed value (or the reason
    it could not be parsed). ``unit`` is how :func:`where` names the number: ``""`` (a line or
    Parquet row), ``"record"`` (a JSON array's element) or ``"row"`` (a saved dataset's row)."""

    number: int
    raw: bytes | None
    record: dict | None
    error: str | None = None
    unit: str = ""


def input_format(path: Path) -> str:
    """``"jsonl"`` (JSON lines or a JSON array), ``"parquet"``, ``"hf"`` (a saved dataset
    folder, or a 🤗 hub dataset in the local cache: :func:`hub_dataset`) or ``"table"`` (a
    :class:`TableInput`); anything else is refused, saying what is accepted."""
    if isinstance(path, TableInput):
        return "table"
    path = Path(path)
    if path.is_dir():
        return _folder_format(path)
    if _is_hub_name(path):
        hub_dataset(path)  # found in the cache, or an error that says where it was looked for
        return "hf"
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise UsageError(
        f"{path}: unknown input format (expected .jsonl, .json or .ndjson: JSON lines or a "
        "JSON array; .parquet; or a folder written by Hugging Face datasets' save_to_disk)"
    )


def _folder_format(path: Path) -> str:
    if all((path / name).is_file() for name in DATASET_FILES) and any(path.glob("*.arrow")):
        return "hf"
    if (path / DATASET_DICT_FILE).is_file():
        splits = sorted(p.name for p in path.iterdir() if (p / DATASET_FILES[0]).is_file())
        raise UsageError(
            f"{path}: a DatasetDict (splits: {', '.join(splits) or 'none'}); give one split's "
            f"folder, e.g. {path / (splits[0] if splits else 'train')}"
        )
    raise UsageError(
        f"{path}: a folder, but not one written by Hugging Face datasets' save_to_disk (no "
        f"{' and '.join(DATASET_FILES)} with .arrow files); give such a folder or a "
        ".jsonl/.json/.parquet file"
    )


def check_input(path: Path) -> Path:
    """``path`` when it is a readable input (a file, a saved dataset folder, or a hub dataset's
    name found in the local cache); a missing one
    raises :class:`FileNotFoundError`, a folder of another kind :class:`UsageError`. A
    :class:`TableInput` is returned as it is."""
    if isinstance(path, TableInput):
        return path
    path = Path(path)
    if path.is_dir() or _is_hub_name(path):
        input_format(path)
    elif not path.is_file():
        raise FileNotFoundError(f"input {path} does not exist")
    return path


def input_size(path: Path) -> int:
    """The bytes of an input, for progress bars: a file's size, a saved dataset's ``.arrow``
    shards; a table's Arrow buffers."""
    if isinstance(path, TableInput):
        return path.table.nbytes
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.glob("*.arrow"))
    if _is_hub_name(path):
        return sum(f.stat().st_size for f in _hub_files(path))
    return path.stat().st_size


def input_digest(path: Path, memo=None) -> str | None:
    """The content digest of an input, what changes when its records do: a file's or saved
    dataset folder's :func:`plamo_fast.digests.path_digest` (None when missing); a hub
    dataset's name: the digest of the cached Arrow files it is read from. ``memo``: a
    :class:`plamo_fast.digests.DigestMemo`, so that a file is hashed once per version."""
    from plamo_fast.digests import file_digest, path_digest

    path = Path(path)
    if not _is_hub_name(path):
        return path_digest(path, memo)
    digest = hashlib.sha256()
    for file in _hub_files(path):
        digest.update(f"{file.name}\0{file_digest(file, memo)}\n".encode())
    return digest.hexdigest()


def _hub_files(path: Path) -> list[Path]:
    """The cached Arrow files a hub dataset's name is read from."""
    return [Path(f["filename"]) for f in hub_dataset(path).cache_files]


def load_dataset_folder(path: Path):
    """The ``datasets.Dataset`` saved in ``path`` (memory-mapped, not read into memory; a
    DatasetDict's folder is refused before, by :func:`input_format`), or named by ``path``
    (:func:`hub_dataset`)."""
    if not Path(path).is_dir():
        return hub_dataset(path)
    datasets = _datasets(f"{path} is a Hugging Face datasets folder: reading it")
    try:
        dataset = datasets.load_from_disk(str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadRecordError(f"{path}: unreadable datasets folder: {exc}") from None
    return dataset


# A 🤗 hub dataset's name, NAME or ORG/NAME, and optionally :SPLIT.
HUB_NAME = re.compile(r"(?P<name>[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?)(?::(?P<split>[\w.-]+))?")


def _is_hub_name(path: Path) -> bool:
    """Whether ``path`` is read as a hub dataset's name: it is no existing path, has no input
    file suffix, and is spelled like one."""
    return (
        not path.exists()
        and path.suffix.lower() not in (*PARQUET_SUFFIXES, *JSONL_SUFFIXES)
        and HUB_NAME.fullmatch(str(path)) is not None
    )


def hub_dataset(path: Path):
    """The ``datasets.Dataset`` that ``datasets.load_dataset(NAME)`` finds in the local cache
    in offline mode (``HF_HUB_OFFLINE=1``; a dataset loaded once before, online): its ``train``
    split, its only one, or ``SPLIT`` of ``NAME:SPLIT``. Never downloads: without offline mode
    the name is refused, saying how to read it."""
    datasets = _datasets(f"{path} (a Hugging Face hub dataset's name)")
    config = datasets.config
    return _hub_dataset(str(path), str(config.HF_DATASETS_CACHE), bool(config.HF_HUB_OFFLINE))


@functools.lru_cache(maxsize=8)
def _hub_dataset(given: str, cache: str, offline: bool):
    """(Looked up once per name, cache folder and mode: every step asks for the input.)"""
    import datasets

    match = HUB_NAME.fullmatch(given)
    name, split = match["name"], match["split"]
    if not offline:
        raise UsageError(
            f"{given}: not a file and not a saved dataset; a hub dataset's name is read from "
            "the local cache only, in offline mode (HF_HUB_OFFLINE=1; plamo-fast never "
            "downloads: load it once with datasets.load_dataset)"
        )
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity_error()  # not the cache's "using the latest version" notes
    try:
        found = datasets.load_dataset(name)
    except (ConnectionError, OSError, ValueError) as exc:
        raise UsageError(
            f"{given}: not a file, not a saved dataset, not in the hub cache "
            f"(HF_HUB_OFFLINE=1; looked in {cache}): {exc}"
        ) from None
    finally:
        datasets.logging.set_verbosity(verbosity)
    splits = sorted(found)
    split = split or ("train" if "train" in found or len(splits) != 1 else splits[0])
    if split not in found:
        raise UsageError(
            f"{given}: the cached Hugging Face dataset {name} has the splits {', '.join(splits)}; "
            f"name one, e.g. {name}:{splits[0]}"
        )
    return found[split]


def dataset_batches(dataset, batch_size: int = 4096):
    """The rows of a ``datasets.Dataset`` as Arrow record batches, in the dataset's order (a
    selection or shuffle included), without Python objects."""
    for table in dataset.with_format("arrow").iter(batch_size=batch_size):
        yield from table.to_batches()


def _dataset_rows(path: Path) -> Iterator[Row]:
    number = 0
    for batch in dataset_batches(load_dataset_folder(path)):
        for record in _batch_records(path, batch, number):
            number += 1
            yield Row(number, None, record, unit="row")


def _batch_records(path: Path, batch, number: int) -> list[dict]:
    try:
        return batch.to_pylist()
    except UnicodeDecodeError as exc:
        raise BadRecordError(
            f"{path}: rows {number + 1}-{number + batch.num_rows}: invalid UTF-8 in a "
            f"string column ({exc.reason})"
        ) from None


def _table_rows(source: TableInput) -> Iterator[Row]:
    number = 0
    for batch in source.table.to_batches(max_chunksize=4096):
        for record in _batch_records(source, batch, number):
            number += 1
            yield Row(number, None, record, unit="row")


def iter_input(path: Path) -> Iterator[Row]:
    """Every record of a JSONL or Parquet file or a saved dataset folder; an input without
    records yields one error row."""
    form = input_format(path)
    path = path if form == "table" else Path(path)
    any_row = False
    if form == "table":
        for row in _table_rows(path):
            any_row = True
            yield row
    elif form == "hf":
        for row in _dataset_rows(path):
            any_row = True
            yield row
    elif form == "parquet":
        number = 0
        for batch in parquet_batches(path):
            for record in _batch_records(path, batch, number):
                number += 1
                any_row = True
                yield Row(number, None, record)
    elif _is_json_array(path):
        for row in _array_rows(path):
            any_row = True
            yield row
    else:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                any_row = True
                yield _parse_line(number, raw)
    if not any_row:
        yield Row(0, None, None, "empty file (no records)")


def parquet_batches(path: Path, columns: list[str] | None = None, batch_size: int = 4096):
    """The record batches of a Parquet file (of ``columns``, else all); an unreadable file
    raises :class:`BadRecordError`, an empty one yields nothing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        return
    try:
        # Not pre-buffered: only the pages of the current batch are held, not a whole row group.
        file = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        yield from file.iter_batches(batch_size=batch_size, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise BadRecordError(f"{path}: unreadable Parquet file: {exc}") from None


def parquet_schema(path: Path):
    """The Arrow schema of a Parquet file, or None when it cannot be read (reading its
    records then says why)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path) if path.stat().st_size else None
    except (pa.ArrowException, OSError):
        return None


def _is_json_array(path: Path) -> bool:
    with open(path, "rb") as f:
        while chunk := f.read(4096):
            text = chunk.lstrip()
            if text:
                return text.startswith(b"[")
    return False


ARRAY_CHUNK = 1 << 20
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Text that may hold a lone surrogate: one from undecodable bytes (read with surrogateescape),
# or a \ud800-\udfff escape.
_SURROGATE_TEXT = re.compile(r"[\ud800-\udfff]|\\[uU][dD][89a-fA-F]")


class _ArrayText:
    """The text of a JSON array file, read in chunks; undecodable bytes become lone surrogates
    (``surrogateescape``), so that the record holding them is the one refused."""

    def __init__(self, file):
        import codecs

        self.file = file
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.text = ""
        self.eof = False

    def more(self) -> bool:
        """Reads on (at least as much as is buffered); False at the end of the file."""
        if self.eof:
            return False
        data = self.file.read(max(ARRAY_CHUNK, len(self.text)))
        self.eof = not data
        self.text += self.decoder.decode(data, final=self.eof)
        return True

    def skip_space(self, pos: int) -> int:
        """The position of the next non-blank character (reading on as needed)."""
        while True:
            pos = _WHITESPACE.match(self.text, pos).end()
            if pos < len(self.text) or not self.more():
                return pos

    def drop_before(self, pos: int) -> int:
        if pos > ARRAY_CHUNK:
            self.text = self.text[pos:]
            return 0
        return pos


def _array_rows(path: Path) -> Iterator[Row]:
    """The elements of a JSON array file as rows numbered 1, 2, ... A malformed array (a bad
    element, a missing comma, text after it) cannot be read on past the fault: it raises
    :class:`BadRecordError` naming the element."""
    with open(path, "rb") as f:
        text = _ArrayText(f)
        pos = text.skip_space(0) + 1  # past "["
        number = 0
        while True:
            pos = text.skip_space(pos)
            if text.text.startswith("]", pos):
                break
            number += 1
            if number > 1:
                if not text.text.startswith(",", pos):
                    raise _array_error(path, number - 1, "expected ',' or ']' after it")
                pos = text.skip_space(pos + 1)
            value, pos = _array_element(path, text, pos, number)
            yield _array_row(number, value)
            pos = text.drop_before(pos)
        end = text.skip_space(pos + 1)
        if end < len(text.text):
            raise BadRecordError(f"{path}: text after the closing ']' of the JSON array")


def _array_element(path: Path, text: _ArrayText, pos: int, number: int) -> tuple[str, int]:
    """The source text of the element at ``pos`` and the position after it."""
    while True:
        try:
            _, end = _DECODER.raw_decode(text.text, pos)
        except json.JSONDecodeError as exc:
            if text.more():
                continue
            raise _array_error(path, number, f"malformed JSON: {exc.msg}") from None
        except RecursionError:
            raise _array_error(path, number, "malformed JSON: nested too deeply") from None
        # A number cut at the end of the buffer would parse as a shorter one: read on.
        if end < len(text.text) or not text.more():
            return text.text[pos:end], end


def _array_error(path: Path, number: int, message: str) -> BadRecordError:
    return BadRecordError(f"{path}:record {number}: {message} (the JSON array is not read on)")


def _array_row(number: int, source: str) -> Row:
    record = json.loads(source)
    if _SURROGATE_TEXT.search(source) and _has_surrogate(record):
        undecodable = any("\udc80" <= c <= "\udcff" for c in source)
        reason = (
            "invalid UTF-8"
            if undecodable
            else "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
        )
        return Row(number, None, None, reason, unit="record")
    if not isinstance(record, dict):
        reason = f"expected a JSON object, got {type(record).__name__}"
        return Row(number, None, None, reason, unit="record")
    raw = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
    return Row(number, raw, record, unit="record")


def copy_records(path: Path, target: Target, numbers, advance=lambda n: None) -> None:
    """Writes the records of an input numbered ``numbers`` (1-based, as :func:`iter_input`
    numbers them) to ``target``: JSONL lines into JSON lines byte for byte (a JSON array's
    elements as JSON lines), Parquet rows and a saved dataset's filtered in Arrow a batch at a
    time, anything else through :class:`RecordWriter`. ``advance(n)`` is told of each ``n``
    input bytes read."""
    numbers = np.asarray(numbers, dtype=np.int64)
    wanted = np.zeros(int(numbers.max()) + 1 if len(numbers) else 1, dtype=bool)
    wanted[numbers] = True
    form = input_format(path)
    if form == "jsonl" and target.format == "jsonl":
        _copy_lines(path, target.path, wanted, advance)
        return
    writer = RecordWriter(path, target)
    try:
        if form == "jsonl":  # into a saved dataset
            for row in iter_input(path):
                if row.number < len(wanted) and wanted[row.number]:
                    writer.write(row)
        else:
            _copy_batches(_batches(path), writer, wanted)
    finally:
        writer.close()
    advance(input_size(path))


def _copy_lines(path: Path, target: Path, wanted: np.ndarray, advance) -> None:
    # A 1 MiB buffer: written line by line through the default 8 KiB one, the copy takes twice
    # as long.
    with open(target, "wb", buffering=1 << 20) as dst:
        if _is_json_array(path):
            for row in _array_rows(path):
                if row.number < len(wanted) and wanted[row.number]:
                    dst.write(row.raw)
            advance(path.stat().st_size)
            return
        with open(path, "rb") as src:
            for number, raw in enumerate(src, start=1):
                advance(len(raw))
                if number < len(wanted) and wanted[number]:
                    dst.write(raw if raw.endswith(b"\n") else raw + b"\n")


def _batches(path: Path):
    """The Arrow record batches of a Parquet file or a saved dataset."""
    if input_format(path) == "parquet":
        return parquet_batches(path, batch_size=65536)
    return dataset_batches(load_dataset_folder(path), batch_size=65536)


def _copy_batches(batches, writer: RecordWriter, wanted: np.ndarray) -> None:
    """The rows of ``batches`` whose 1-based numbers are set in ``wanted``."""
    start = 1
    for batch in batches:
        mask = np.zeros(batch.num_rows, dtype=bool)
        here = wanted[start : start + batch.num_rows]
        mask[: len(here)] = here
        start += batch.num_rows
        writer.write_batch(batch.filter(mask))


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
    # (The regex alone: a `b"\\u" in raw` test before it takes twice as long on CJK text.)
    if _LONE_SURROGATE.search(raw) and _has_surrogate(record):
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


def _json_line(record: dict) -> bytes:
    """A record read from Arrow as one JSON line (values JSON lacks, as dates, as text)."""
    return json.dumps(record, ensure_ascii=False, default=str).encode("utf-8") + b"\n"


def where(path: Path, row: Row) -> str:
    """Where a row is, for messages: ``FILE:N`` (line or Parquet row), ``FILE:record N`` (JSON
    array element), ``FOLDER:row N`` (saved dataset row), ``row N`` (a :class:`TableInput`'s),
    or ``FILE`` (the input as a whole)."""
    if not row.number:
        return str(path)
    if isinstance(path, TableInput):
        return f"row {row.number}"
    return f"{path}:{row.unit} {row.number}" if row.unit else f"{path}:{row.number}"


def user_texts(record: dict, extra_fields: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``(field, text)`` for every user-side text of a record: user turns of ``messages`` /
    ``conversations`` (ShareGPT ``from``/``value`` too), ``prompt`` (a string or messages),
    ``instruction``, ``input`` (the original Dolly's ``context`` in a record with an
    ``instruction``), ``question``, ``query``, and ``extra_fields``. A field that is
    null (as Parquet stores a column a row lacks) counts as absent."""
    found: list[tuple[str, str]] = []
    for key in MESSAGE_FIELDS:
        value = record.get(key)
        if value is not None:
            found.extend(_user_turns(value, key))
    own = _ALPACA_TEXT_FIELDS if is_alpaca(record) else TEXT_FIELDS  # Dolly's `context`: input
    extra = ()
    if extra_fields:
        extra = tuple(f for f in dict.fromkeys(extra_fields) if f not in (*MESSAGE_FIELDS, *own))
    for key in own + extra:
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


OUTPUT_FORMATS = ("hf",)


@dataclass(frozen=True)
class Target:
    """Where one input's kept records are written, and how: ``"jsonl"``, ``"parquet"`` or
    ``"hf"`` (a ``save_to_disk`` folder)."""

    path: Path
    format: str


@dataclass(frozen=True)
class OutputPlan:
    """The output of a curation command: a file, or a folder (``folder``: several inputs, or
    ``--output-format hf``), and per input its name in that folder (None: the output itself) and
    the format its kept records are written in."""

    folder: bool
    entries: tuple[tuple[str | None, str], ...]

    def targets(self, out: Path) -> list[Target]:
        """The targets under ``out``, the output's partial path being written."""
        return [Target(out / name if name else out, form) for name, form in self.entries]


def output_paths(
    inputs: list[Path], out: Path, report: Path | None = None, output_format: str | None = None
) -> OutputPlan:
    """How kept records go to ``out``. By default each input keeps its format: one input and an
    ``out`` with its suffix names a file (a saved dataset's: an ``out`` named ``.parquet``, or
    ``.jsonl`` for JSON lines); otherwise ``out`` is a folder holding each input under its own
    name (a saved dataset's: ``NAME.parquet``). ``output_format="hf"``: ``out`` is a
    ``save_to_disk`` folder (one input), or a folder of them named after the inputs (several).
    Refuses a report that is the output or lies in the output folder, and inputs that would
    share a name there.
    Whether ``out`` and the report may be written where they are named (not over an input, the
    current directory, a home directory, or a folder that is not our own output) is decided by
    :func:`plamo_fast.outputs.check_output` when they are written."""
    if output_format not in (None, *OUTPUT_FORMATS):
        raise UsageError(f"--output-format {output_format}: expected one of {OUTPUT_FORMATS}")
    if report is not None and report.resolve() == out.resolve():
        raise UsageError(f"report {report} is the output; name another file")
    file_suffix = out.suffix.lower() in (*PARQUET_SUFFIXES, *JSONL_SUFFIXES)
    if output_format is None and len(inputs) == 1 and _names_a_file(inputs[0], out):
        return OutputPlan(False, ((None, _kept_format(inputs[0], out)),))
    if file_suffix:
        raise UsageError(
            f"-o {out} names a file, but the output is a folder: "
            + (
                "--output-format hf writes a saved dataset folder"
                if output_format
                else f"{len(inputs)} inputs are written to a folder, one file each"
            )
            + " (give a folder name)"
        )
    if report is not None and report.resolve().is_relative_to(out.resolve()):
        raise UsageError(f"report {report} is inside the output folder {out}; put it elsewhere")
    if output_format == "hf":
        if len(inputs) == 1:
            return OutputPlan(True, ((None, "hf"),))
        names = [_name(p) if input_format(p) == "hf" else p.stem for p in inputs]
    else:
        names = [_name(p) + ".parquet" if input_format(p) == "hf" else p.name for p in inputs]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise UsageError(
            f"inputs share the name {clashes[0]!r}; the output folder would hold them "
            "under the same name (rename one)"
        )
    forms = [output_format or _kept_format(p, out / n) for p, n in zip(inputs, names, strict=True)]
    return OutputPlan(True, tuple(zip(names, forms, strict=True)))


def _name(source: Path) -> str:
    """An input's name in an output folder: its file or folder name (a hub dataset's name
    without its organization and split)."""
    return source.name.split(":")[0]


def _kept_format(source: Path, written: Path) -> str:
    """The format an input's kept records are written in, under the name ``written``: the
    input's own; a saved dataset's rows as JSON lines when ``written`` is named so, else as
    Parquet."""
    form = input_format(source)
    if form == "hf":
        return "jsonl" if written.suffix.lower() in JSONL_SUFFIXES else "parquet"
    return form


def _names_a_file(source: Path, out: Path) -> bool:
    suffix = out.suffix.lower()
    if input_format(source) == "hf":  # a saved dataset: written as Parquet or JSON lines
        return suffix in (*PARQUET_SUFFIXES, *JSONL_SUFFIXES)
    return suffix == source.suffix.lower()


class RecordWriter:
    """Writes kept records read from ``source`` to ``target`` in its format: JSONL bytes as
    read (Arrow rows as JSON lines), Parquet rows with the input's schema (a saved dataset's: its
    features' schema), or a saved dataset folder (:class:`_DatasetWriter`)."""

    def __init__(self, source: Path, target: Target):
        self.format = target.format
        self.target = target.path
        self.count = 0
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._schema = _schema_of(source)
            self._writer = pq.ParquetWriter(target.path, self._schema, compression="zstd")
            self._pending: list[dict] = []
        elif self.format == "hf":
            self._dataset = _DatasetWriter(source, target.path)
        else:
            self._file = open(target.path, "wb")  # noqa: SIM115 (closed by close())

    def write(self, row: Row) -> None:
        self.count += 1
        if self.format == "parquet":
            self._pending.append(row.record)
            if len(self._pending) >= 8192:
                self._flush()
        elif self.format == "hf":
            self._dataset.write(row.record)
        elif row.raw is None:  # a row read from Arrow
            self._file.write(_json_line(row.record))
        else:
            raw = row.raw
            self._file.write(raw if raw.endswith(b"\n") else raw + b"\n")

    def write_batch(self, batch) -> None:
        """An Arrow record batch of rows (of the input's schema)."""
        self.count += batch.num_rows
        if self.format == "parquet":
            import pyarrow as pa

            self._flush()
            self._writer.write_table(pa.Table.from_batches([batch]).cast(self._schema))
        elif self.format == "hf":
            self._dataset.write_batch(batch)
        else:
            self._file.writelines(_json_line(r) for r in batch.to_pylist())

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
        elif self.format == "hf":
            self._dataset.close()
        else:
            self._file.close()


def _schema_of(source: Path):
    """The Arrow schema of a Parquet file or a saved dataset (its features')."""
    import pyarrow.parquet as pq

    if input_format(source) == "hf":
        return load_dataset_folder(source).features.arrow_schema
    return pq.read_schema(source)


class _DatasetWriter:
    """Writes rows as a ``Dataset.save_to_disk`` folder ``folder``: they go to an Arrow file
    beside it through datasets' own ``ArrowWriter`` (the features of a Parquet or saved dataset
    source; inferred from JSON records as ``Dataset.from_list`` does), which is saved into
    ``folder`` and removed on close."""

    def __init__(self, source: Path, folder: Path):
        datasets = _datasets(f"--output-format hf ({folder})")
        from datasets.arrow_writer import ArrowWriter

        self.folder = folder
        self.features = None
        if input_format(source) in ("parquet", "hf"):
            self.features = datasets.Features.from_arrow_schema(_schema_of(source))
        self.rows_file = folder.parent / f".{folder.name}.rows-{os.getpid()}.arrow"
        self.writer = ArrowWriter(features=self.features, path=str(self.rows_file))

    def write(self, record: dict) -> None:
        self.writer.write(record)

    def write_batch(self, batch) -> None:
        import pyarrow as pa

        self.writer.write_table(pa.Table.from_batches([batch]))

    def close(self) -> None:
        import datasets

        try:
            count, _ = self.writer.finalize()
            self.writer.close()
            if count:
                dataset = datasets.Dataset.from_file(str(self.rows_file))
            else:
                dataset = datasets.Dataset.from_list([], features=self.features)
            shown = datasets.is_progress_bar_enabled()
            datasets.disable_progress_bars()
            try:
                dataset.save_to_disk(str(self.folder))
            finally:
                if shown:
                    datasets.enable_progress_bars()
        finally:
            self.rows_file.unlink(missing_ok=True)


def _datasets(what: str):
    """The datasets package, or an error saying that ``what`` needs it."""
    try:
        import datasets
    except ImportError:
        raise UsageError(
            f"{what} needs the datasets package (pip install 'plamo-fast[train]', or pip "
            "install datasets)"
        ) from None
    return datasets
