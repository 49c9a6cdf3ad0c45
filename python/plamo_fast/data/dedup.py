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
import re
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from plamo_fast import _native
from plamo_fast.data.conversation import (
    ALPACA_OUTPUT,
    MESSAGE_FIELDS,
    message_role,
    message_text,
)
from plamo_fast.data.curation import (
    CurationSummary,
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
    BadRecordError,
    check_input,
    copy_records,
    input_format,
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
    if len(texts) == 1 and QUOTED_PASSAGE.search(texts[0][1]):
        question = QUOTED_PASSAGE.sub("\n", texts[0][1])
        return question if _native.normalize_text(question) else None
    return None


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
            raise BadRecordError(
                "no user text (expected messages/conversations with user turns, prompt, "
                "instruction, input or question)"
            )
        question = question_of(texts)
        answer = answer_of(record) if question is not None else None
        return "\n".join(t for _, t in texts), question, answer
    if key == "record":
        return record_text(record), None, None
    value = record.get(key)
    if not isinstance(value, str):
        raise BadRecordError(f"no string field {key!r}")
    return value, None, None


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
) -> dict:
    inputs = [Path(p) for p in inputs]
    for path in inputs:
        check_input(path)
    if keep not in KEEP_POLICIES:
        raise UsageError(f"--keep must be one of {', '.join(KEEP_POLICIES)}")
    if (keep == "max") != (keep_column is not None):
        raise UsageError("--keep max needs --keep-column (and --keep-column needs --keep max)")
    guard = guard or ProvenanceGuard()
    report_path = Path(report_path) if report_path else None
    single, targets = output_paths(inputs, Path(output), report_path)
    summary = CurationSummary()
    with curation_outputs(
        output, report_path, single=single, command="dedup", inputs=inputs, overwrite=overwrite
    ) as (out, report_partial):
        report = ReportWriter(report_partial)
        spill = (out.parent if single else out) / f".dedup-spill-{out.name}"
        try:
            deduper = _native.Deduper(
                spill, near=near, threshold=threshold, ngram=ngram, num_perm=num_perm, seed=seed,
                min_recall=LSH_MIN_RECALL,
            )  # fmt: skip
            origins = _sketch_inputs(
                deduper, inputs, key, fields, near, exact_only, keep_column, keep == "longest",
                skip_bad, guard, summary, report, progress,
            )  # fmt: skip
            root_b, sim_b, question_b, stats = deduper.finish()
            exact_pairs, candidates, verified, other_question, question_edits = stats
            root = np.frombuffer(root_b, dtype=np.uint32)
            similarities = (
                np.frombuffer(sim_b, dtype=np.float32),
                np.frombuffer(question_b[0], dtype=np.float32),
                np.frombuffer(question_b[1], dtype=np.float32),
                np.frombuffer(question_b[2], dtype=np.bool_),
            )
            keep_mask = _keepers(root, keep, origins.values_array())
            if report_path is not None:
                _report_clusters(report, root, keep_mask, similarities, inputs, origins)
        finally:
            report.close()
            spill.unlink(missing_ok=True)
        summary.records_kept = int(keep_mask.sum())
        removed = len(root) - summary.records_kept
        if removed:
            summary.dropped["duplicate"] = removed
        summary.check_kept("dedup", allow_empty)
        _write_kept(inputs, targets, out, single, keep_mask, origins, progress)
    result = summary.as_dict()
    sizes = np.bincount(root) if len(root) else np.zeros(0, dtype=np.int64)
    bands, rows = _native.Deduper.lsh_shape(threshold, num_perm, LSH_MIN_RECALL)
    result.update(
        {
            "clusters_with_duplicates": int(np.count_nonzero(sizes > 1)),
            "exact_duplicate_pairs": exact_pairs,
            "near_candidate_pairs": candidates,
            "near_verified_pairs": verified,
            "near_pairs_kept_apart_by_question": other_question,
            "near_pairs_same_question_by_edits_and_answer": question_edits,
            "records_with_question": origins.questions,
            "lsh": {"bands": bands, "rows": rows} if near else None,
        }
    )
    return result


class _Origins:
    """Where each sketched record came from, and its keep-column value (compact arrays)."""

    def __init__(self) -> None:
        self.file = array("I")
        self.line = array("q")
        self.values = array("d")
        self.questions = 0  # records with a question (question + context)
        self.number_keys: dict[int, str] = {}  # per file: what its numbers are (line, record)

    def place(self, inputs: list[Path], i: int) -> dict:
        """Where record ``i`` is, for the report (:func:`~plamo_fast.data.curation.location`)."""
        file = int(self.file[i])
        return location(inputs[file], int(self.line[i]), self.number_keys[file])

    def values_array(self) -> np.ndarray:
        return np.frombuffer(self.values, dtype=np.float64) if self.values else np.zeros(0)


def _sketch_inputs(
    deduper, inputs, key, fields, near, exact_only, keep_column, keep_longest, skip_bad, guard,
    summary, report, progress,
) -> _Origins:  # fmt: skip
    """Pass 1: every record's key text into the deduper. The native sketch of a batch runs in a
    worker thread (without the GIL) while Python parses the next batch; batches are added in
    order."""
    origins = _Origins()
    advance, stop = byte_progress("dedup: sketch", inputs, progress)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dedup-sketch") as pool:
            pending = None
            for file_index, path in enumerate(inputs):
                near_here = near and not any(fnmatch.fnmatch(path.name, g) for g in exact_only)
                rows = good_rows(
                    path, skip_bad=skip_bad, guard=guard, summary=summary, report=report,
                    advance=advance,
                )  # fmt: skip
                for batch in batched(rows):
                    origins.number_keys[file_index] = number_key(batch[0])
                    texts, questions, answers = [], [], []
                    keyed = _keyed(batch, path, key, fields, skip_bad, summary)
                    for row, text, question, answer in keyed:
                        texts.append(text)
                        questions.append(question)
                        answers.append(answer)
                        origins.questions += question is not None
                        origins.file.append(file_index)
                        origins.line.append(row.number)
                        if keep_column is not None:
                            origins.values.append(_numeric(row.record.get(keep_column)))
                        elif keep_longest:
                            origins.values.append(_record_size(row))
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


def _write_kept(inputs, targets, out, single, keep_mask, origins, progress) -> None:
    """Pass 2: copy the kept records, found by line (JSONL, raw bytes; nothing is parsed again;
    a JSON array's elements as JSON lines)
    or row number (Parquet, filtered in Arrow with the input's schema)."""
    file_of = np.frombuffer(origins.file, dtype=np.uint32)
    line_of = np.frombuffer(origins.line, dtype=np.int64)
    advance, stop = byte_progress("dedup: write", inputs, progress)
    try:
        for k, (path, target) in enumerate(zip(inputs, targets, strict=True)):
            lines = line_of[(file_of == k) & keep_mask]
            target = out if single else out / target.name
            if input_format(path) == "parquet":
                _copy_parquet_rows(path, target, lines)
                advance(path.stat().st_size)
            else:
                copy_records(path, target, lines, advance)
    finally:
        stop()


def _copy_parquet_rows(path: Path, target: Path, rows: np.ndarray) -> None:
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    keep = np.zeros(source.metadata.num_rows + 1, dtype=bool)
    keep[rows] = True
    with pq.ParquetWriter(target, source.schema_arrow, compression="zstd") as writer:
        start = 1
        for batch in source.iter_batches(batch_size=65536):
            mask = keep[start : start + batch.num_rows]
            start += batch.num_rows
            writer.write_batch(batch.filter(mask))


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
