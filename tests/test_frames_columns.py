"""Dedup of a table reads its keys straight from the Arrow string columns (in Rust, no Python
object per row) and gives exactly what reading every row as a record gives: the same kept rows,
report (clusters, provenance drops), summary and bad-record errors, for random tables with
duplicates and near duplicates, unicode, blank and empty strings, nulls, chunked and sliced
arrays, string and large_string; tables that need their records fall back to them."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest

import plamo_fast
from plamo_fast.data import curation_io, dedup
from plamo_fast.data.conversation import BadRecordError
from plamo_fast.data.dedup import dedup_table
from plamo_fast.data.provenance import ProvenanceGuard
from plamo_fast.errors import UsageError

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")

WORDS = (
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "river", "bank", "dawn",
    "farmer", "walks", "horses", "road", "market", "日本", "の", "首都", "は", "どこ", "です",
    "か", "東京", "ｶﾞｷﾞ", "Ｈｅｌｌｏ", "Straße", "e\u0301", "か\u3099", "🙂", "12", "3", "1,234",
    "x>y",
)  # fmt: skip
BLANKS = ("", " ", "\u3000", "\x1c", "\t\n", "\u00a0\u2028")


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))


def variant(rng: random.Random, text: str) -> str:
    """An exact duplicate after normalization, or a near duplicate (one word replaced)."""
    if rng.random() < 0.5:
        return rng.choice(("\u3000", " ", "")) + text.upper() + rng.choice(("!", "。", ""))
    words = text.split(" ")
    words[rng.randrange(len(words))] = rng.choice(WORDS)
    return " ".join(words)


def quoted(rng: random.Random, text: str) -> str:
    """A text quoting a passage (fenced, triple-quoted or "> " lines), sometimes with no
    question outside it."""
    passage = sentence(rng)
    form = rng.randrange(3)
    block = (f"```\n{passage}\n```", f'"""{passage}"""', f"> {passage}\n> {passage}")[form]
    return block if rng.random() < 0.2 else f"{text}\n{block}"


def field_text(rng: random.Random, nulls: float) -> str | None:
    r = rng.random()
    if r < nulls:
        return None
    if r < nulls + 0.08:
        return rng.choice(BLANKS)
    return quoted(rng, sentence(rng)) if r < 0.3 else sentence(rng)


def random_rows(rng: random.Random, names: tuple[str, ...], rows: int) -> list[dict]:
    """Rows of text fields; nearly half repeat an earlier row, each field the same or a
    variant of it; a few have only nulls and blanks."""
    records: list[dict] = []
    for _ in range(rows):
        r = rng.random()
        if r < 0.05:  # no user text
            record = {n: rng.choice((None, *BLANKS)) for n in names}
        elif records and r < 0.5:
            earlier = rng.choice(records)
            record = {
                k: variant(rng, v) if v and v.strip() and rng.random() < 0.4 else v
                for k, v in earlier.items()
            }
        else:
            record = {n: field_text(rng, 0.05 if n == "instruction" else 0.2) for n in names}
        records.append(record)
    return records


LAYOUTS = {
    "prompt": ("prompt", "response"),
    "alpaca": ("instruction", "input", "output"),
    "dolly": ("instruction", "context", "response"),
    "qa": ("question", "context", "output"),
    "mixed": (
        "prompt",
        "instruction",
        "input",
        "context",
        "question",
        "query",
        "passage",
        "title",
        "output",
        "response",
    ),  # fmt: skip
}


def chunked(rng: random.Random, values: list, arrow_type) -> pa.ChunkedArray:
    """``values`` as a chunked array cut at random rows, each chunk a slice of a bigger
    array (its offsets and validity bits start inside their buffers)."""
    cuts = sorted(rng.sample(range(1, len(values)), min(3, len(values) - 1)))
    pieces = []
    for start, end in zip([0, *cuts], [*cuts, len(values)], strict=True):
        padded = [None, "pad", *values[start:end], "pad"] if arrow_type != pa.int64() else None
        if padded is None:
            pieces.append(pa.array(values[start:end], arrow_type))
        else:
            pieces.append(pa.array(padded, arrow_type).slice(2, end - start))
    return pa.chunked_array(pieces, arrow_type)


def random_table(seed: int, layout: str, rows: int = 160) -> pa.Table:
    rng = random.Random(seed)
    columns = {"id": chunked(rng, list(range(rows)), pa.int64())}
    records = random_rows(rng, LAYOUTS[layout], rows)
    for name in LAYOUTS[layout]:
        kind = rng.choice((pa.string(), pa.large_string()))
        columns[name] = chunked(rng, [r[name] for r in records], kind)
    columns["score"] = pa.array(
        [rng.choice((None, float("nan"), rng.random(), 2.0)) for _ in range(rows)], pa.float64()
    )
    columns["flag"] = pa.array([rng.random() < 0.5 for _ in range(rows)])  # ignored by the key
    table = pa.table(columns)
    start = rng.randrange(5)
    return table.slice(start, rows - start - rng.randrange(5))


def outcome(table, **options):
    """What dedup of ``table`` gives: kept rows, report and summary, or the error."""
    try:
        kept, report, summary = dedup_table(table, clusters=True, **options)
    except BadRecordError as exc:
        return ("error", str(exc))
    return kept.tolist(), report, summary


def assert_same(table, **options):
    """Both paths give the same outcome; returns it."""
    by_column = outcome(table, columnar=True, **options)
    assert by_column == outcome(table, columnar=False, **options)
    return by_column


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("seed", range(4))
def test_random_tables_dedup_by_column_as_by_record(layout: str, seed: int):
    table = random_table(seed, layout)
    fields = {"mixed": ("title", "passage", "context"), "qa": ("context",)}.get(layout, ())
    for near in (False, True):
        result = assert_same(table, near=near, skip_bad=True, fields=fields)
        kept, report, summary = result
        assert summary["clusters_with_duplicates"] > 0 and summary["bad_records_skipped"] > 0
        if near and layout in ("qa", "alpaca", "dolly"):
            assert summary["records_with_question"] > 0
        assert_same(table, near=near, skip_bad=True, fields=fields, keep="max",
                    keep_column="score", threshold=0.6, ngram=3)  # fmt: skip
    error = assert_same(table, near=True, fields=fields)  # the first row without a key
    assert error[0] == "error" and "no user text" in error[1]


@pytest.mark.parametrize("kind", ["string", "large_string"])
def test_a_string_key_column_with_nulls_and_empty_strings(kind: str):
    texts = ["a b c", "", None, "A  B C!", "", "x" * 50, None, "ｘ" * 50]
    table = pa.table({"text": pa.array(texts, getattr(pa, kind)()), "score": range(8)})
    kept, _, summary = assert_same(table, key="text", skip_bad=True)
    # Empty keys are never duplicates of each other; nulls have no key.
    assert kept == [0, 1, 4, 5] and summary["bad_records_skipped"] == 2
    assert assert_same(table, key="text", skip_bad=True, keep="max", keep_column="score")[0] == [
        1, 3, 4, 7,
    ]  # fmt: skip
    for empty in (pa.array(["", ""]), pa.array(["", None, ""], pa.large_string()).slice(1)):
        kept = assert_same(pa.table({"text": empty}), key="text", skip_bad=True)[0]
        assert kept == [i for i, v in enumerate(empty.to_pylist()) if v is not None]
    error = assert_same(table, key="text")
    assert error == ("error", "row 3: no string field 'text' (pass --skip-bad to count and "
                     "skip bad records)")  # fmt: skip


def test_blank_is_what_python_strips():
    """A prompt that is only whitespace (as ``str.strip`` has it) is no user text."""
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    others = ["\u200b", "\u180e", "\ufeff", "\x00", "\x7f", "\u2060"]  # not whitespace
    texts = [c * n for c in spaces + others for n in (1, 2)] + [" ok ", "OK"]
    table = pa.table({"prompt": texts, "input": ["\x1d"] * len(texts)})
    kept, _, summary = assert_same(table, skip_bad=True)
    assert summary["bad_records_skipped"] == 2 * len(spaces)


def test_quoted_passages_give_the_questions_of_the_records():
    rng = random.Random(7)
    passage = " ".join(sentence(rng) for _ in range(4))
    asks = ["What is the main idea?", "What is the main idea??", "Who walks the horses?"]
    texts = [f"{ask}\n```\n{passage}\n```" for ask in asks]
    texts += [f"{asks[0]}\n> {passage}", f'"""{passage}"""', f"> {passage}", "1 > 0 " + passage]
    table = pa.table({"prompt": texts, "output": ["same", "same", "other", "", None, "x", "y"]})
    kept, report, summary = assert_same(table, near=True)
    assert summary["records_with_question"] == 4 and report


def test_the_keys_make_no_python_object_per_row(monkeypatch):
    """The columnar path reads no row as a record: the records' readers may raise."""
    table = random_table(1, "dolly", rows=400).drop_columns(["flag"])
    table = table.filter(pa.compute.match_substring_regex(table["instruction"], "[a-z]"))
    df = pl.from_arrow(table)
    calls = [
        {"near": False}, {"near": True}, {"near": True, "clusters": True},
        {"key": "context", "skip_bad": True}, {"keep": "max", "keep_column": "score"},
    ]  # fmt: skip
    expected = [plamo_fast.dedup(df, **options) for options in calls]

    def refuse(*args, **kwargs):
        raise AssertionError("a row was read as a record")

    monkeypatch.setattr(dedup, "good_rows", refuse)
    monkeypatch.setattr(curation_io, "_batch_records", refuse)
    for options, rows in zip(calls, expected, strict=True):
        got = plamo_fast.dedup(df, **options)
        assert got.equals(rows) and got.height > 0
    assert expected[1].height < expected[0].height < df.height


