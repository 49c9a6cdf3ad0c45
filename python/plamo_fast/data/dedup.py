"""``plamo-fast dedup``: exact and near-duplicate removal within and across datasets.

Pass 1 streams every input once: the native deduper keeps per record only a 128-bit hash of the
matching form and the LSH band keys (the n-gram sets go to a spill file), so inputs larger than
memory work. Clustering (exact hashes, LSH candidates verified by true Jaccard, union-find) picks
one record per cluster by the keep policy. Pass 2 streams the inputs again and writes the kept
records unchanged.

Question + context records (see :func:`question_of`): such a record is a near duplicate only of
another such record with the same question, so different questions about one passage are all
kept. The questions are the same when their n-gram Jaccard is at or above the threshold, or
when their edit similarity (1 - Levenshtein distance / longer length) is and so is the Jaccard
of the records' answers (:func:`answer_of`): a typo leaves the answer alone, while a question
one word away on the same passage ("melting" / "boiling point") has another answer. Exact
duplicates (equal matching forms of the key) are always duplicates.

Every cluster keeps one record, so a run keeps none only when it read none that it could key
(every record skipped as bad or refused by the provenance guard): that fails and writes nothing
unless ``allow_empty``. More than 10% removed (duplicates included: a ``--key`` that most
records share collapses them) gets a warning line
(:func:`plamo_fast.data.accounting.check_kept`). Report entries name a record by ``line``
(JSONL line, Parquet row) or ``record`` (JSON array element).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import tempfile
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path
from uuid import uuid4

import numpy as np

from plamo_fast import _native
from plamo_fast.data.columns import float64_values, string_buffers, validity_bits, value_kind
from plamo_fast.data.conversation import (
    ALPACA_OUTPUT,
    MESSAGE_FIELDS,
    message_role,
    message_text,
)
from plamo_fast.data.curation import (
    CurationSummary,
    ReportList,
    ReportWriter,
    batched,
    byte_progress,
    curation_outputs,
    good_rows,
    location,
    number_key,
    reject_bad,
)
from plamo_fast.data.curation_io import (
    _ALPACA_TEXT_FIELDS,
    TEXT_FIELDS,
    BadRecordError,
    Row,
    TableInput,
    check_input,
    copy_records,
    output_paths,
    record_text,
    user_texts,
)
from plamo_fast.data.provenance import ProvenanceGuard
from plamo_fast.errors import UsageError

KEEP_POLICIES = ("first", "longest", "max")
# Candidates are verified by true Jaccard, so the LSH shape leans to recall: a pair exactly at
# the threshold shares a band with at least this probability (18 x 6 at 0.8).
LSH_MIN_RECALL = 0.995
# Question + context layouts: the question field and the context field, both non-empty and the
# key's only texts (Alpaca/Dolly instruction + input, original Dolly instruction + context with
# --fields context, SQuAD-like question + context).
QUESTION_FIELDS = ("instruction", "question", "query", "prompt")
CONTEXT_FIELDS = ("input", "context", "passage")
# A passage quoted in a single user text: a fenced (```) or triple-quoted (""") block, or a run
# of lines starting with ">".
QUOTED_PASSAGE = re.compile(r'```.*?```|""".*?"""|(?:^[ \t]*>[^\n]*(?:\n|$))+', re.S | re.M)


def key_text(record: dict, key: str, fields: tuple[str, ...]) -> str:
    """The text compared for ``--key``: ``prompt`` (user-side texts), ``record`` (every string
    value) or the name of a string field."""
    return _key_and_question(record, key, fields)[0]


def question_of(texts: list[tuple[str, str]]) -> str | None:
    """The question of a question + context record, from its ``(field, text)`` user texts; None
    when it is not one. It is one when the texts are exactly one question field and one context
    field (``QUESTION_FIELDS``, ``CONTEXT_FIELDS``), or a single user text holding a quoted
    passage (``QUOTED_PASSAGE``) and text outside it: the question is the text outside."""
    names = [name for name, _ in texts]
    if len(texts) == 2:
        questions = [t for name, t in texts if name in QUESTION_FIELDS]
        if len(questions) == 1 and any(name in CONTEXT_FIELDS for name in names):
            return questions[0]
        return None
    if len(texts) == 1 and _may_quote(texts[0][1]):
        return quoted_question(texts[0][1])
    return None


