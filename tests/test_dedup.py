"""Dedup against the reference (true Jaccard over every pair): no record removed without a
verified near duplicate in its cluster, planted near duplicates found; keep policies,
exact-only sources, streaming in many batches, idempotence."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curation_fixtures import DOLLY, write_jsonl

from plamo_fast import _native
from plamo_fast.data import curation
from plamo_fast.data.dedup import answer_of, dedup, question_of
from plamo_fast.outputs import MARKER
from plamo_fast.reference import matching
from plamo_fast.reference.matching import dedup_form, jaccard, normalize, same_question


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


def pairs_near_threshold(rng: random.Random, count: int, lo: float = 0.8, hi: float = 0.85):
    """``count`` pairs of random texts whose true Jaccard is in [lo, hi): just above 0.8."""
    pairs = []
    while len(pairs) < count:
        base = random_text(rng, rng.randrange(150, 400))
        for edits in range(3, 40):
            copy = small_edit(base, rng, edits)
            j = jaccard(normalize(base), normalize(copy))
            if j < hi:
                if j >= lo:
                    pairs.append((base, copy))
                break
    return pairs


def test_near_dedup_finds_99_percent_of_pairs_just_above_the_threshold(tmp_path):
    """The LSH leans to recall (every candidate is verified): pairs at Jaccard 0.80-0.85 are
    found at least 99% of the time (a 12 x 10 banding found about 83%)."""
    pairs = pairs_near_threshold(random.Random(12), 300)
    rows = [{"prompt": t} for pair in pairs for t in pair]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    summary = dedup([data], tmp_path / "o.jsonl", near=True, threshold=0.8, progress=False)
    assert summary["records_kept"] <= len(pairs) + 3  # at most 1% of 300 pairs missed
    assert summary["lsh"] == {"bands": 18, "rows": 6}


def test_native_clusters_equal_the_reference_over_every_pair(tmp_path):
    """Parity of the kernel with ``reference.matching``: the same clusters as the true rule
    over every pair (key Jaccard, and when both have a question, question Jaccard or question
    edit similarity with answer Jaccard), on passages with several questions, questions with a
    few edits and the same or another answer, edited copies, digits and short texts."""
    rng = random.Random(21)
    keys, questions, answers = [], [], []
    for _ in range(30):
        passage = random_text(rng, rng.randrange(100, 300))
        asked = [random_text(rng, rng.randrange(8, 30)) for _ in range(3)]
        said = [random_text(rng, rng.randrange(3, 40)) for _ in asked]
        for k in [0, 1, 2, rng.randrange(3), rng.randrange(3)]:
            edited = small_edit(passage, rng, rng.choice([0, 1, 2, 8]))
            q = small_edit(asked[k], rng, rng.choice([0, 0, 1, 2, 4]))
            answer = rng.choice([said[k], said[k], small_edit(said[k], rng, 1), said[k - 1], None])
            keys.append(f"{q}\n{edited}")
            questions.append(q)
            answers.append(answer)
    for text in ["What is 12 + 3?", "What is 1 + 23?", "ab", "AB!", "😀", ""]:
        keys.append(text)
        questions.append(None)
        answers.append("an answer without a question")
    base = random_text(rng)
    keys += [base, small_edit(base, rng, 2)]
    questions += [None, "x"]
    answers += [None, "y"]
    deduper = _native.Deduper(tmp_path / "spill", near=True, threshold=0.8)
    deduper.add(keys[:50], [True] * 50, questions[:50], answers[:50])
    rest = len(keys) - 50
    deduper.add(keys[50:], [True] * rest, questions[50:], answers[50:])
    root_b, _, _, stats = deduper.finish()
    truth = matching.near_duplicates(keys, questions, 0.8, answers=answers)
    assert list(np.frombuffer(root_b, dtype=np.uint32)) == matching.clusters(len(keys), truth)
    assert stats[3] > 20  # pairs kept apart by their questions
    assert stats[4] > 5  # pairs whose questions were the same by edits and answers
    without_answers = matching.near_duplicates(keys, questions, 0.8)
    assert len(without_answers) < len(truth)


PASSAGE = (
    "ヴァージン・オーストラリア航空は、オーストラリアを拠点とする航空会社です。ヴァージン・"
    "ブランドを使用する航空会社の中で、保有機材数では最大の航空会社である。2000年8月31日に"
    "ヴァージン・ブルーとして、2機の航空機で単一路線で運航を開始した。2001年9月のアンセット・"
    "オーストラリアの破綻後、オーストラリア国内市場の大手航空会社としての地位を確立した。"
)
QUESTIONS = [
    "ヴァージン・オーストラリアはいつから運航を開始したのですか？",
    "ヴァージン・オーストラリアの拠点はどこですか？",
    "アンセット・オーストラリアが破綻したのはいつですか？",
    "保有機材数で最大のヴァージン・ブランドの航空会社はどこですか？",
]


def test_different_questions_on_one_passage_survive(tmp_path):
    """Dolly layout (instruction + input): four questions on one paragraph are all kept; a
    copy with the same question and a lightly edited passage is removed, and the report says
    the key and the question matched."""
    rows = [{"instruction": q, "input": PASSAGE, "output": "..."} for q in QUESTIONS]
    rows.append(
        {"instruction": QUESTIONS[1], "input": PASSAGE.replace("最大", "最多"), "output": ""}
    )
    unsplit = QUESTIONS[2] + "\n" + PASSAGE.replace("単一", "一つの")
    rows.append({"instruction": unsplit, "input": "", "output": ""})
    rows.append({"instruction": QUESTIONS[3] + "\n" + PASSAGE, "input": "", "output": ""})
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    report = tmp_path / "r.jsonl"
    summary = dedup([data], tmp_path / "o.jsonl", near=True, report_path=report, progress=False)
    kept = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    # Row 6 has no question part (one text): it is near no question + context record, so it
    # cannot chain the four questions together. Row 7 is row 4 in another layout: the same
    # matching form, an exact duplicate.
    assert [r["instruction"] for r in kept] == QUESTIONS + [unsplit]
    first, second = [json.loads(x) for x in report.read_text().splitlines()]
    assert first["kept"]["line"] == 2 and second["kept"]["line"] == 4
    (copy,) = first["removed"]
    assert copy["line"] == 5 and copy["matched"] == "key and question"
    assert second["removed"] == [
        {"file": str(data), "line": 7, "jaccard": 1.0, "question_jaccard": None,
         "question_similarity": None, "matched": "key"}
    ]  # fmt: skip
    assert copy["question_jaccard"] == 1.0 and 0.8 <= copy["jaccard"] < 1.0
    assert summary["near_pairs_kept_apart_by_question"] >= 10
    assert summary["records_with_question"] == 5


def test_a_quoted_passage_in_a_user_turn_is_a_context(tmp_path):
    def turn(q: str, quote: str) -> dict:
        return {"messages": [{"role": "user", "content": quote.format(PASSAGE) + "\n" + q}]}

    rows = [turn(q, '"""{}"""') for q in QUESTIONS[:2]] + [turn(QUESTIONS[2], "```\n{}\n```")]
    rows.append(turn(QUESTIONS[3], "\n".join("> " + x for x in PASSAGE.split("。"))))
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    summary = dedup([data], tmp_path / "o.jsonl", near=True, progress=False)
    assert summary["records_kept"] == 4 and summary["records_with_question"] == 4


@pytest.mark.parametrize(
    ("texts", "question"),
    [
        ([("instruction", "Q?"), ("input", "passage")], "Q?"),
        ([("question", "Q?"), ("context", "passage")], "Q?"),
        ([("instruction", "Q?")], None),  # no context
        ([("prompt", "P"), ("instruction", "Q?"), ("input", "c")], None),  # not only the two
        ([("instruction", "Q?"), ("question", "R?")], None),  # no context field
        ([("messages[0]", 'Summarize:\n"""text"""')], "Summarize:\n\n"),
        ([("messages[0]", '"""only a passage"""')], None),  # nothing outside the quote
        ([("messages[0]", "no quote here")], None),
        ([("messages[0]", "a"), ("messages[2]", '"""b""" c')], None),  # several turns
    ],
)
def test_question_of_is_conservative(texts, question):
    assert question_of(texts) == question


def test_dolly_ja_questions_on_one_context_are_kept(tmp_path):
    """On Dolly-ja (instruction + input): a question + context record is removed only as an
    exact duplicate or with the same question as a record of its cluster (reference rule:
    question Jaccard, or edit similarity with near answers)."""
    if not DOLLY.is_file():
        pytest.skip("Dolly-ja absent")
    report = tmp_path / "r.jsonl"
    summary = dedup([DOLLY], tmp_path / "o.jsonl", near=True, report_path=report, progress=False)
    records = [json.loads(x) for x in DOLLY.read_text(encoding="utf-8").splitlines()]
    assert summary["near_pairs_kept_apart_by_question"] > 200
    for cluster in map(json.loads, report.read_text().splitlines()):
        members = [cluster["kept"]] + cluster["removed"]
        asked = [records[m["line"] - 1] for m in members]
        asked = [(dedup_form(r["instruction"]), dedup_form(r["output"])) for r in asked]
        for k, removed in enumerate(cluster["removed"], start=1):
            if not records[removed["line"] - 1]["input"].strip():
                continue  # no context: the key alone decides
            if removed["matched"] == "key":
                assert removed["jaccard"] == 1.0  # an exact duplicate
                continue
            assert removed["question_similarity"] >= 0.8
            assert any(same_question(asked[k], q, 0.8) for j, q in enumerate(asked) if j != k)


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


MAGNESIUM = (
    "マグネシウムは原子番号12の元素で、元素記号はMgである。銀白色の軽い金属で、融点は摂氏650度、"
    "沸点は摂氏1090度である。地殻中に8番目に多く存在する元素で、海水中にも多く溶けている。"
    "合金の材料として航空機や自動車に使われ、植物の葉緑素にも含まれている。"
)


def test_a_typo_in_the_question_is_the_same_question_when_the_answer_is(tmp_path):
    """Dolly layout: a copy whose question has one typo (question 5-gram Jaccard 0.78) and whose
    passage is lightly edited is removed (edit similarity 0.9, the same answer); a question
    one character away on the same passage (melting / boiling point, edit similarity 0.95) has
    another answer and is kept, and so is a typo copy whose answer differs."""
    melting = "マグネシウムの融点は摂氏で何度でしょうか？"
    rows = [
        {"instruction": melting, "input": MAGNESIUM, "output": "摂氏650度です。"},
        {"instruction": melting.replace("融点", "沸点"), "input": MAGNESIUM,
         "output": "摂氏1090度です。"},
        {"instruction": melting.replace("でしょうか", "でしょかう"),
         "input": MAGNESIUM.replace("軽い", "軽量な"), "output": "摂氏650度です"},
        {"instruction": melting.replace("でしょうか", "でょしうか"), "input": MAGNESIUM,
         "output": "マグネシウムは植物の葉緑素にも含まれています。"},
    ]  # fmt: skip
    typo = dedup_form(rows[2]["instruction"])
    assert jaccard(dedup_form(melting), typo) < 0.8  # the rule before: kept
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    report = tmp_path / "r.jsonl"
    summary = dedup([data], tmp_path / "o.jsonl", near=True, report_path=report, progress=False)
    kept = [json.loads(x)["output"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert kept == [rows[0]["output"], rows[1]["output"], rows[3]["output"]]
    (cluster,) = [json.loads(x) for x in report.read_text().splitlines()]
    (removed,) = cluster["removed"]
    assert removed["line"] == 3 and removed["matched"] == "key, question edits and answer"
    assert removed["question_jaccard"] < 0.8 <= removed["question_similarity"]
    assert removed["question_similarity"] == pytest.approx(1 - 2 / len(typo), abs=1e-4)
    assert summary["near_pairs_same_question_by_edits_and_answer"] == 1


@pytest.mark.parametrize(
    ("record", "answer"),
    [
        ({"instruction": "Q", "input": "c", "output": "A"}, "A"),
        ({"question": "Q", "context": "c", "response": "A"}, "A"),
        ({"instruction": "Q", "input": "c", "output": " "}, None),
        (
            {
                "messages": [
                    {"role": "user", "content": "Q"},
                    {"role": "assistant", "content": "A"},
                    {"role": "user", "content": "R"},
                    {"role": "assistant", "content": "B"},
                ]
            },
            "A\nB",
        ),  # fmt: skip
        ({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}, "A"),
        ({"messages": [{"role": "user", "content": "Q"}]}, None),
    ],
)
def test_answer_of_reads_the_output_or_the_assistant_turns(record, answer):
    assert answer_of(record) == answer


def test_dolly_context_is_the_input_of_its_instruction(tmp_path):
    """The original Dolly layout (instruction, context, response) is read as Dolly-ja's
    (instruction, input, output), as pack and sample read it: one instruction over different
    passages is not a duplicate, and a benchmark question in the context is a leak. A
    SQuAD-like record (question + context, no instruction) reads its context only with
    --fields context."""
    from curation_fixtures import MT_BENCH_LIKE, mt_bench_file

    from plamo_fast.data.curation_io import user_texts
    from plamo_fast.data.decontaminate import decontaminate

    passages = ["東京は日本の首都である。" * 3, "富士山は日本一高い山である。" * 3]
    dolly = [{"instruction": "この文章を要約してください。", "context": p, "response": "..."}
             for p in [*passages, passages[0]]]  # fmt: skip
    data = write_jsonl(tmp_path / "dolly.jsonl", dolly)
    summary = dedup([data], tmp_path / "o.jsonl", progress=False)
    assert summary["records_kept"] == 2 and summary["records_with_question"] == 3
    squad = {"question": "何の首都？", "context": passages[0]}
    assert user_texts(squad) == [("question", "何の首都？")]
    assert user_texts(squad, ("context",))[1] == ("context", passages[0])
    bench = mt_bench_file(tmp_path / "mt_bench")
    leak = {"instruction": "答えて", "context": MT_BENCH_LIKE[0]["turns"][0], "response": "x"}
    data = write_jsonl(tmp_path / "train.jsonl", [dolly[0], leak])
    summary = decontaminate([data], [str(bench)], tmp_path / "c.jsonl", progress=False)
    assert summary["records_kept"] == 1 and summary["removed_by_kind"] == {"exact": 1}