GUARDED = ProvenanceGuard.from_options(None, True, None, False, ("data=mit",))


@pytest.mark.parametrize(
    ("columns", "options", "why"),
    [
        ({"messages": [[{"role": "user", "content": "hi"}]] * 3}, {}, "'messages'"),
        ({"prompt": [["a"], ["a"], ["b"]]}, {}, "'prompt' is list"),
        ({"prompt": pa.array(["a", "a", "b"]).dictionary_encode()}, {}, "dictionary"),
        ({"prompt": ["a", "a", "b"]}, {"keep": "longest"}, "longest"),
        ({"prompt": ["a", "a", "b"]}, {"key": "record"}, "whole record"),
        ({"prompt": ["a", "a", "b"]}, {"key": "text"}, "no string column 'text'"),
        ({"prompt": ["a", "a", "b"], "model": ["gpt-4", None, "x"]}, {}, "reads 'model'"),
        ({"prompt": ["a", "a", "b"], "license": ["mit"] * 3}, {"guard": GUARDED}, "'license'"),
        (
            {"prompt": ["a", "a", "b"]},
            {"guard": ProvenanceGuard(commercial_only=True), "allow_empty": True},
            "drops every row",
        ),  # fmt: skip
        (
            {"prompt": ["a", "a", "b"], "n": [1, 2**60, 3]},
            {"keep": "max", "keep_column": "n"},
            "beyond 2",
        ),  # fmt: skip
        ({"prompt": pa.array([], pa.string())}, {"allow_empty": True}, "no rows"),
    ],
)
def test_tables_that_need_their_records_are_read_as_records(columns, options, why):
    table = pa.table(columns)
    with pytest.raises(UsageError, match=why):
        dedup_table(table, columnar=True, **options)
    # By default such a table is not refused: it falls back to reading its records.
    expected = outcome(table, columnar=False, **options)
    assert outcome(table, **options) == expected