def quoted_question(text: str) -> str | None:
    """The question of a single user text that quotes a passage (``QUOTED_PASSAGE``): the text
    outside the passages, when it has a matching form; None otherwise."""
    if not QUOTED_PASSAGE.search(text):
        return None
    question = QUOTED_PASSAGE.sub("\n", text)
    return question if _native.normalize_text(question) else None


def _may_quote(text: str) -> bool:
    """Whether ``text`` has what every ``QUOTED_PASSAGE`` needs (a fence, triple quotes or
    ">"): a quick test that spares most texts the regex search."""
    return ">" in text or "```" in text or '"""' in text


def answer_of(record: dict) -> str | None:
    """The answer of a record: its ``output`` / ``response`` text (Alpaca/Dolly), else its
    assistant turns joined; None when it has none. Only compared between question + context
    records whose questions differ by a few edits."""
    for name in ALPACA_OUTPUT:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    for name in MESSAGE_FIELDS:
        turns = record.get(name)
        if not isinstance(turns, list):
            continue
        texts = [
            message_text(m)
            for m in turns
            if isinstance(m, dict) and str(message_role(m)).lower() == "assistant"
        ]
        texts = [t for t in texts if t and t.strip()]
        if texts:
            return "\n".join(texts)
    return None


def _key_and_question(
    record: dict, key: str, fields: tuple[str, ...]
) -> tuple[str, str | None, str | None]:
    """The key text and, when the key is ``prompt`` and the record has a question, the question
    and the answer (None when absent)."""
    if key == "prompt":
        texts = user_texts(record, fields)
        if not texts:
            raise BadRecordError(_no_key(key))
        question = question_of(texts)
        answer = answer_of(record) if question is not None else None
        return "\n".join(t for _, t in texts), question, answer
    if key == "record":
        return record_text(record), None, None
    value = record.get(key)
    if not isinstance(value, str):
        raise BadRecordError(_no_key(key))
    return value, None, None


def _no_key(key: str) -> str:
    """Why a record has no ``key`` text."""
    if key == "prompt":
        return (
            "no user text (expected messages/conversations with user turns, prompt, "
            "instruction, input or question)"
        )
    return f"no string field {key!r}"


def dedup(
    inputs: list[Path],
    output: Path,
    *,
    near: bool = False,
    threshold: float = 0.8,
    key: str = "prompt",
    keep: str = "first",
    keep_column: str | None = None,
    exact_only: tuple[str, ...] = (),
    ngram: int = 5,
    num_perm: int = 128,
    seed: int = 0,
    fields: tuple[str, ...] = (),
    report_path: Path | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    guard: ProvenanceGuard | None = None,
    progress: bool = True,
    allow_empty: bool = False,
    output_format: str | None = None,
) -> dict:
    """Dedup the input files into ``output`` (see the module text; ``output_format``: None for
    each input's own format, or ``"hf"``, :func:`~plamo_fast.data.curation_io.output_paths`)."""
    inputs = [check_input(Path(p)) for p in inputs]
    options = _Options(
        near, threshold, key, keep, keep_column, tuple(exact_only), ngram, num_perm, seed,
        tuple(fields), skip_bad, guard or ProvenanceGuard(),
    )  # fmt: skip
    report_path = Path(report_path) if report_path else None
    plan = output_paths(inputs, Path(output), report_path, output_format)
    summary = CurationSummary()
    with curation_outputs(
        output, report_path, folder=plan.folder, command="dedup", inputs=inputs,
        overwrite=overwrite,
    ) as (out, report_partial):  # fmt: skip
        report = ReportWriter(report_partial)
        try:
            spill = (out if plan.folder else out.parent) / f".dedup-spill-{out.name}"
            reported = report_path is not None
            sketch = partial(_sketch_inputs, inputs=inputs, o=options, summary=summary,
                             report=report, progress=progress)  # fmt: skip
            found = _cluster(inputs, options, spill, summary, report, reported, sketch)
        finally:
            report.close()
        summary.check_kept("dedup", allow_empty)
        _write_kept(inputs, plan.targets(out), found, progress)
    return found.result(summary, options)


