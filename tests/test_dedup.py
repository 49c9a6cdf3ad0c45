"""Dedup against the reference (true Jaccard over every pair): no record removed without a
verified near duplicate in its cluster, planted near duplicates found; keep policies,
exact-only sources, streaming in many batches, idempotence."""

from __future__ import annotations

import itertools
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curation_fixtures import write_jsonl

from plamo_fast import _native
from plamo_fast.data import curation
from plamo_fast.data.dedup import dedup
from plamo_fast.outputs import MARKER
from plamo_fast.reference.matching import jaccard, normalize


def random_text(rng: random.Random, n: int = 300) -> str:
    return "".join(chr(rng.randrange(0x4E00, 0x4E00 + 3000)) for _ in range(n))


def small_edit(text: str, rng: random.Random, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        chars[rng.randrange(len(chars))] = chr(rng.randrange(0x3041, 0x3090))
    return "".join(chars)


def planted_corpus(seed: int = 0, distinct: int = 300, copies: int = 60):
    rng = random.Random(seed)
    texts = [random_text(rng) for _ in range(distinct)]
    for source in rng.sample(range(distinct), copies):
        texts.append(small_edit(texts[source], rng, rng.choice([1, 2, 3])))
    return texts


def kept_texts(path):
    return [json.loads(x)["prompt"] for x in path.read_text(encoding="utf-8").splitlines()]


def test_near_dedup_agrees_with_true_jaccard(tmp_path):
    texts = planted_corpus()
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": t} for t in texts])
    report = tmp_path / "clusters.jsonl"
    dedup([data], tmp_path / "o.jsonl", near=True, threshold=0.8, report_path=report,
          progress=False)  # fmt: skip
    forms = [normalize(t) for t in texts]
    clusters = [json.loads(x) for x in report.read_text().splitlines()]
    removed = set()
    for c in clusters:
        members = [c["kept"]["line"] - 1] + [r["line"] - 1 for r in c["removed"]]
        for r in c["removed"]:
            i = r["line"] - 1
            removed.add(i)
            best = max(jaccard(forms[i], forms[j]) for j in members if j != i)
            assert best >= 0.8  # verified, never a guess
    true_pairs = [
        (i, j)
        for i, j in itertools.combinations(range(len(texts)), 2)
        if jaccard(forms[i], forms[j]) >= 0.9
    ]
    assert len(true_pairs) >= 40
    found = sum(j in removed for _, j in true_pairs)
    assert found / len(true_pairs) >= 0.95
    assert len(kept_texts(tmp_path / "o.jsonl")) == len(texts) - len(removed)


def test_exact_dedup_keeps_first_and_is_idempotent(tmp_path):
    rows = [{"prompt": p} for p in ["a b c", "x", "A  B C!", "y", "ａ　ｂ，ｃ", "x", "1 2"]]
    first = write_jsonl(tmp_path / "d.jsonl", rows)
    dedup([first], tmp_path / "o1.jsonl", progress=False)
    assert kept_texts(tmp_path / "o1.jsonl") == ["a b c", "x", "y", "1 2"]
    dedup([tmp_path / "o1.jsonl"], tmp_path / "o2.jsonl", progress=False)
    assert (tmp_path / "o2.jsonl").read_bytes() == (tmp_path / "o1.jsonl").read_bytes()


def test_keep_policies_and_cross_file(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "Same", "score": 1}, {"prompt": "other"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "same!!", "score": 5}, {"prompt": "SAME"}])
    dedup([a, b], tmp_path / "first", near=True, progress=False)
    assert sorted(p.name for p in (tmp_path / "first").iterdir()) == [MARKER, "a.jsonl", "b.jsonl"]
    assert kept_texts(tmp_path / "first" / "b.jsonl") == []
    c = write_jsonl(
        tmp_path / "c.jsonl",
        [{"prompt": "Explain recursion", "response": r} for r in ("short", "a long answer", "x")],
    )
    dedup([c], tmp_path / "longest.jsonl", keep="longest", progress=False)
    kept = [json.loads(x) for x in (tmp_path / "longest.jsonl").read_text().splitlines()]
    assert [r["response"] for r in kept] == ["a long answer"]  # the longest record, not key
    dedup([a, b], tmp_path / "max", keep="max", keep_column="score", progress=False)
    assert kept_texts(tmp_path / "max" / "a.jsonl") == ["other"]
    assert kept_texts(tmp_path / "max" / "b.jsonl") == ["same!!"]


