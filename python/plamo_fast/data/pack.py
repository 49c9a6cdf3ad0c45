"""``plamo-fast pack``: records -> chat template -> tokens -> response-only labels -> global
best-fit-decreasing packing -> Parquet rows and ``pack_report.json``.

Python renders the templates (the exact Jinja setup of transformers); the native core tokenizes
and labels in parallel with the GIL released, and packs. Every input record is accounted for:
packed exactly once, or counted as dropped with its reason.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time
from array import array
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plamo_fast import _native
from plamo_fast._progress import progress_bar
from plamo_fast.data.accounting import check_kept
from plamo_fast.data.chat_template import StopRule, check_template, render_with_spans
from plamo_fast.data.conversation import IGNORE_INDEX, BadRecordError, Conversation
from plamo_fast.data.curation_io import (
    Row,
    TableInput,
    check_input,
    input_format,
    parquet_batches,
    parquet_schema,
    where,
)
from plamo_fast.data.packing import (
    concat_ranges,
    gather_table,
    pad_rows,
    plan_rows,
    row_chunks,
)
from plamo_fast.data.records import (
    TOKEN_ID_LIMIT,
    Tokenized,
    TokenizedBatch,
    columnar_fields,
    iter_rows,
    read_example,
    tokenized_batch,
)
from plamo_fast.errors import UsageError
from plamo_fast.outputs import atomic_output

BATCH = 2048
# Tokens gathered and written per Parquet row group (two such chunks are in memory at once,
# 3 MiB each: one being gathered, one being encoded).
CHUNK_TOKENS = 1 << 18
# Tokens per record batch read from a pre-tokenized Parquet file: the decoder's memory grows
# with the batch (1M tokens: about 50 MiB more than 128K tokens), and the rows of a batch are
# checked natively in one call, so small batches cost little.
READ_TOKENS = 1 << 17
# Token ids gain little from dictionaries, and page statistics of token lists serve no reader.
# snappy (as datasets writes): encoding 113M tokens' rows takes 2.2 s of CPU with pyarrow,
# against 3.0 s with zstd, which would write half the bytes (0.45 GB instead of 0.85 GB). Pack's
# own tables go through the native writer (_NativeParquetWriter: these settings, "snappy" or
# "none"): 0.8-1.1 s of CPU for those rows; pyarrow's writer takes any other table.
PARQUET_OPTIONS = {
    "use_dictionary": False,
    "compression": "snappy",
    "write_statistics": False,
    "write_batch_size": 1 << 16,  # values per encoder call: the default 1024 costs 10% more
}
REPORT_FILE = "pack_report.json"
SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


@dataclass
class TokenizerBundle:
    native: object
    chat_template: str
    special_tokens: dict[str, str]  # the named ones a template may use (bos_token, ...)
    stop_rule: StopRule
    vocab_size: int


def load_tokenizer(
    folder: str | os.PathLike,
    chat_template: str | os.PathLike | None = None,
    trust_remote_code: bool = False,
) -> TokenizerBundle:
    """The folder's fast tokenizer (``tokenizer.json``, native); a tokenizer that exists only as
    a Python class goes through transformers and the slower path, with a warning. The stop set
    is ``generation_config.json``'s ``eos_token_id`` (an id or a list), else the eos token."""
    folder = Path(folder)
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        native = _native.ChatTokenizer(tokenizer_json)
        specials, vocab_size = _fast_tokenizer_vocabulary(tokenizer_json)
    else:
        native = _slow_tokenizer(folder, trust_remote_code)
        specials, vocab_size = native.special_tokens_by_id(), native.vocab_size
    config = _read_json(folder / "tokenizer_config.json")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: use "default"
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if chat_template is not None:
        template = Path(chat_template).read_text(encoding="utf-8")
    if not template:
        raise UsageError(f"{folder}: the tokenizer has no chat_template (pass --chat-template)")
    check_template(template)
    special = {}
    for key in SPECIAL_TOKEN_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            special[key] = value
    stops = _stop_tokens(folder, specials, special.get("eos_token"))
    # Between an answer and the stop token stands only text the template writes: of the
    # special tokens, those in its source or passed to it (a long list would slow the scan).
    written = [t for t in specials.values() if t in template or t in special.values()]
    return TokenizerBundle(native, template, special, StopRule(written, stops), vocab_size)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return value


def _fast_tokenizer_vocabulary(path: Path) -> tuple[dict[int, str], int]:
    """The special tokens (id to text) and the vocabulary size of a ``tokenizer.json``."""
    data = _read_json(path)
    added = [t for t in data.get("added_tokens") or [] if isinstance(t, dict) and "id" in t]
    vocab = (data.get("model") or {}).get("vocab")
    ids = list(vocab.values()) if isinstance(vocab, dict) else [len(vocab or ()) - 1]
    size = max([-1, *ids, *(t["id"] for t in added)]) + 1
    return {t["id"]: t["content"] for t in added if t.get("special")}, size


def _stop_tokens(folder: Path, specials: dict[int, str], eos_token: str | None) -> list[str]:
    """The model's stop set as token texts: ``generation_config.json``'s ``eos_token_id``,
    else the tokenizer's eos token. Only special tokens count (the rest cannot be told apart
    from text)."""
    value = _read_json(folder / "generation_config.json").get("eos_token_id")
    ids = [value] if isinstance(value, int) else value if isinstance(value, list) else []
    if ids:
        return [specials[i] for i in ids if isinstance(i, int) and i in specials]
    return [eos_token] if eos_token in specials.values() else []