def dedup_table(
    table,
    *,
    clusters: bool = False,
    near: bool = False,
    threshold: float = 0.8,
    key: str = "prompt",
    keep: str = "first",
    keep_column: str | None = None,
    ngram: int = 5,
    num_perm: int = 128,
    seed: int = 0,
    fields: tuple[str, ...] = (),
    skip_bad: bool = False,
    guard: ProvenanceGuard | None = None,
    allow_empty: bool = False,
    columnar: bool | None = None,
) -> tuple[np.ndarray, list[dict], dict]:
    """Dedup the rows of an Arrow table in memory, as :func:`dedup` does a file with the same
    records (the same code; nothing is written but the near-duplicate spill, a file unlinked as
    soon as it is open): ``(kept, report, summary)``, with ``kept`` the 0-based indices of the
    rows kept, ``report`` the report's entries (with ``clusters``; the rows dropped by the
    provenance guard always), which name a row by ``row`` (1-based).

    The keys are read straight from the table's Arrow string columns (:class:`_TableKeys`, no
    Python object per row) where that gives the answer of reading the rows as records;
    ``columnar`` False reads the records always, True by column or a :class:`UsageError`
    saying why the table needs its records. One difference: by column, only the columns the
    key and the guard read are decoded, so invalid UTF-8 elsewhere (possible only in Arrow data
    built by hand, never from pyarrow or polars) is not an error there, as it is for records."""
    source = TableInput(table)
    options = _Options(
        near, threshold, key, keep, keep_column, (), ngram, num_perm, seed, tuple(fields),
        skip_bad, guard or ProvenanceGuard(),
    )  # fmt: skip
    keys = _TableKeys.of(source, options) if columnar is not False else "columnar=False"
    if isinstance(keys, _TableKeys):
        try:
            return _dedup_source(source, options, clusters, allow_empty, keys)
        except _RowsNeeded as exc:  # invalid Arrow data in a column read: the reader names it
            keys = str(exc)
    if columnar:
        raise UsageError(f"the keys of this table cannot be read by column: {keys}")
    return _dedup_source(source, options, clusters, allow_empty, None)


def _dedup_source(source: TableInput, options: _Options, clusters: bool, allow_empty: bool,
                  keys: _TableKeys | None) -> tuple[np.ndarray, list[dict], dict]:  # fmt: skip
    """:func:`dedup_table`, its keys read by ``keys``, or as records when None."""
    summary, report = CurationSummary(), ReportList()
    if keys is not None:
        sketch = partial(keys.sketch, o=options, summary=summary)
    else:
        sketch = partial(_sketch_inputs, inputs=[source], o=options, summary=summary,
                         report=report, progress=False)  # fmt: skip
    spill = Path(tempfile.gettempdir()) / f".plamo-fast-dedup-spill-{os.getpid()}-{uuid4().hex}"
    found = _cluster([source], options, spill, summary, report, clusters, sketch)
    summary.check_kept("dedup", allow_empty)
    kept = np.frombuffer(found.origins.line, dtype=np.int64)[found.keep_mask] - 1
    return kept, report.entries, found.result(summary, options)


@dataclass(frozen=True)
class _Options:
    near: bool
    threshold: float
    key: str
    keep: str
    keep_column: str | None
    exact_only: tuple[str, ...]
    ngram: int
    num_perm: int
    seed: int
    fields: tuple[str, ...]
    skip_bad: bool
    guard: ProvenanceGuard

    def __post_init__(self) -> None:
        if self.keep not in KEEP_POLICIES:
            raise UsageError(f"--keep must be one of {', '.join(KEEP_POLICIES)}")
        if (self.keep == "max") != (self.keep_column is not None):
            raise UsageError("--keep max needs --keep-column (and --keep-column needs --keep max)")