def test_exact_only_sources_keep_their_near_duplicates(tmp_path):
    rng = random.Random(5)
    base = random_text(rng)
    variants = [small_edit(base, rng, 1) for _ in range(3)]
    math = write_jsonl(tmp_path / "math-template.jsonl", [{"prompt": v} for v in variants])
    dedup([math], tmp_path / "o", near=True, exact_only=("math-*",), progress=False)
    assert len(kept_texts(tmp_path / "o" / "math-template.jsonl")) == 3
    dedup([math], tmp_path / "o2", near=True, progress=False)
    assert len(kept_texts(tmp_path / "o2" / "math-template.jsonl")) == 1


def test_many_batches_give_the_same_result(tmp_path, monkeypatch):
    texts = planted_corpus(seed=2, distinct=200, copies=40)
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": t} for t in texts])
    dedup([data], tmp_path / "one.jsonl", near=True, progress=False)
    monkeypatch.setattr(curation, "BATCH", 7)
    monkeypatch.setattr("plamo_fast.data.dedup.batched", lambda rows: curation.batched(rows, 7))
    dedup([data], tmp_path / "many.jsonl", near=True, progress=False)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "many.jsonl").read_bytes()


def test_parquet_keeps_schema(tmp_path):
    table = pa.Table.from_pylist([{"prompt": "a", "v": 1.5}, {"prompt": "A", "v": 2.0}])
    pq.write_table(table, tmp_path / "d.parquet")
    dedup([tmp_path / "d.parquet"], tmp_path / "o.parquet", progress=False)
    out = pq.read_table(tmp_path / "o.parquet")
    assert out.schema == table.schema and out.to_pylist() == [{"prompt": "a", "v": 1.5}]


def test_lsh_shape_matches_datasketch():
    datasketch = pytest.importorskip("datasketch")
    for threshold in (0.5, 0.7, 0.8, 0.9):
        lsh = datasketch.MinHashLSH(threshold=threshold, num_perm=128)
        assert _native.Deduper.lsh_shape(threshold, 128, 0.5) == (lsh.b, lsh.r)


def test_exact_key_keeps_word_boundaries_and_never_joins_empty_forms(tmp_path):
    rows = [{"prompt": p} for p in ["What is 12 + 3?", "What is 1 + 23?", "😀", "🎉🎉", "???"]]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    dedup([data], tmp_path / "o.jsonl", near=True, progress=False)
    assert len(kept_texts(tmp_path / "o.jsonl")) == 5
    labelled = write_jsonl(
        tmp_path / "l.jsonl", [{"prompt": "Is this review positive?", "label": x} for x in (0, 1)]
    )
    dedup([labelled], tmp_path / "l_out.jsonl", key="record", progress=False)
    assert len(kept_texts(tmp_path / "l_out.jsonl")) == 2


def test_report_gives_each_removed_record_its_jaccard(tmp_path):
    rng = random.Random(9)
    base = random_text(rng)
    rows = [{"prompt": small_edit(base, rng, 1)}, {"prompt": base, "note": "longer record"}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    report = tmp_path / "r.jsonl"
    dedup([data], tmp_path / "o.jsonl", near=True, keep="longest", report_path=report,
          progress=False)  # fmt: skip
    (cluster,) = [json.loads(x) for x in report.read_text().splitlines()]
    assert cluster["kept"]["line"] == 2
    (removed,) = cluster["removed"]
    truth = jaccard(normalize(rows[0]["prompt"]), normalize(base))
    assert removed["line"] == 1 and removed["jaccard"] == pytest.approx(truth, abs=1e-4)
