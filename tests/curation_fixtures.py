"""Shared material for the curation tests: where ../shared is, the shipped benchmark excerpts,
and small benchmark files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
BENCHMARKS = SHARED / "benchmarks"
DOLLY = SHARED / "corpora" / "databricks-dolly-15k-ja" / "databricks-dolly-15k-ja.jsonl"
# Excerpts of published question files shipped with the tests (see its SOURCE.md).
FIXTURE_BENCHMARKS = Path(__file__).resolve().parent / "fixtures" / "benchmarks"

needs_shared = pytest.mark.skipif(
    not (BENCHMARKS.is_dir() and DOLLY.is_file()), reason="../shared material absent"
)
needs_benchmarks = pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="../shared absent")

MT_BENCH_LIKE = [
    {
        "question_id": 81,
        "category": "writing",
        "turns": [
            "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting "
            "cultural experiences and must-see attractions.",
            "Rewrite your previous response. Start every sentence with the letter A.",
        ],
    },
    {
        "question_id": 121,
        "category": "coding",
        "turns": [
            "Develop a Python program that reads all the text files under a directory and "
            "returns top-5 words with the most number of occurrences.",
            "Can you parallelize it?",
        ],
    },
    {
        "question_id": 1,
        "category": "generic",
        "turns": ["時間管理能力を向上させるにはどうしたらいいですか？"],
    },
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def mt_bench_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_jsonl(folder / "question.jsonl", MT_BENCH_LIKE)