@dataclass
class _Clusters:
    """What pass 1 found: each record's cluster root, the records kept, where each came from,
    and the deduper's pair counts."""

    root: np.ndarray
    keep_mask: np.ndarray
    origins: _Origins
    stats: tuple[int, int, int, int, int]

    def result(self, summary: CurationSummary, options: _Options) -> dict:
        exact_pairs, candidates, verified, other_question, question_edits = self.stats
        result = summary.as_dict()
        root = self.root
        sizes = np.bincount(root) if len(root) else np.zeros(0, dtype=np.int64)
        bands, rows = _native.Deduper.lsh_shape(options.threshold, options.num_perm, LSH_MIN_RECALL)
        result.update(
            {
                "clusters_with_duplicates": int(np.count_nonzero(sizes > 1)),
                "exact_duplicate_pairs": exact_pairs,
                "near_candidate_pairs": candidates,
                "near_verified_pairs": verified,
                "near_pairs_kept_apart_by_question": other_question,
                "near_pairs_same_question_by_edits_and_answer": question_edits,
                "records_with_question": self.origins.questions,
                "lsh": {"bands": bands, "rows": rows} if options.near else None,
            }
        )
        return result


def _cluster(inputs, options: _Options, spill: Path, summary, report, reported: bool,
             sketch) -> _Clusters:  # fmt: skip
    """Pass 1 (``sketch(deduper)``: every record's key into the deduper, its n-gram sets to
    ``spill``, removed afterwards; returns the :class:`_Origins`) and the clustering: one record
    kept per cluster, and with ``reported`` one report line per cluster with duplicates. Counts
    the records in ``summary``."""
    o = options
    try:
        deduper = _native.Deduper(
            spill, near=o.near, threshold=o.threshold, ngram=o.ngram, num_perm=o.num_perm,
            seed=o.seed, min_recall=LSH_MIN_RECALL,
        )  # fmt: skip
        origins = sketch(deduper)
        root_b, sim_b, question_b, stats = deduper.finish()
    finally:
        spill.unlink(missing_ok=True)
    root = np.frombuffer(root_b, dtype=np.uint32)
    similarities = (
        np.frombuffer(sim_b, dtype=np.float32),
        np.frombuffer(question_b[0], dtype=np.float32),
        np.frombuffer(question_b[1], dtype=np.float32),
        np.frombuffer(question_b[2], dtype=np.bool_),
    )
    keep_mask = _keepers(root, o.keep, origins.values_array())
    if reported:
        _report_clusters(report, root, keep_mask, similarities, inputs, origins)
    summary.records_kept = int(keep_mask.sum())
    removed = len(root) - summary.records_kept
    if removed:
        summary.dropped["duplicate"] = removed
    return _Clusters(root, keep_mask, origins, stats)


class _Origins:
    """Where each sketched record came from, and its keep-column value (compact arrays)."""

    def __init__(self) -> None:
        self.file = array("I")
        self.line = array("q")
        self.values = array("d")
        self.questions = 0  # records with a question (question + context)
        self.number_keys: dict[int, str] = {}  # per file: what its numbers are (line, record)

    def add(self, file_index: int, rows: list, questions: list, o: _Options) -> None:
        """The keyed rows of a batch (``questions``: each one's question or None)."""
        self.questions += len(questions) - questions.count(None)
        self.file.extend(repeat(file_index, len(rows)))
        self.line.extend([row.number for row in rows])
        if o.keep_column is not None:
            self.values.extend([_numeric(row.record.get(o.keep_column)) for row in rows])
        elif o.keep == "longest":
            self.values.extend([_record_size(row) for row in rows])

    def add_numbers(self, file_index: int, numbers: np.ndarray, questions: int,
                    values: np.ndarray | None) -> None:  # fmt: skip
        """:meth:`add` for keyed rows given by number (``values``: their keep values)."""
        self.questions += questions
        self.file.frombytes(np.full(len(numbers), file_index, dtype=np.uint32).tobytes())
        self.line.frombytes(numbers.astype(np.int64).tobytes())
        if values is not None:
            self.values.frombytes(values.astype(np.float64).tobytes())

    def place(self, inputs: list[Path], i: int) -> dict:
        """Where record ``i`` is, for the report (:func:`~plamo_fast.data.curation.location`)."""
        file = int(self.file[i])
        return location(inputs[file], int(self.line[i]), self.number_keys[file])

    def values_array(self) -> np.ndarray:
        return np.frombuffer(self.values, dtype=np.float64) if self.values else np.zeros(0)