def _slow_tokenizer(folder: Path, trust_remote_code: bool):
    import warnings

    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise UsageError(
            f"{folder}: no tokenizer.json; a Python-only tokenizer needs "
            "transformers (pip install 'plamo-fast[train]')"
        ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            folder, use_fast=False, trust_remote_code=trust_remote_code
        )
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise UsageError(
                f"{folder}: the tokenizer is custom code; pass --trust-remote-code if you trust it"
            ) from None
        raise UsageError(f"{folder}: cannot load the tokenizer: {exc}") from None
    warnings.warn(
        f"{folder}: no tokenizer.json, using the slower Python tokenizer path", stacklevel=3
    )
    from plamo_fast.data.slow_tokenizer import SlowChatTokenizer

    return SlowChatTokenizer(tokenizer)


@dataclass
class PackReport:
    inputs: list[str]
    kind: str
    max_length: int
    examples_read: int = 0
    examples_packed: int = 0
    dropped: Counter = field(default_factory=Counter)
    bad_records: list[str] = field(default_factory=list)
    mixture: dict = field(default_factory=dict)
    total_tokens: int = 0
    trained_tokens: int = 0
    rows: int = 0
    stop_tokens: list = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        lower = -(-self.total_tokens // self.max_length) if self.total_tokens else 0
        return {
            "inputs": self.inputs,
            "kind": self.kind,
            "max_length": self.max_length,
            "examples_read": self.examples_read,
            "examples_packed": self.examples_packed,
            "dropped": dict(self.dropped),
            "bad_records": self.bad_records[:100],
            "mixture": self.mixture,
            "total_tokens": self.total_tokens,
            "trained_tokens": self.trained_tokens,
            "rows": self.rows,
            "fill_ratio": self.total_tokens / (self.rows * self.max_length) if self.rows else 0.0,
            "rows_lower_bound": lower,
            "stop_tokens": self.stop_tokens,
            "seconds": round(self.seconds, 3),
        }


class _SpillFiles:
    """Documents' tokens and labels spilled to files in ``folder`` as they come; the gather
    reads them back by positional reads (never mapped, so only one chunk of rows is resident).
    Tokens are little-endian int32 values; labels are one bit per token while each is its
    token or IGNORE_INDEX (response-only masking: a 32nd of the bytes, see
    ``_native.LabelMaskSpill``), int32 values from the first batch of documents in which one is
    not (the bits so far are turned into values then)."""

    def __init__(self, folder: Path):
        folder.mkdir()
        self.folder = folder
        self._tokens = open(folder / "tokens.i32", "wb")  # noqa: SIM115 (closed in close())
        self._mask: _native.LabelMaskSpill | None = _native.LabelMaskSpill(folder / "labels.mask")
        self._labels = None  # labels.i32 once the mask is given up
        self._spilled = 0  # tokens written

    def add(self, ids: np.ndarray, labels: np.ndarray) -> None:
        """Appends documents' tokens and labels (int32, as long as each other)."""
        if self._mask is None or not self._mask.append(ids, labels):
            if self._labels is None:
                self._labels_as_values()
            self._labels.write(memoryview(labels.astype("<i4", copy=False)))
        self._tokens.write(memoryview(ids.astype("<i4", copy=False)))
        self._spilled += len(ids)

    def _labels_as_values(self) -> None:
        """Gives up the label mask: the labels so far are written out as int32 values."""
        self._mask.close()
        self._tokens.flush()
        mask, self._mask = self.folder / "labels.mask", None
        values = self.folder / "labels.i32"
        _native.labels_from_mask(self.folder / "tokens.i32", mask, self._spilled, values)
        mask.unlink()
        self._labels = open(values, "ab")  # noqa: SIM115 (closed in close())

    @property
    def labels_masked(self) -> bool:
        """Whether the labels are spilled as one bit per token."""
        return self._labels is None

    def close(self) -> None:
        self._tokens.close()
        if self._mask is not None:
            self._mask.close()
        if self._labels is not None:
            self._labels.close()

    def sources(self) -> tuple[Path, Path]:
        """The two spill files (closed), as :func:`gather_table` takes them."""
        self.close()
        labels = "labels.mask" if self.labels_masked else "labels.i32"
        return self.folder / "tokens.i32", self.folder / labels

    def remove(self) -> None:
        shutil.rmtree(self.folder)


class _MemoryChunks:
    """Documents' tokens and labels kept in memory (for :func:`pack_rows`, which holds the
    packed rows in memory anyway). Arrays of at least ``KEEP_TOKENS`` tokens are kept as they
    came (pre-tokenized columns: views of their Arrow buffers, no copy); smaller ones are joined
    into chunks of about ``JOIN_TOKENS``, so that the list of chunks, which the gather of every
    chunk of rows takes whole, stays short (one DPO pair or one shortened record at a time
    would otherwise make it one chunk per document)."""

    KEEP_TOKENS = 1 << 16
    JOIN_TOKENS = 1 << 20
    labels_masked = False

    def __init__(self):
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._small: list[tuple[np.ndarray, np.ndarray]] = []
        self._small_tokens = 0

    def add(self, ids: np.ndarray, labels: np.ndarray) -> None:
        """Appends documents' tokens and labels (int32, as long as each other)."""
        if len(ids) >= self.KEEP_TOKENS:
            self._join_small()
            self._chunks.append((ids, labels))
            return
        self._small.append((ids, labels))
        self._small_tokens += len(ids)
        if self._small_tokens >= self.JOIN_TOKENS:
            self._join_small()

    def _join_small(self) -> None:
        if self._small:
            ids, labels = zip(*self._small, strict=True)
            self._chunks.append((np.concatenate(ids), np.concatenate(labels)))
        self._small, self._small_tokens = [], 0

    def close(self) -> None:
        self._join_small()

    def sources(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The token and label arrays (end to end), as :func:`gather_table` takes them."""
        self.close()
        return [c[0] for c in self._chunks], [c[1] for c in self._chunks]

    def remove(self) -> None:
        self._chunks = []


class _DocStore:
    """Tokenized documents (one per SFT example, two per DPO pair): their tokens and labels
    spilled to files in ``folder`` (:class:`_SpillFiles`), or with ``folder`` None kept in
    memory (:class:`_MemoryChunks`); only per-document lengths and ids stay in Python."""

    def __init__(self, folder: Path | None):
        self.storage = _SpillFiles(folder) if folder is not None else _MemoryChunks()
        # Compact per-document metadata: 8 bytes per value, not a Python int object each.
        self.lengths = array("q")
        self.trained = array("q")
        self.doc_ids = array("q")
        self.source_ids = array("q")
        self.group_sizes = array("q")

    def _spill(self, ids: np.ndarray, labels: np.ndarray) -> None:
        self.storage.add(
            np.ascontiguousarray(ids, dtype=np.int32), np.ascontiguousarray(labels, dtype=np.int32)
        )

    def append(
        self, ids: np.ndarray, labels: np.ndarray, trained: int, doc_id: int, source: int
    ) -> None:
        self._spill(ids, labels)
        self.lengths.append(len(ids))
        self.trained.append(trained)
        self.doc_ids.append(doc_id)
        self.source_ids.append(source)

    def append_many(
        self,
        ids: np.ndarray,
        labels: np.ndarray,
        lengths: np.ndarray,
        trained: np.ndarray,
        doc_ids: np.ndarray,
        sources: np.ndarray | int,
    ) -> None:
        """Documents stored back to back (``lengths`` long), in one write; ``sources``: one
        input for all, or one each."""
        self._spill(ids, labels)
        for values, target in (
            (lengths, self.lengths),
            (trained, self.trained),
            (doc_ids, self.doc_ids),
            (np.broadcast_to(sources, np.shape(lengths)), self.source_ids),
            (np.ones(len(lengths)), self.group_sizes),
        ):
            target.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())

    def close(self) -> None:
        self.storage.close()

    @property
    def labels_masked(self) -> bool:
        return self.storage.labels_masked

    def files(self) -> tuple[Path | list, Path | list, np.ndarray]:
        """``(tokens, labels, doc_offsets)``, as :func:`gather_table` takes them: the spill
        files or the lists of arrays, and where each document starts in them (end to end)."""
        offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)]).astype(np.int64)
        return (*self.storage.sources(), offsets)


class _Packer:
    """Renders conversations and tokenizes them (``tok`` is None when only pre-tokenized rows
    are packed)."""

    def __init__(
        self,
        tokenizer: TokenizerBundle | None,
        max_length: int,
        truncate: str,
        last_turn_only: bool,
    ):
        self.tok = tokenizer
        self.max_length = max_length
        self.truncate = truncate
        self.last_turn_only = last_turn_only

    def render(self, c: Conversation) -> tuple[str, list[tuple[int, int]]]:
        """The text and the character spans to train: each answer as the template renders it,
        through the model's stop token where only special tokens and whitespace precede it."""
        text, spans = render_with_spans(
            self.tok.chat_template, c.messages, self.tok.special_tokens, c.trained
        )
        return text, self.tok.stop_rule.extend(text, spans)

    def tokenize_flat(
        self, texts: list[str], spans: list[list]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Native, parallel, with the GIL released (so rendering the next batch overlaps it):
        ``(ids, labels, offsets)``, document ``i`` at ``offsets[i]:offsets[i + 1]``."""
        ids_b, labels_b, offsets_b = self.tok.native.encode_masked_batch(texts, spans)
        ids = np.frombuffer(ids_b, dtype="<u4").astype(np.int32)
        labels = np.frombuffer(labels_b, dtype="<i4")
        offsets = np.frombuffer(offsets_b, dtype="<u8").astype(np.int64)
        return ids, labels, offsets

    def tokenize(self, texts: list[str], spans: list[list]) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`tokenize_flat`, one ``(ids, labels)`` pair per text."""
        ids, labels, offsets = self.tokenize_flat(texts, spans)
        return [
            (ids[offsets[i] : offsets[i + 1]], labels[offsets[i] : offsets[i + 1]])
            for i in range(len(texts))
        ]

    def encode(self, conversations: list[Conversation]) -> list[tuple[np.ndarray, np.ndarray]]:
        texts, spans = zip(*map(self.render, conversations), strict=True)
        return self.tokenize(list(texts), list(spans))

    def fit_left(self, c: Conversation) -> tuple[np.ndarray, np.ndarray] | None:
        """Drops the oldest exchanges until the conversation fits; the final answer stays whole."""
        while True:
            c = c.without_oldest_exchange()
            if c is None:
                return None
            ids, labels = self.encode([c])[0]
            if len(ids) <= self.max_length:
                return ids, labels


def pack(
    inputs: list[str | os.PathLike | TableInput],
    tokenizer: str | os.PathLike | None,
    output: str | os.PathLike,
    *,
    max_length: int,
    kind: str = "sft",
    chat_template: str | os.PathLike | None = None,
    truncate: str = "drop",
    last_turn_only: bool = False,
    seed: int = 0,
    skip_bad: bool = False,
    overwrite: bool = False,
    pad: bool = False,
    pad_id: int | None = None,
    trust_remote_code: bool = False,
    progress: bool = False,
    allow_empty: bool = False,
    rows_to: list | None = None,
) -> dict:
    """Packs JSONL/Parquet records into ``output`` (a folder: ``data.parquet`` and
    ``pack_report.json``), written through :func:`plamo_fast.outputs.atomic_output`.
    With ``rows_to`` (a list), the packed rows are appended to it as Arrow tables, one per
    chunk, instead of being written to ``data.parquet``, and the documents are kept in memory
    instead of being spilled to disk (:func:`pack_rows`).
    ``tokenizer`` may be None when every record is pre-tokenized. A run that packs no example
    fails (nothing is written) unless ``allow_empty``; more than 10% dropped gets a warning
    (:func:`plamo_fast.data.accounting.check_kept`). An input may also be a
    :class:`plamo_fast.data.curation_io.TableInput`, rows held in memory (named ``row N``)."""
    started = time.perf_counter()
    specs = _checked_specs(
        inputs, tokenizer, chat_template, kind, truncate, max_length, pad, pad_id
    )
    files = [path for path, _ in specs if not isinstance(path, TableInput)]
    sources = [*files, *(p for p in (tokenizer, chat_template) if p is not None)]
    with atomic_output(
        output, command="pack", inputs=sources, overwrite=overwrite, folder=True
    ) as partial:
        bundle = (
            load_tokenizer(tokenizer, chat_template, trust_remote_code)
            if tokenizer is not None
            else None
        )
        if pad and pad_id is None:
            pad_id = _pad_id(bundle)
        packer = _Packer(bundle, max_length, truncate, last_turn_only)
        report = PackReport([str(path) for path, _ in specs], kind, max_length)
        if bundle is not None:
            report.stop_tokens = list(bundle.stop_rule.stops)
        _pack_into(
            partial, specs, packer, report, seed=seed, skip_bad=skip_bad,
            pad_id=pad_id if pad else None, progress=progress, allow_empty=allow_empty,
            rows_to=rows_to,
        )  # fmt: skip
        report.seconds = time.perf_counter() - started
        result = report.to_json()
        (partial / REPORT_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def pack_rows(inputs: list[str | os.PathLike | TableInput], tokenizer, **options):
    """:func:`pack` (same ``options`` but ``output``, ``overwrite`` and ``progress``) without an
    output: ``(rows, report)``, the packed rows as the Arrow table ``data.parquet`` would hold
    (one chunk per gathered chunk of rows, never written to a file) and the report. Nothing
    is written but the report, to a scratch folder (in ``TMPDIR``) removed before returning:
    a :class:`TableInput` is read in memory, and the documents stay in memory (pre-tokenized
    columns as views of their Arrow buffers) instead of being spilled."""
    import tempfile

    import pyarrow as pa

    tables: list = []
    with tempfile.TemporaryDirectory(prefix="plamo-fast-pack-") as scratch:
        out = Path(scratch) / "packed"
        report = pack(inputs, tokenizer, out, progress=False, rows_to=tables, **options)
    return pa.concat_tables(tables), report


def _checked_specs(
    inputs, tokenizer, chat_template, kind: str, truncate: str, max_length: int, pad, pad_id
) -> list[tuple[Path | TableInput, str | None]]:
    """The inputs (each with its mixture amount, see :func:`parse_input`) once the options
    are checked and every input is found."""
    if kind not in ("sft", "dpo"):
        raise UsageError(f"kind must be sft or dpo, got {kind!r}")
    if truncate not in ("drop", "left"):
        raise UsageError(f"truncate must be drop or left, got {truncate!r}")
    if max_length < 2:
        raise UsageError(f"max_length must be at least 2, got {max_length}")
    if tokenizer is None and chat_template is not None:
        raise UsageError("--chat-template needs --tokenizer")
    if pad and pad_id is None and tokenizer is None:
        raise UsageError(
            "--pad needs a pad token id: pass --pad-id N (or --tokenizer, whose pad_token or "
            "eos_token is used)"
        )
    specs = [parse_input(p) for p in inputs]
    for path, _ in specs:
        check_input(path)
    return specs


def _pack_into(
    partial: Path,
    specs: list[tuple[Path, str | None]],
    packer: _Packer,
    report: PackReport,
    *,
    seed: int,
    skip_bad: bool,
    pad_id: int | None,
    progress: bool,
    allow_empty: bool,
    rows_to: list | None,
) -> None:
    """Reads, tokenizes and spills every input, then plans the rows and writes them in chunks
    (to ``data.parquet``, or appended to ``rows_to``)."""
    paths = [path for path, _ in specs]
    docs = _DocStore(partial / "spill" if rows_to is None else None)
    pipeline = _Pipeline(docs, report, packer, skip_bad)
    update, stop = progress_bar("packing: examples", None, transfer=False, show=progress)
    try:
        _read_sources(pipeline, paths, report, update=update)
        pipeline.drain()
    finally:
        stop()
        pipeline.close()
        docs.close()
    check_kept(
        "pack",
        read=report.examples_read,
        kept=report.examples_packed,
        dropped=report.dropped,
        allow_empty=allow_empty,
        unit="examples",
        hint=_empty_hint(report, packer.truncate),
    )
    doc_index, group_sizes = _select(docs, report, [amount for _, amount in specs], seed)
    if rows_to is None:
        open_writer = functools.partial(_parquet_writer, partial / "data.parquet")
    else:
        open_writer = functools.partial(_TableList, rows_to)
    _write_rows(
        open_writer,
        docs,
        doc_index,
        group_sizes,
        report,
        seed=seed,
        pad_id=pad_id,
        multiple_sources=len(paths) > 1,
    )
    docs.storage.remove()


def _empty_hint(report: PackReport, truncate: str) -> str | None:
    if not report.dropped.get("too_long"):
        return None
    hint = f"raise --max-length ({report.max_length})"
    return hint + (" or pass --truncate left" if truncate == "drop" else "")


def _read_sources(pipeline: _Pipeline, paths, report: PackReport, *, update) -> None:
    """Every record of every input, checked, rendered and tokenized into the store; a bad
    record stops the run naming FILE:LINE, or with --skip-bad is counted and skipped."""
    kind, packer = report.kind, pipeline.packer
    vocab_size = packer.tok.vocab_size if packer.tok is not None else None
    for source, path in enumerate(paths):
        read_here = 0
        fields = _columnar_fields(path, kind)
        if fields is not None:
            read_here = _read_columnar(pipeline, source, path, fields, vocab_size, update=update)
        for number, place, record in iter_rows(path) if fields is None else ():
            read_here += 1
            report.examples_read += 1
            if report.examples_read % BATCH == 0:
                update(report.examples_read)
            _read_record(pipeline, source, number, place, record, vocab_size)
        if read_here == 0:
            pipeline.bad_record(str(path), BadRecordError("no records (empty file)"), count=False)


def _read_record(
    pipeline: _Pipeline, source: int, number: int, where: str, record, vocab_size: int | None
) -> None:
    """One record (or the reason it could not be read) into the pipeline."""
    kind, packer = pipeline.report.kind, pipeline.packer
    try:  # what can be wrong with this record
        if isinstance(record, BadRecordError):
            raise record
        example = read_example(record, kind, packer.last_turn_only, vocab_size)
        if not isinstance(example, Tokenized):
            rendered = pipeline.render(where, example)
            example = _Pending(source, number - 1, where, example, rendered)
    except BadRecordError as exc:
        pipeline.bad_record(where, exc)
        return
    if isinstance(example, Tokenized):
        pipeline.add_tokenized(source, number - 1, example)
    else:
        pipeline.add_rendered(example)


def _columnar_fields(path: Path | TableInput, kind: str) -> list[str] | None:
    """The columns of a pre-tokenized Parquet file or table read a record batch at a time (see
    :func:`plamo_fast.data.records.columnar_fields`), or None."""
    form = input_format(path) if kind == "sft" else None
    if form == "table":
        return columnar_fields(path.table.schema)
    schema = parquet_schema(path) if form == "parquet" else None
    return columnar_fields(schema) if schema is not None else None


def _read_columnar(
    pipeline: _Pipeline, source: int, path: Path | TableInput, fields: list[str], vocab_size,
    *, update,
) -> int:  # fmt: skip
    """A pre-tokenized Parquet file or table, a record batch at a time: no Python object per
    record. A batch is checked natively over its Arrow buffers; one with a row to refuse goes
    through the vectorised checks (which name it), one holding a null record by record.
    Returns the rows read."""
    report = pipeline.report
    number = 0
    pipeline.drain()  # keep input order
    for batch in _columnar_batches(path, fields):
        rows = _checked_natively(batch, fields, vocab_size)
        checked = tokenized_batch(batch, fields, vocab_size) if rows is None else None
        if rows is not None:
            pipeline.add_checked(source, number, rows)
        elif checked is None:
            for i, record in enumerate(batch.to_pylist(), start=number + 1):
                _read_record(pipeline, source, i, _row_name(path, i), record, vocab_size)
        else:
            pipeline.add_batch(source, number, path, checked)
        number += batch.num_rows
        report.examples_read += batch.num_rows
        update(report.examples_read)
    return number


def _columnar_batches(path: Path | TableInput, fields: list[str]):
    """The record batches of ``fields`` of a Parquet file (decoded in a thread, one batch
    ahead) or of a table (slices of its arrays, no copy), about ``READ_TOKENS`` tokens each."""
    rows = _batch_rows(path)
    if isinstance(path, TableInput):
        return iter(path.table.select(fields).to_batches(max_chunksize=rows))
    return _prefetched(parquet_batches(path, fields, rows))


def _row_name(path: Path | TableInput, number: int) -> str:
    """Row ``number`` (1-based) of a Parquet file or table as messages name it: ``FILE:N``,
    ``row N``."""
    return where(path, Row(number, None, None))


def _checked_natively(batch, fields: list[str], vocab_size: int | None) -> tuple | None:
    """``(ids, labels, lengths, trained)`` of a record batch whose rows all pass the checks of
    :func:`plamo_fast.data.records.tokenized_batch`, scanned natively over the Arrow buffers
    (ids and labels as int32 views of them where they are int32); None when that batch needs
    the vectorised checks instead: a label mask, a null, values other than int32 or int64 (both
    the same), or a row to refuse (they name it)."""
    if fields[1] != "labels":
        return None
    parts = [_list_buffers(batch.column(name)) for name in fields]
    if None in parts or parts[0][1].dtype != parts[1][1].dtype:
        return None
    (ids_off, ids), (lab_off, labels) = parts
    counts = _native.pretokenized_trained_counts(
        ids, ids_off, labels, lab_off, vocab_size or TOKEN_ID_LIMIT
    )
    if counts is None:
        return None
    ids, labels = ids[ids_off[0] : ids_off[-1]], labels[lab_off[0] : lab_off[-1]]
    return (
        ids.astype(np.int32, copy=False),
        labels.astype(np.int32, copy=False),
        np.diff(ids_off),
        np.frombuffer(counts, dtype="<i8"),
    )


def _list_buffers(column) -> tuple[np.ndarray, np.ndarray] | None:
    """``(offsets, values)`` of an Arrow list array as views of its buffers (no copy, and not
    through ``to_numpy``, which imports pandas): int64 offsets into the values (int32 or
    int64); None when it holds a null or other values."""
    import pyarrow as pa

    values = column.values
    kinds = {pa.int32(): np.int32, pa.int64(): np.int64}
    if column.null_count or values.null_count or values.type not in kinds:
        return None
    offset_kind = np.int64 if pa.types.is_large_list(column.type) else np.int32
    offsets = np.frombuffer(column.buffers()[1], dtype=offset_kind)
    offsets = offsets[column.offset : column.offset + len(column) + 1].astype(np.int64)
    flat = np.frombuffer(values.buffers()[1], dtype=kinds[values.type])
    return offsets, flat[values.offset : values.offset + len(values)]


def _prefetched(items):
    """``items``, each one read in a thread while the one before is processed (pyarrow decodes
    with the GIL released): two in memory at once."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        following = pool.submit(next, items, None)
        while (item := following.result()) is not None:
            following = pool.submit(next, items, None)
            yield item


def _batch_rows(path: Path | TableInput) -> int:
    """Rows per record batch so that a batch holds about ``READ_TOKENS`` tokens (from the
    file's or table's mean row length)."""
    import pyarrow.parquet as pq

    if isinstance(path, TableInput):
        import pyarrow.compute as pc

        table = path.table
        values = pc.sum(pc.list_value_length(table.column("input_ids"))).as_py() or 0
        return _rows_for(values, table.num_rows)
    metadata = pq.ParquetFile(path).metadata
    leaf = next(
        i
        for i in range(metadata.num_columns)
        if metadata.schema.column(i).path.startswith("input_ids.")
    )
    values = sum(
        metadata.row_group(g).column(leaf).num_values for g in range(metadata.num_row_groups)
    )
    return _rows_for(values, metadata.num_rows)


def _rows_for(values: int, rows: int) -> int:
    """Rows per batch for ``values`` tokens in ``rows`` rows."""
    mean = values / rows if rows else 1
    return max(1, min(READ_TOKENS, int(READ_TOKENS / max(mean, 1))))


def parse_input(spec: str | os.PathLike | TableInput) -> tuple[Path | TableInput, str | None]:
    """``FILE``, ``FILE:N`` (take N examples) or ``FILE:Wx`` (W times its examples, e.g. 0.5x or
    2x). The suffix is read only when it has that form, so other paths with ':' still work. A
    :class:`TableInput` is taken whole."""
    if isinstance(spec, TableInput):
        return spec, None
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    if sep and head and re.fullmatch(r"\d+|\d+(\.\d+)?x", tail):
        return Path(head), tail
    return Path(text), None


def _mixture_counts(amount: str, available: int) -> int:
    if amount.endswith("x"):
        return round(float(amount[:-1]) * available)
    return int(amount)


def _select(
    docs: _DocStore, report: PackReport, amounts: list, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The documents to pack, as indices into the store, and their group sizes. Without a
    mixture: all of them once. With one, each input's examples (whole DPO pairs) are resampled
    to the requested amount: all of them once per full multiple, then a seeded sample without
    replacement for the remainder."""
    sizes = np.asarray(docs.group_sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    if all(amount is None for amount in amounts):
        return np.arange(len(docs.lengths), dtype=np.int64), sizes
    rng = np.random.default_rng(seed)
    group_source = np.asarray(docs.source_ids, dtype=np.int64)[starts] if len(starts) else starts
    chosen = []
    for source, amount in enumerate(amounts):
        groups = np.flatnonzero(group_source == source)
        if amount is None:
            chosen.append(groups)
            continue
        want = _mixture_counts(amount, len(groups))
        if want and not len(groups):
            raise UsageError(f"input {source} has no packed examples to sample {amount} from")
        whole, rest = divmod(want, len(groups)) if len(groups) else (0, 0)
        picked = np.concatenate(
            [np.tile(groups, whole), np.sort(rng.choice(groups, size=rest, replace=False))]
        )
        chosen.append(picked.astype(np.int64))
        report.mixture[str(source)] = {
            "amount": amount,
            "available": int(len(groups)),
            "taken": int(want),
            "repeated": int(max(0, want - len(groups))),
        }
        if not amount.endswith("x") and want > len(groups):
            _warn_repeats(report.inputs[source], amount, len(groups), whole, rest)
    order = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    doc_index = concat_ranges(starts[order], sizes[order])
    report.examples_packed = len(order)
    report.total_tokens = int(np.asarray(docs.lengths, dtype=np.int64)[doc_index].sum())
    report.trained_tokens = int(np.asarray(docs.trained, dtype=np.int64)[doc_index].sum())
    return doc_index, sizes[order]


def _warn_repeats(path: str, amount: str, available: int, whole: int, rest: int) -> None:
    """``FILE:N`` with N above the file's packable examples repeats examples: say so (a
    mixture weight such as ``FILE:2x`` asks for the repeats and is not warned about)."""
    import sys

    extra = f", {rest} of them {whole + 1} times" if rest else ""
    print(
        f"plamo-fast pack: warning: {path}:{amount} asks for {amount} examples but the file has "
        f"{available} packable; examples repeat: each taken {whole} times{extra} "
        "(pack_report.json mixture.repeated)",
        file=sys.stderr,
    )


def _write_rows(
    open_writer,
    docs: _DocStore,
    doc_index: np.ndarray,
    group_sizes: np.ndarray,
    report: PackReport,
    *,
    seed: int,
    pad_id: int | None,
    multiple_sources: bool,
) -> None:
    """Plans the rows on lengths alone, then gathers and writes them chunk by chunk, so memory
    holds one chunk of rows (unless the writer keeps them: :class:`_TableList`);
    ``open_writer(first_table)`` gives what they are written to."""
    kind, max_length = report.kind, report.max_length
    tokens, labels, offsets = docs.files()
    lengths = np.diff(offsets)
    order, row_doc_offsets = plan_rows(
        lengths[doc_index], max_length, group_sizes=group_sizes, seed=seed
    )
    order = doc_index[order]
    doc_ids = np.asarray(docs.doc_ids, dtype=np.int64)
    sources = np.asarray(docs.source_ids, dtype=np.int32) if multiple_sources else None
    writer = None
    # Chunk k is encoded and written in a thread (the writers release the GIL) while chunk
    # k + 1 is gathered: at most two chunks in memory.
    pool = ThreadPoolExecutor(max_workers=1)
    writing = None
    try:
        for chunk_order, chunk_rows in row_chunks(order, row_doc_offsets, lengths, CHUNK_TOKENS):
            table = gather_table(
                tokens,
                labels,
                offsets,
                chunk_order,
                chunk_rows,
                labels_masked=docs.labels_masked,
                doc_ids=doc_ids,
                source_ids=sources,
                pair_ids=doc_ids if kind == "dpo" else None,
            )
            if pad_id is not None:
                table = pad_rows(table, max_length, pad_id)
            if writing is not None:
                writing.result()
            if writer is None:
                writer = open_writer(table)
            writing = pool.submit(writer.write_table, table)
            report.rows += table.num_rows
            del table
        if writing is not None:
            writing.result()
    finally:
        pool.shutdown(wait=True)
        if writer is not None:
            writer.close()


def _parquet_writer(path: Path, first):
    """The writer of pack's output, chosen on its first table: the native one when it takes
    the table, else pyarrow's (same options). Both have ``write_table`` and ``close``."""
    native = _NativeParquetWriter.open(path, first)
    if native is not None:
        return native
    import pyarrow.parquet as pq

    return pq.ParquetWriter(path, first.schema, **PARQUET_OPTIONS)


class _TableList:
    """The writer of :func:`pack_rows`: keeps each table (fresh buffers per chunk) in
    ``tables``."""

    def __init__(self, tables: list, first):
        self.tables = tables

    def write_table(self, table) -> None:
        self.tables.append(table)

    def close(self) -> None:
        pass


class _NativeParquetWriter:
    """``pyarrow.parquet.ParquetWriter(path, schema, **PARQUET_OPTIONS)`` for tables of
    non-null ``list<int32>``/``list<int64>`` columns (pack's), in Rust: the same Parquet schema,
    pages and ``ARROW:schema``, so readers see the same table; one row group per table, encoded
    from the Arrow buffers (no copy) with the GIL released."""

    CODECS = {"snappy": "snappy", "none": "none", None: "none"}
    # What the native writer implements of PARQUET_OPTIONS besides the codec.
    IMPLEMENTED = {"use_dictionary": False, "write_statistics": False}

    def __init__(self, path: Path, schema, kinds: list[tuple[str, str]], codec: str, **native):
        import base64

        # What pyarrow stores: the IPC serialization of the schema, base64 (read back as is).
        arrow_schema = base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")
        self.path, self.schema = path, schema
        self._writer = _native.ParquetListWriter(
            path, kinds, compression=codec, key_value_metadata=[("ARROW:schema", arrow_schema)],
            **native,
        )  # fmt: skip

    @classmethod
    def open(
        cls, path: Path, table, *, compression: str | None = None, page_bytes: int | None = None
    ) -> _NativeParquetWriter | None:
        """The writer of tables like ``table`` (``compression`` default: PARQUET_OPTIONS'), or
        None when it cannot take ``table``: another column type, non-nullable fields or field
        metadata (another Parquet schema), schema metadata, nulls, a codec other than snappy
        or none, PARQUET_OPTIONS it does not implement."""
        import pyarrow as pa

        codec = cls.CODECS.get(compression or PARQUET_OPTIONS["compression"])
        if codec is None or any(PARQUET_OPTIONS[k] != v for k, v in cls.IMPLEMENTED.items()):
            return None
        kinds = []
        for column_field in table.schema:
            kind = column_field.type
            if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
                return None
            if kind.value_type not in (pa.int32(), pa.int64()):
                return None
            if not (column_field.nullable and kind.value_field.nullable):
                return None
            if column_field.metadata or kind.value_field.metadata:
                return None  # e.g. PARQUET:field_id, which pyarrow writes into the schema
            kinds.append((column_field.name, str(kind.value_type)))
        if not kinds or table.schema.metadata:
            return None
        if any(_list_buffers(_one_chunk(column)) is None for column in table.columns):
            return None
        native = {"page_bytes": page_bytes} if page_bytes is not None else {}
        return cls(path, table.schema, kinds, codec, **native)

    def write_table(self, table) -> None:
        """Writes ``table`` as one row group (none when it has no rows)."""
        if not table.schema.equals(self.schema):
            raise ValueError(
                f"{self.path}: table schema does not match the file's\n{table.schema}\n"
                f"vs\n{self.schema}"
            )
        columns = []
        for name, column in zip(table.column_names, table.columns, strict=True):
            buffers = _list_buffers(_one_chunk(column))
            if buffers is None:
                raise ValueError(f"{self.path}: column {name} holds nulls (not writable here)")
            columns.append(buffers)
        self._writer.write_row_group(columns)

    def close(self) -> None:
        self._writer.close()


def _one_chunk(column):
    """A chunked Arrow column as one array (its only chunk, no copy, when it has one)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _pad_id(bundle: TokenizerBundle) -> int:
    token = bundle.special_tokens.get("pad_token") or bundle.special_tokens.get("eos_token")
    ids = bundle.native.encode_ids(token) if token else []
    if len(ids) != 1:
        raise UsageError(
            "--pad needs a pad_token (or eos_token) that is a single token in "
            "tokenizer_config.json, or --pad-id N"
        )
    return ids[0]


def _trained_counts(labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each document's targets after its first token (which is never one, see
    :meth:`_Pipeline._add`); an empty document has none."""
    starts = np.cumsum(lengths) - lengths
    targets = labels != IGNORE_INDEX
    trained = np.zeros(len(lengths), dtype=np.int64)
    filled = starts[lengths > 0]
    if len(filled):
        trained[lengths > 0] = np.add.reduceat(targets, filled, dtype=np.int64) - targets[filled]
    return trained


@dataclass
class _Pending:
    """A rendered record waiting for the tokenizer."""

    source: int
    doc_id: int
    where: str
    conversations: list[Conversation]
    rendered: list[tuple[str, list]]


class _Pipeline:
    """Keeps the native core busy: batch k+1 is rendered in Python and queued for tokenization
    (GIL released) before batch k's results are added, so adding overlaps tokenizing too.
    Results are added in input order. Bad records are refused or, with ``skip_bad``, counted."""

    def __init__(self, docs: _DocStore, report: PackReport, packer: _Packer, skip_bad: bool):
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self.docs, self.report, self.packer, self.skip_bad = docs, report, packer, skip_bad
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.inflight: deque = deque()
        self.pending: list[_Pending] = []

    def bad_record(self, where: str, exc: BadRecordError, count: bool = True) -> None:
        """Stops the run with ``FILE:LINE: reason``, or with ``skip_bad`` counts and records it."""
        message = f"{where}: {exc}"
        if not self.skip_bad:
            raise type(exc)(f"{message} (pass --skip-bad to skip and count such records)")
        if count:
            self.report.dropped[exc.drop_reason] += 1
        self.report.bad_records.append(message)

    def render(self, where: str, conversations: list[Conversation]) -> list[tuple[str, list]]:
        """A record's conversations rendered, with their spans (a refusal is this record's)."""
        if self.packer.tok is None:
            raise UsageError(
                f"{where}: this record is a conversation; rendering it needs --tokenizer (only "
                "pre-tokenized rows, with input_ids, pack without one)"
            )
        rendered = []
        sides = ("chosen", "rejected") if self.report.kind == "dpo" else ("",)
        for side, conversation in zip(sides, conversations, strict=True):
            try:
                rendered.append(self.packer.render(conversation))
            except BadRecordError as exc:
                if not side:
                    raise
                raise type(exc)(f"{side}: {exc}") from None
        return rendered

    def add_rendered(self, record: _Pending) -> None:
        self.pending.append(record)
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Queues the pending records for tokenization."""
        if not self.pending:
            return
        texts = [text for p in self.pending for text, _ in p.rendered]
        spans = [span for p in self.pending for _, span in p.rendered]
        future = self.executor.submit(self.packer.tokenize_flat, texts, spans)
        self.inflight.append((future, self.pending))
        self.pending = []
        while len(self.inflight) > 1:
            self._collect_oldest()

    def add_tokenized(self, source: int, doc_id: int, example: Tokenized) -> None:
        self.drain()  # keep input order
        self._add(source, doc_id, [(example.input_ids, example.labels)], None)

    def add_checked(self, source: int, before: int, rows: tuple) -> None:
        """The rows of a record batch that passed the native checks (``before`` rows of the
        file precede it): ``(ids, labels, lengths, trained)`` from :func:`_checked_natively`."""
        ids, labels, lengths, trained = rows
        doc_ids = before + np.arange(len(lengths), dtype=np.int64)
        self._add_documents(source, doc_ids, ids, labels, lengths, trained)

    def add_batch(self, source: int, before: int, path: Path, batch: TokenizedBatch) -> None:
        """The rows of a checked record batch (``before`` rows of the file precede it): the
        refused ones named and refused (or counted), the others through the length and label
        checks of :meth:`_add`, vectorised."""
        for row, message in sorted(batch.problems.items()):
            self.bad_record(_row_name(path, before + row + 1), BadRecordError(message))
        doc_ids = before + np.flatnonzero(batch.good)
        self._add_documents(source, doc_ids, batch.input_ids, batch.labels, batch.lengths)

    def _add_documents(self, sources, doc_ids, ids, labels, lengths, trained=None) -> None:
        """Adds one-document examples stored back to back (``lengths`` long) after the length
        and label checks of :meth:`_add`, vectorised; ``sources`` is one input or one each;
        ``trained``: each document's targets after its first token, when already counted."""
        report = self.report
        if trained is None:
            trained = _trained_counts(labels, lengths)
        too_long = lengths > self.packer.max_length
        untrained = ~too_long & (trained == 0)
        for reason, mask in (("too_long", too_long), ("no_trainable_token", untrained)):
            if mask.any():
                report.dropped[reason] += int(mask.sum())
        keep = ~(too_long | untrained)
        if not keep.all():
            tokens = np.repeat(keep, lengths)
            ids, labels = ids[tokens], labels[tokens]
        sources = np.broadcast_to(sources, keep.shape)[keep]
        self.docs.append_many(ids, labels, lengths[keep], trained[keep], doc_ids[keep], sources)
        report.total_tokens += len(ids)
        report.trained_tokens += int(trained[keep].sum())
        report.examples_packed += int(keep.sum())

    def _collect_oldest(self) -> None:
        future, pending = self.inflight.popleft()
        ids, labels, offsets = future.result()
        lengths = np.diff(offsets)
        packer = self.packer
        if self.report.kind == "sft" and (
            packer.truncate == "drop" or lengths.max(initial=0) <= packer.max_length
        ):  # one document per record, none to shorten: added together
            sources = np.array([p.source for p in pending], dtype=np.int64)
            doc_ids = np.array([p.doc_id for p in pending], dtype=np.int64)
            self._add_documents(sources, doc_ids, ids, labels, lengths)
            return
        encoded = [(ids[a:b], labels[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        cursor = 0
        for record in pending:
            parts = encoded[cursor : cursor + len(record.conversations)]
            cursor += len(record.conversations)
            try:
                self._add(record.source, record.doc_id, parts, record.conversations)
            except BadRecordError as exc:  # a shortened conversation the template refuses
                self.bad_record(record.where, exc)

    def drain(self) -> None:
        """Tokenizes and adds every record still pending."""
        self.flush()
        while self.inflight:
            self._collect_oldest()

    def close(self) -> None:
        """Stops the worker thread (after an error, without waiting for queued work)."""
        self.inflight.clear()
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _add(
        self,
        source: int,
        doc_id: int,
        parts: list[tuple[np.ndarray, np.ndarray]],
        conversations: list[Conversation] | None,
    ) -> None:
        """Adds one example (one document, or a DPO pair) after the length and label checks."""
        docs, report, packer = self.docs, self.report, self.packer
        if sum(len(ids) for ids, _ in parts) > packer.max_length:
            if packer.truncate == "left" and conversations is not None and len(parts) == 1:
                fitted = packer.fit_left(conversations[0])
                if fitted is None:
                    report.dropped["too_long"] += 1
                    return
                parts = [fitted]
            else:
                report.dropped["too_long"] += 1
                return
        # The first token of each document never carries a target (packing masks it), so a
        # document must have a trained token after its first.
        trained = [int(np.count_nonzero(labels[1:] != IGNORE_INDEX)) for _, labels in parts]
        if not all(trained):
            report.dropped["no_trainable_token"] += 1
            return
        for (ids, labels), count in zip(parts, trained, strict=True):
            docs.append(ids, labels, count, doc_id, source)
            report.total_tokens += len(ids)
            report.trained_tokens += count
        docs.group_sizes.append(len(parts))
        report.examples_packed += 1
