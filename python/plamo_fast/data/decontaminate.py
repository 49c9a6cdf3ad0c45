"""``plamo-fast decontaminate``: drop training records that contain benchmark questions.

Every user turn and prompt-like field of a record is scanned by the native leak index (exact,
containment and near matches on the matching form; see rust/core/src/leak.rs). Benchmark texts
shorter than ``min_near_len`` normalized characters match only without edits. Each report line
shows the training text that matched (``matched``) beside the benchmark's (``benchmark_text``).
A record is removed when a first turn (or single-turn question) matches, or when a later turn
matches together with its own first turn in the same record. Kept records are written
unchanged, in the input's format; each removed record gets one report line, naming it by
``line`` (JSONL line, Parquet row) or ``record`` (JSON array element).

A run that keeps no record (every one a leak, refused by the provenance guard, or skipped as
bad) fails and writes nothing unless ``allow_empty``; more than 10% removed gets a warning line
(:func:`plamo_fast.data.accounting.check_kept`).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from plamo_fast import _native
from plamo_fast.data.benchmarks import BenchItem, read_benchmarks, split_spec
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
    BadRecordError,
    RecordWriter,
    TableInput,
    check_input,
    output_paths,
    user_texts,
)
from plamo_fast.data.provenance import ProvenanceGuard

KIND_RANK = {"exact": 0, "containment": 1, "near": 2}
MATCHED_TEXT_LIMIT = 300


@dataclass(frozen=True)
class LeakParams:
    ngram: int = 5
    candidate_containment: float = 0.3
    min_item_len: int = 10
    min_contained_len: int = 10
    min_near_len: int = 30
    edit_rate: float = 0.2
    edit_free_len: int = 5


def build_index(items: list[BenchItem], params: LeakParams = LeakParams()):
    return _native.LeakIndex(
        [it.text for it in items],
        ngram=params.ngram,
        candidate_containment=params.candidate_containment,
        min_item_len=params.min_item_len,
        min_contained_len=params.min_contained_len,
        min_near_len=params.min_near_len,
        edit_rate=params.edit_rate,
        edit_free_len=params.edit_free_len,
    )


def leaks_in_records(index, items: list[BenchItem], records_texts: list[list[tuple[str, str]]]):
    """Per record, its leak matches (best first) as dicts; an empty list keeps the record."""
    texts, owner = _flatten(records_texts)
    return _collect(index.scan(texts), texts, owner, items, len(records_texts))


def _flatten(records_texts):
    texts: list[str] = []
    owner: list[tuple[int, str]] = []
    for r, fields in enumerate(records_texts):
        for name, text in fields:
            texts.append(text)
            owner.append((r, name))
    return texts, owner


def _collect(scan_result, texts, owner, items, n_records) -> list[list[dict]]:
    found: list[list[dict]] = [[] for _ in range(n_records)]
    for t, item, kind, score, containment, start, end in scan_result:
        r, name = owner[t]
        it = items[item]
        found[r].append(
            {
                "benchmark": it.benchmark,
                "item_id": it.item_id,
                "turn": it.turn,
                "kind": kind,
                "score": round(score, 4),
                "containment": round(containment, 4),
                "field": name,
                "span": [start, end],
                "matched": texts[t][start:end][:MATCHED_TEXT_LIMIT],
                "benchmark_text": it.text[:MATCHED_TEXT_LIMIT],
            }
        )
    return [_counted(matches) for matches in found]


def _counted(matches: list[dict]) -> list[dict]:
    """Keep the matches that count: first turns, and later turns whose first turn also
    matched in the record. Best first: exact, containment, near; then score."""
    firsts = {(m["benchmark"], m["item_id"]) for m in matches if m["turn"] == 1}
    counted = [m for m in matches if m["turn"] == 1 or (m["benchmark"], m["item_id"]) in firsts]
    counted.sort(key=lambda m: (KIND_RANK[m["kind"]], -m["score"], m["benchmark"], m["turn"]))
    return counted


def decontaminate(
    inputs: list[Path],
    benches: list[str],
    output: Path,
    *,
    report_path: Path | None = None,
    fields: tuple[str, ...] = (),
    bench_field: str | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    guard: ProvenanceGuard | None = None,
    params: LeakParams = LeakParams(),
    progress: bool = True,
    allow_empty: bool = False,
    output_format: str | None = None,
) -> dict:
    """Filter the input files into ``output`` (see the module text; ``output_format``: None for
    each input's own format, or ``"hf"``, :func:`~plamo_fast.data.curation_io.output_paths`)."""
    inputs = [check_input(Path(p)) for p in inputs]
    report_path = Path(report_path) if report_path else None
    plan = output_paths(inputs, Path(output), report_path, output_format)
    protected = [*inputs, *(split_spec(spec)[1] for spec in benches)]
    summary = CurationSummary()
    with curation_outputs(
        output, report_path, folder=plan.folder, command="decontaminate", inputs=protected,
        overwrite=overwrite,
    ) as (out, report_partial):  # fmt: skip
        report = ReportWriter(report_partial)
        try:
            leak_filter = _Filter.of(
                benches, bench_field, params, fields, report, summary, skip_bad
            )
            writers = (RecordWriter(p, t) for p, t in zip(inputs, plan.targets(out), strict=True))
            leak_filter.run_all(inputs, writers, guard or ProvenanceGuard(), progress)
        finally:
            report.close()
        summary.check_kept("decontaminate", allow_empty)
    return leak_filter.result(summary)


def decontaminate_table(
    table,
    benches: list[str],
    *,
    fields: tuple[str, ...] = (),
    bench_field: str | None = None,
    skip_bad: bool = False,
    guard: ProvenanceGuard | None = None,
    params: LeakParams = LeakParams(),
    allow_empty: bool = False,
) -> tuple[list[int], list[dict], dict]:
    """Filter the rows of an Arrow table in memory, as :func:`decontaminate` does a file with
    the same records (the same code, nothing written): ``(kept, report, summary)``, with ``kept``
    the 0-based indices of the rows kept and ``report`` the report's entries, which name a row
    by ``row`` (1-based)."""
    summary, report = CurationSummary(), ReportList()
    leak_filter = _Filter.of(benches, bench_field, params, fields, report, summary, skip_bad)
    kept = KeptRows()
    leak_filter.run_all([TableInput(table)], [kept], guard or ProvenanceGuard(), progress=False)
    summary.check_kept("decontaminate", allow_empty)
    return [n - 1 for n in kept.numbers], report.entries, leak_filter.result(summary)


class KeptRows:
    """A record writer that notes the numbers of the rows written (a table's kept rows)."""

    def __init__(self) -> None:
        self.numbers: list[int] = []

    def write(self, row) -> None:
        self.numbers.append(row.number)

    def close(self) -> None:
        pass


class _Filter:
    """Filters inputs batch by batch. The native scan of a batch runs in a worker thread
    (without the GIL) while Python parses the next batch."""

    def __init__(self, benchmarks, params, fields, report, summary, skip_bad):
        self.benchmarks, self.params = benchmarks, params
        self.items = benchmarks.items
        self.index = build_index(self.items, params)
        self.fields = fields
        self.report, self.summary, self.skip_bad = report, summary, skip_bad
        self.removed_by: Counter = Counter()
        self.kinds: Counter = Counter()

    @classmethod
    def of(cls, benches, bench_field, params, fields, report, summary, skip_bad) -> _Filter:
        """A filter of the benchmarks ``benches`` (``--bench`` specs)."""
        benchmarks = read_benchmarks(benches, bench_field)
        return cls(benchmarks, params, fields, report, summary, skip_bad)

    def run_all(self, inputs, writers, guard, progress: bool) -> None:
        """Every input's kept records to its writer (closed afterwards, also on an error)."""
        advance, stop = byte_progress("decontaminate", inputs, progress)
        try:
            for path, writer in zip(inputs, writers, strict=True):
                try:
                    rows = good_rows(
                        path, skip_bad=self.skip_bad, guard=guard, summary=self.summary,
                        report=self.report, advance=advance,
                    )  # fmt: skip
                    self.run(path, rows, writer)
                finally:
                    writer.close()
        finally:
            stop()

    def result(self, summary: CurationSummary) -> dict:
        result = summary.as_dict()
        index, items, params = self.index, self.items, self.params
        result["benchmark_files"] = len(self.benchmarks.files)
        result["benchmark_files_skipped"] = [str(f) for f in self.benchmarks.skipped]
        result["benchmark_items"] = len(items)
        result["benchmark_items_too_short"] = sum(
            index.item_len(k) < params.min_item_len for k in range(len(items))
        )
        result["removed_by_benchmark"] = dict(sorted(self.removed_by.items()))
        result["removed_by_kind"] = dict(sorted(self.kinds.items()))
        return result

    def run(self, path: Path, rows, writer: RecordWriter) -> None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="leak-scan") as pool:
            pending = None
            for batch in batched(rows):
                kept_rows, texts_per_row = self._prepare(path, batch)
                texts, owner = _flatten(texts_per_row)
                scan = pool.submit(self.index.scan, texts)
                if pending is not None:
                    self._finish(path, writer, *pending)
                pending = (kept_rows, texts, owner, scan)
            if pending is not None:
                self._finish(path, writer, *pending)

    def _prepare(self, path: Path, batch):
        texts_per_row, rows = [], []
        for row in batch:
            try:
                texts = user_texts(row.record, self.fields)
                if not texts:
                    raise BadRecordError(
                        "no user text (expected messages/conversations with user turns, prompt, "
                        "instruction, input or question; name others with --fields)"
                    )
            except BadRecordError as exc:
                self.summary.records_read -= 1
                reject_bad(path, row, str(exc), self.skip_bad, self.summary)
                continue
            texts_per_row.append(texts)
            rows.append(row)
        return rows, texts_per_row

    def _finish(self, path: Path, writer: RecordWriter, rows, texts, owner, scan) -> None:
        found = _collect(scan.result(), texts, owner, self.items, len(rows))
        for row, matches in zip(rows, found, strict=True):
            if not matches:
                writer.write(row)
                self.summary.records_kept += 1
                continue
            best = matches[0]
            self.summary.dropped["benchmark_leak"] += 1
            self.removed_by[best["benchmark"]] += 1
            self.kinds[best["kind"]] += 1
            self.report.write(
                {
                    **location(path, row.number, number_key(row)),
                    **best,
                    "other_matches": len(matches) - 1,
                }
            )