def _sketch_inputs(deduper, inputs, o: _Options, summary, report, progress) -> _Origins:
    """Pass 1: every record's key text into the deduper. The native sketch of a batch runs in a
    worker thread (without the GIL) while Python parses the next batch; batches are added in
    order."""
    origins = _Origins()
    advance, stop = byte_progress("dedup: sketch", inputs, progress)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dedup-sketch") as pool:
            pending = None
            for file_index, path in enumerate(inputs):
                near_here = o.near and not any(fnmatch.fnmatch(path.name, g) for g in o.exact_only)
                rows = good_rows(
                    path, skip_bad=o.skip_bad, guard=o.guard, summary=summary, report=report,
                    advance=advance,
                )  # fmt: skip
                for batch in batched(rows):
                    origins.number_keys[file_index] = number_key(batch[0])
                    keyed = list(_keyed(batch, path, o.key, o.fields, o.skip_bad, summary))
                    rows_here = [k[0] for k in keyed]
                    texts = [k[1] for k in keyed]
                    questions = [k[2] for k in keyed]
                    answers = [k[3] for k in keyed]
                    origins.add(file_index, rows_here, questions, o)
                    if pending is not None:
                        pending.result()
                    near_flags = [near_here] * len(texts)
                    pending = pool.submit(deduper.add, texts, near_flags, questions, answers)
            if pending is not None:
                pending.result()
    finally:
        stop()
    return origins


def _keyed(batch, path, key, fields, skip_bad, summary):
    """``(row, key text, question or None, answer or None)`` for the rows of a batch that have a
    key (others are bad records)."""
    for row in batch:
        try:
            text, question, answer = _key_and_question(row.record, key, fields)
        except BadRecordError as exc:
            summary.records_read -= 1
            reject_bad(path, row, str(exc), skip_bad, summary)
            continue
        yield row, text, question, answer


# Rows of a table keyed per native call (:class:`_TableKeys`).
TABLE_BATCH = 1 << 15