def test_what_the_key_does_not_read_is_left_to_the_column_path():
    """Columns the rule ignores (numbers, a messages column of nulls, a source that the
    default guard does not read) and a guard that passes every row by the table's name keep
    the columnar path."""
    table = pa.table({
        "prompt": ["a b", "A B", "c"], "messages": pa.array([None] * 3, pa.null()),
        "question": [1, 2, 3], "n": [1, 5, 3], "source": ["x", "y", "z"],
    })  # fmt: skip
    assert assert_same(table, keep="max", keep_column="n")[0] == [1, 2]
    table = table.drop_columns(["source"])
    assert assert_same(table, guard=GUARDED, keep="max", keep_column="n")[0] == [1, 2]


def test_invalid_utf8_is_named_by_the_records_reader():
    valid = pa.array(["ok", "bad", "ok"])
    _, offsets, data = valid.buffers()
    raw = data.to_pybytes().replace(b"bad", b"b\xffd")
    broken = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(raw)])
    table = pa.table({"prompt": broken})
    expected = outcome(table, columnar=False)
    assert expected[0] == "error" and "invalid UTF-8" in expected[1]
    assert outcome(table) == expected
    with pytest.raises(UsageError, match="invalid UTF-8"):
        dedup_table(table, columnar=True)


def test_kept_indices_are_the_rows_of_the_original_table():
    table = random_table(3, "prompt", rows=300)
    kept, _, _ = assert_same(table, near=True, skip_bad=True)
    assert np.all(np.diff(kept) > 0) and kept[-1] < table.num_rows


class _Spy(dict):
    """An empty record that notes every field looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, name, default=None):
        self.names.add(name)
        return default

    def __contains__(self, name) -> bool:
        self.names.add(name)
        return False


@pytest.mark.parametrize("commercial_only", [False, True])
@pytest.mark.parametrize("proprietary", [(), ("gpt-4",)])
def test_the_guard_names_every_field_it_reads(commercial_only, proprietary):
    """The columnar path trusts ``fields_read``: it must hold every field ``drop_reason``
    looks up (top level), and setting one of them can change the verdict."""
    from pathlib import Path

    guard = ProvenanceGuard(commercial_only, proprietary)
    spy = _Spy()
    guard.drop_reason(spy, Path("data.jsonl"))
    assert spy.names <= set(guard.fields_read())
    if proprietary:
        assert guard.drop_reason({"model": "gpt-4-0613"}, Path("x")) is not None
    if commercial_only:
        assert guard.drop_reason({"license": "mit"}, Path("x")) is None
