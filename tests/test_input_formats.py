"""The one reader of every command (``curation_io.iter_input``): JSON-array files, read as a
stream, each element named ``FILE:record N``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plamo_fast.data import curation_io
from plamo_fast.data.conversation import BadRecordError
from plamo_fast.data.curation_io import iter_input, where


@pytest.fixture(params=[7, 1 << 20], ids=["tiny-chunks", "default-chunks"])
def chunk(request, monkeypatch):
    """Element boundaries, numbers and multi-byte characters across chunk edges, or not."""
    monkeypatch.setattr(curation_io, "ARRAY_CHUNK", request.param)


def test_an_array_reads_like_the_same_records_as_lines(tmp_path: Path, chunk):
    records = [
        {"instruction": f"質問{i}", "output": "答え" * i, "n": 12345678901234, "x": [1.5, None]}
        for i in range(30)
    ]
    array = tmp_path / "a.json"
    array.write_text("\n  " + json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    lines = tmp_path / "a.jsonl"
    lines.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    from_array, from_lines = list(iter_input(array)), list(iter_input(lines))
    assert [r.record for r in from_array] == [r.record for r in from_lines] == records
    assert [r.raw for r in from_array] == [r.raw for r in from_lines]  # one JSON line each
    assert where(array, from_array[3]) == f"{array}:record 4"
    assert where(lines, from_lines[3]) == f"{lines}:4"


def test_bad_elements_are_rows_with_their_reason(tmp_path: Path, chunk):
    path = tmp_path / "a.json"
    path.write_bytes(b' [ {"a": 1}, 5, {"b": "\xff"}, {"c": "\\ud800"} , {"d": 1}] \n')
    rows = list(iter_input(path))
    assert [(r.number, r.error) for r in rows] == [
        (1, None),
        (2, "expected a JSON object, got int"),
        (3, "invalid UTF-8"),
        (4, "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)"),
        (5, None),
    ]
    assert rows[4].record == {"d": 1}


@pytest.mark.parametrize(
    "text,message",
    [
        ('[{"a": 1} {"b": 2}]', r":record 1: expected ',' or ']' after it"),
        ('[{"a": 1}, {"b": ]', r":record 2: malformed JSON: Expecting value"),
        ('[{"a": 1}', r":record 1: expected ',' or ']' after it"),
        ('[{"a": 1}] x', r": text after the closing '\]'"),
    ],
)
def test_a_malformed_array_stops_at_the_element(tmp_path: Path, chunk, text, message):
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(BadRecordError, match=message):
        list(iter_input(path))


def test_an_empty_array_is_an_empty_file(tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text(" [ ] ")
    (row,) = iter_input(path)
    assert row.number == 0 and row.error == "empty file (no records)"


def test_every_command_reads_arrays_dedup_for_one(tmp_path: Path):
    """dedup, decontaminate, sample and pairs read through iter_input too: dedup on an array
    keeps the first of two copies and writes the kept records as JSON lines."""
    from plamo_fast.cli import main

    records = [
        {"instruction": "日本の首都は？", "input": "", "output": "東京"},
        {"instruction": "富士山の高さは？", "input": "", "output": "3776 m"},
        {"instruction": "日本の首都は？", "input": "", "output": "東京です"},
    ]
    array = tmp_path / "dolly.json"
    array.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    out = tmp_path / "out.json"
    assert main(["dedup", str(array), "-o", str(out), "-q"]) == 0
    kept = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert kept == records[:2]


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_copy_records_writes_the_numbered_records_as_lines(tmp_path: Path, layout):
    records = [{"n": i, "text": "é" * i} for i in range(1, 6)]
    path = tmp_path / "in.json"
    if layout == "array":
        path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    numbers = [r.number for r in iter_input(path) if r.record["n"] % 2]
    curation_io.copy_records(path, curation_io.Target(tmp_path / "out.jsonl", "jsonl"), numbers)
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records[0::2]