class _TableKeys:
    """The keys of a table's rows read in Rust straight from its Arrow string columns
    (:class:`plamo_fast._native.ColumnKeys`: each batch's offsets, data and validity buffers,
    no Python object per row), giving what reading each row as a record gives: the key text
    (``key`` a string column; or ``prompt``: the user texts of
    :func:`~plamo_fast.data.curation_io.user_texts` from plain string columns, joined by
    newlines), the question (:func:`question_of`: the two-field rule in Rust; a single text that
    may quote a passage goes to :func:`quoted_question`, that row's text alone made a Python
    string), the answer (:func:`answer_of`), the rows without a key (bad records, named as the
    row path names them) and ``--keep max``'s values. :meth:`of` builds one only for tables
    where that holds (else it says why not, and the rows are read as records)."""

    def __init__(self, source: TableInput, names: list[str], selector: str | None, rule,
                 values) -> None:  # fmt: skip
        self.source = source
        read = names + ([selector] if selector is not None and selector not in names else [])
        self.table = source.table.select(read)  # the columns read
        self.names = names  # the string columns, in the rule's order
        self.selector = selector  # the column whose non-null rows read the Alpaca fields
        self.rule = rule
        self.values = values  # per row, the --keep-column value (None: not needed)

    @classmethod
    def of(cls, source: TableInput, o: _Options) -> _TableKeys | str:
        """The table's column keys, or why its rows must be read as records."""
        table = source.table
        try:
            if table.num_rows == 0 or len(set(table.column_names)) < table.num_columns:
                raise _RowsNeeded("no rows, or two columns with one name")
            if o.keep == "longest":
                raise _RowsNeeded("keep='longest' compares whole records")
            _guard_reads_nothing(table, o.guard, source)
            values = _keep_values(table, o.keep_column) if o.keep_column is not None else None
            if o.key == "record":
                raise _RowsNeeded("key='record' is the whole record")
            if o.key != "prompt":
                if not _string_column(table, o.key):
                    raise _RowsNeeded(f"no string column {o.key!r}")
                rule = _native.ColumnKeys(
                    prompt=False, plain=[0], alpaca=[0], roles=[0], answers=[], near=o.near
                )
                return cls(source, [o.key], None, rule, values)
            return cls._prompt(source, o, values)
        except _RowsNeeded as exc:
            return str(exc)

    @classmethod
    def _prompt(cls, source: TableInput, o: _Options, values) -> _TableKeys:
        """The ``prompt`` key: every field :func:`user_texts` reads is a string column (or
        absent, null, or of a type it ignores), no messages."""
        table = source.table
        for name in MESSAGE_FIELDS:
            if _has_values(table, name):
                raise _RowsNeeded(f"column {name!r} holds messages")
        # is_alpaca: a record whose instruction is not null reads the Alpaca fields.
        selector = "instruction" if _has_values(table, "instruction") else None
        orders = []
        for own in (TEXT_FIELDS, _ALPACA_TEXT_FIELDS if selector else TEXT_FIELDS):
            extra = tuple(f for f in dict.fromkeys(o.fields) if f not in (*MESSAGE_FIELDS, *own))
            orders.append([f for f in own + extra if _string_column(table, f)])
        answers = [f for f in ALPACA_OUTPUT if _string_column(table, f, lists_ignored=True)]
        names = list(dict.fromkeys(orders[0] + orders[1] + answers))
        if not orders[0] and not orders[1]:
            raise _RowsNeeded("no user-text column")
        rule = _native.ColumnKeys(
            prompt=True,
            plain=[names.index(f) for f in orders[0]],
            alpaca=[names.index(f) for f in orders[1]],
            roles=[1 if f in QUESTION_FIELDS else 2 if f in CONTEXT_FIELDS else 0 for f in names],
            answers=[names.index(f) for f in answers],
            near=o.near,
        )
        return cls(source, names, selector, rule, values)

    def sketch(self, deduper, o: _Options, summary: CurationSummary) -> _Origins:
        """Pass 1 over the table: every row's key into the deduper, a batch per native call
        (in order); the rows without a key are bad records (``o.skip_bad``)."""
        origins = _Origins()
        origins.number_keys[0] = "row"
        start = 0
        for batch in self.table.to_batches(max_chunksize=TABLE_BATCH):
            columns = [string_buffers(batch.column(name)) for name in self.names]
            alpaca = validity_bits(batch.column(self.selector)) if self.selector else None
            try:
                bad, questions = self.rule.add(deduper, columns, alpaca, quoted_question)
            except ValueError as exc:  # offsets outside the data, invalid UTF-8
                raise _RowsNeeded(f"invalid Arrow data: {exc}") from None
            numbers = np.arange(start + 1, start + batch.num_rows + 1)
            start += batch.num_rows
            summary.records_read += len(numbers) - len(bad)
            for i in bad:
                row = Row(int(numbers[i]), None, None, unit="row")
                reject_bad(self.source, row, _no_key(o.key), o.skip_bad, summary)
            numbers = np.delete(numbers, bad) if bad else numbers
            values = self.values[numbers - 1] if self.values is not None else None
            origins.add_numbers(0, numbers, questions, values)
        return origins


class _RowsNeeded(Exception):
    """Why a table's keys cannot be read by column (:meth:`_TableKeys.of`)."""


def _has_values(table, name: str) -> bool:
    """Whether the table has a column ``name`` with a non-null value (a null value is an
    absent field to every reader of a record)."""
    return name in table.column_names and table.column(name).null_count < table.num_rows


def _string_column(table, name: str, lists_ignored: bool = False) -> bool:
    """Whether ``name`` is a string column with a value, for a reader of the field that takes
    a string and ignores values of other types (but lists, unless ``lists_ignored``)."""
    if not _has_values(table, name):
        return False
    kind = value_kind(table.column(name).type)
    if kind is None or (kind == "list" and not lists_ignored):
        raise _RowsNeeded(f"column {name!r} is {table.column(name).type}")
    return kind == "str"


def _guard_reads_nothing(table, guard: ProvenanceGuard, source: TableInput) -> None:
    """Every row of the table passes ``guard``: no field that it reads has a value, and a
    record without them passes."""
    read = [name for name in guard.fields_read() if _has_values(table, name)]
    if read:
        raise _RowsNeeded(f"the provenance guard reads {read[0]!r}")
    if guard.drop_reason({}, source) is not None:
        raise _RowsNeeded("the provenance guard drops every row")


def _keep_values(table, name: str) -> np.ndarray:
    """Per row, the ``--keep-column`` value as :func:`_numeric` reads it from a record."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not _has_values(table, name):
        return np.full(table.num_rows, -math.inf)
    column = table.column(name)
    kind = value_kind(column.type)
    if kind is None:
        raise _RowsNeeded(f"column {name!r} is {column.type}")
    if kind != "number":
        return np.full(table.num_rows, -math.inf)
    try:  # exact: refused for an integer that a float64 does not hold
        floats = pc.cast(column, pa.float64()).fill_null(-math.inf)
    except pa.ArrowInvalid:
        raise _RowsNeeded(f"column {name!r} holds integers beyond 2**53") from None
    values = np.concatenate([float64_values(chunk) for chunk in floats.chunks])
    return np.where(np.isnan(values), -math.inf, values)


def _report_clusters(report, root, keep_mask, similarities, inputs, origins) -> None:
    """One line per cluster with duplicates: the kept record and the removed ones, each with
    the lowest Jaccard of the key among the verified pairs it was part of (1.0: exact
    duplicate) and, when the pairs were question + context records, the lowest Jaccard of the
    questions (``question_jaccard``), the lowest question similarity that made them the same
    (``question_similarity``: that Jaccard, or the edit similarity where the answers decided;
    null: no question compared) and ``matched``: what had to be near (``key``, ``key and
    question``, or ``key, question edits and answer``)."""
    sizes = np.bincount(root)
    members = np.flatnonzero(sizes[root] > 1)  # only records in clusters of two or more
    if len(members) == 0:
        return
    members = members[np.argsort(root[members], kind="stable")]
    bounds = np.flatnonzero(np.diff(root[members])) + 1
    for group in np.split(members, bounds):
        kept = int(group[keep_mask[group]][0])
        report.write(
            {
                "cluster": int(root[group[0]]),
                "size": len(group),
                "kept": origins.place(inputs, kept),
                "removed": [
                    {**origins.place(inputs, int(i)), **_similarity(*(s[i] for s in similarities))}
                    for i in group
                    if int(i) != kept
                ],
            }
        )


def _similarity(key: float, question: float, same: float, by_answer: bool) -> dict:
    if math.isnan(question):
        return {"jaccard": round(float(key), 4), "question_jaccard": None,
                "question_similarity": None, "matched": "key"}  # fmt: skip
    return {
        "jaccard": round(float(key), 4),
        "question_jaccard": round(float(question), 4),
        "question_similarity": round(float(same), 4),
        "matched": "key, question edits and answer" if by_answer else "key and question",
    }


def _write_kept(inputs, targets, found: _Clusters, progress) -> None:
    """Pass 2: copy the kept records, found by line or row number
    (:func:`~plamo_fast.data.curation_io.copy_records`: JSONL lines as raw bytes, nothing parsed
    again; Parquet and saved datasets filtered in Arrow)."""
    file_of = np.frombuffer(found.origins.file, dtype=np.uint32)
    line_of = np.frombuffer(found.origins.line, dtype=np.int64)
    advance, stop = byte_progress("dedup: write", inputs, progress)
    try:
        for k, (path, target) in enumerate(zip(inputs, targets, strict=True)):
            copy_records(path, target, line_of[(file_of == k) & found.keep_mask], advance)
    finally:
        stop()


def _numeric(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return -math.inf
    return float(value) if not math.isnan(value) else -math.inf


def _record_size(row) -> float:
    """The size ``--keep longest`` compares: the record's bytes as stored (JSONL line), or its
    JSON length (Parquet)."""
    if row.raw is not None:
        return float(len(row.raw.rstrip(b"\r\n")))
    return float(len(json.dumps(row.record, ensure_ascii=False, default=str)))


def _keepers(root: np.ndarray, keep: str, values: np.ndarray) -> np.ndarray:
    """One record per cluster: the first, the longest record, or the highest ``--keep-column``;
    ties go to the first."""
    n = len(root)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    if keep == "first":
        mask[root == np.arange(n, dtype=np.uint32)] = True
        return mask
    order = np.lexsort((np.arange(n), -values, root))
    first_of_group = np.ones(n, dtype=bool)
    first_of_group[1:] = root[order][1:] != root[order][:-1]
    mask[order[first_of_group]] = True
    return mask
