"""The leak index: the three match kinds, the length-aware rule, multi-turn items, parity with
the reference matcher, the benchmark loaders, and the planting test on real data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from curation_fixtures import (
    BENCHMARKS,
    DOLLY,
    MT_BENCH_LIKE,
    mt_bench_file,
    needs_shared,
    write_jsonl,
)
from leak_plants import KINDS, edit, plant, plantable, score

from plamo_fast.data.benchmarks import BenchmarkFormatError, load_benchmarks
from plamo_fast.data.decontaminate import build_index, decontaminate, leaks_in_records
from plamo_fast.reference import matching


def leaks(items, texts):
    index = build_index(items)
    return leaks_in_records(index, items, [[("prompt", t)] for t in texts])


def test_exact_case_width_embedded_and_edited(tmp_path):
    items = load_benchmarks([str(mt_bench_file(tmp_path / "mt_bench"))])
    first = MT_BENCH_LIKE[0]["turns"][0]
    variants = {
        "exact": first,
        "case": first.upper().replace(" ", "   "),
        "width": "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in first),
        "embedded": f"Hi! {first} Thanks a lot.",
        "edited": first.replace("engaging", "engagin").replace("Hawaii", "Hawai"),
    }
    found = leaks(items, list(variants.values()))
    kinds = [m[0]["kind"] if m else None for m in found]
    assert kinds == ["exact", "exact", "exact", "containment", "near"]
    assert all(m[0]["item_id"] == "81" and m[0]["turn"] == 1 for m in found)
    assert found[3][0]["matched"] == first.rstrip(".")


def test_shared_polite_endings_and_unrelated_text_do_not_match(tmp_path):
    items = load_benchmarks([str(mt_bench_file(tmp_path / "mt_bench"))])
    clean = [
        "肩こりを解消するにはどうしたらいいですか？",
        "英語の発音を向上させるにはどうしたらいいですか？",
        "Compose a poem about Hawaii.",
        "Write a Python program that reads a CSV file.",
    ]
    assert leaks(items, clean) == [[] for _ in clean]


def test_a_later_turn_counts_only_with_its_first_turn(tmp_path):
    items = load_benchmarks([str(mt_bench_file(tmp_path / "mt_bench"))])
    index = build_index(items)
    q = MT_BENCH_LIKE[1]["turns"]
    alone = [("messages[2]", "Sure. " + q[1])]
    together = [("messages[0]", q[0]), ("messages[2]", q[1])]
    found = leaks_in_records(index, items, [alone, together])
    assert found[0] == []
    assert {(m["item_id"], m["turn"]) for m in found[1]} == {("121", 1), ("121", 2)}


def test_short_items_need_a_near_exact_whole_match():
    items = load_benchmarks_from_texts(["日本の首都はどこですか", "動物は？"])
    found = leaks(
        items,
        [
            "日本の首都はどこですか",  # exact
            "日本の首都はどこですが",  # one edit, whole text: near
            "ところで、日本の首都はどこですが、教えて",  # one edit inside a longer text: no
            "ところで、日本の首都はどこですか？教えて",  # contained exactly: yes
            "動物は？",  # too generic to identify a benchmark
        ],
    )
    assert [m[0]["kind"] if m else None for m in found] == [
        "exact", "near", None, "containment", None,
    ]  # fmt: skip


def load_benchmarks_from_texts(texts):
    from plamo_fast.data.benchmarks import BenchItem

    return [BenchItem("bench", str(i), 1, t, 1) for i, t in enumerate(texts)]


@needs_shared
def test_native_matches_equal_the_reference_matcher():
    items = plantable(load_benchmarks([str(BENCHMARKS / "mt_bench"), str(BENCHMARKS / "rakuda")]))
    items += plantable(load_benchmarks([str(BENCHMARKS / "jaster_sources" / "niilc")]))[:60]
    rng = random.Random(3)
    clean = [json.loads(x)["instruction"] for x in DOLLY.read_text().splitlines()[:150]]
    texts = clean + [edit(it.text, rng, 0.08) for it in rng.sample(items, 60)]
    texts += [f"{rng.choice(clean)}\n{it.text}" for it in rng.sample(items, 30)]
    index = build_index(items)
    native = {}
    for t, item, kind, score_, *_ in index.scan(texts):
        native[(t, item)] = (kind, round((1 - score_) * len(matching.normalize(items[item].text))))
    reference = {}
    for t, text in enumerate(texts):
        for item, (kind, edits) in matching.scan([it.text for it in items], text).items():
            reference[(t, item)] = (kind, edits)
    assert native == reference
    assert sum(k == "near" for k, _ in native.values()) > 20


def dump(path: Path, value, lines: bool = False) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False) + ("\n" if lines else ""))


def test_benchmark_formats(tmp_path):
    (tmp_path / "rakuda_v1").mkdir()
    (tmp_path / "rakuda_v1" / "questions.jsonl").write_text(
        json.dumps({"question_id": "a", "text": "四国地方の県庁所在地を列挙してください。"})
    )  # no trailing newline, as published
    sample = {"input": "質問：日本一高い山は？", "output": "富士山"}
    dump(tmp_path / "eval.json", {"instruction": "x", "samples": [sample]})
    pair = {"sentence_pair_id": "0", "sentence1": "猫が寝ている。", "sentence2": "動物がいる。"}
    dump(tmp_path / "jnli.json", pair, lines=True)
    jcqa = {"q_id": 7, "question": "田んぼが広がる風景を何という？", "choice0": "畑"}
    dump(tmp_path / "jcqa.json", {**jcqa, "choice1": "田園", "label": 1}, lines=True)
    qa = {"id": "q1", "question": "梅雨とは何季の一種か?"}
    dump(tmp_path / "squad.json", {"data": [{"paragraphs": [{"context": "c", "qas": [qa]}]}]})
    dump(tmp_path / "hop.json", [{"qid": "h1", "question": "AとBはどちらが古い？"}])
    (tmp_path / "niilc.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><questions><question id="N-1">'
        "<text>ワールドカップは何年に一度開催されるの？</text></question></questions>"
    )
    (tmp_path / "other.jsonl").write_text(
        json.dumps({"id": 3, "body": "カスタム形式の質問です"}) + "\n"
    )
    items = load_benchmarks([str(p) for p in sorted(tmp_path.glob("*.json*")) if p.stem != "other"])
    items += load_benchmarks([str(tmp_path / "rakuda_v1"), str(tmp_path / "niilc.xml")])
    items += load_benchmarks([f"custom={tmp_path / 'other.jsonl'}"], field="body")
    got = {(it.benchmark.split("/")[-1], it.item_id): it.text for it in items}
    assert got[("eval", "0")] == "質問：日本一高い山は？"
    assert got[("jnli", "0")] == "猫が寝ている。\n動物がいる。"
    assert got[("squad", "q1")] == "梅雨とは何季の一種か?"
    assert got[("hop", "h1")] == "AとBはどちらが古い？"
    assert got[("questions", "a")].startswith("四国地方")
    assert got[("niilc", "N-1")].startswith("ワールドカップ")
    assert got[("custom", "3")] == "カスタム形式の質問です"
    assert {it.text for it in items if it.item_id == "7"} == {
        "田んぼが広がる風景を何という？",
        "質問：田んぼが広がる風景を何という？\n選択肢：0.畑,1.田園",
    }
    with pytest.raises(BenchmarkFormatError, match=r"other.jsonl:1: .*--bench-field"):
        load_benchmarks([str(tmp_path / "other.jsonl")])
    (tmp_path / "broken.jsonl").write_text('{"turns": ["ok"]}\n{oops\n')
    with pytest.raises(BenchmarkFormatError, match=r"broken.jsonl:2: malformed JSON"):
        load_benchmarks([str(tmp_path / "broken.jsonl")])


@needs_shared
def test_every_shared_benchmark_loads():
    items = load_benchmarks([str(BENCHMARKS)])
    names = {it.benchmark.split("/")[0] for it in items}
    assert {"mt_bench", "japanese_mt_bench", "rakuda_v1", "rakuda_v2", "ja_vicuna_qa"} <= names
    assert {"jnli", "jsts", "jsquad", "jemhopqa", "jcommonsenseqa", "niilc"} <= names
    assert sum(it.benchmark == "mt_bench/question" for it in items) == 160


@needs_shared
def test_planting_on_a_real_corpus(tmp_path):
    """The correctness bar: every exact, case/space, full-width and embedded plant found, at
    least 90% of lightly edited ones, at most 0.1% of clean records flagged."""
    items = plantable(load_benchmarks([str(BENCHMARKS)]))
    clean = [json.loads(x) for x in DOLLY.read_text(encoding="utf-8").splitlines()]
    records, plants = plant(clean, items, per_kind=150, seed=11)
    data = tmp_path / "planted.jsonl"
    write_jsonl(data, records)
    report = tmp_path / "leaks.jsonl"
    decontaminate([data], [str(BENCHMARKS)], tmp_path / "kept.jsonl", report_path=report,
                  progress=False)  # fmt: skip
    lines = [json.loads(x) for x in report.read_text(encoding="utf-8").splitlines()]
    result = score(plants, lines, len(records))
    for kind in KINDS[:-1]:
        assert result["recall"][kind] == 1.0, (kind, result)
    assert result["recall"]["edited"] >= 0.9, result
    assert result["false_positive_rate"] <= 0.001, result
    kept = (tmp_path / "kept.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(kept) == len(records) - len(lines)


def test_report_names_file_and_line(tmp_path):
    bench = mt_bench_file(tmp_path / "mt_bench")
    data = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"messages": [{"role": "user", "content": "hello"}]},
            {"messages": [{"role": "user", "content": MT_BENCH_LIKE[0]["turns"][0]}]},
        ],
    )
    decontaminate([data], [str(bench)], tmp_path / "out.jsonl",
                  report_path=tmp_path / "r.jsonl", progress=False)  # fmt: skip
    (entry,) = [json.loads(x) for x in Path(tmp_path / "r.jsonl").read_text().splitlines()]
    assert (entry["file"], entry["line"], entry["field"]) == (str(data), 2, "messages[0]")
    assert (entry["benchmark"], entry["item_id"], entry["turn"]) == ("mt_bench/question", "81", 1)
    assert entry["kind"] == "exact" and entry["score"] == 1.0


def test_min_item_len_also_stops_containment(tmp_path):
    bench = write_jsonl(
        tmp_path / "q.jsonl", [{"question_id": 7, "turns": ["富士山の高さは何メートル？"]}]
    )
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "ねえ、富士山の高さは何メートル？教えて"}])
    from plamo_fast.data.decontaminate import LeakParams

    summary = decontaminate([data], [str(bench)], tmp_path / "o.jsonl", progress=False,
                            params=LeakParams(min_item_len=20))  # fmt: skip
    assert summary["records_kept"] == 1 and summary["benchmark_items_too_short"] == 1
    summary = decontaminate([data], [str(bench)], tmp_path / "o2.jsonl", progress=False)
    assert summary["records_kept"] == 0


def test_benchmark_folder_skips_files_that_are_not_questions(tmp_path):
    folder = tmp_path / "mt_bench"
    mt_bench_file(folder)
    (folder / "reference_answer").mkdir()
    write_jsonl(folder / "reference_answer" / "gpt-4.jsonl", [{"question_id": 81, "choices": []}])
    with pytest.warns(UserWarning, match="gpt-4.jsonl"):
        items = load_benchmarks([str(folder)])
    assert len(items) == 5
    custom = write_jsonl(tmp_path / "custom.jsonl", [{"id": 1, "body": "独自形式の長い質問文です"}])
    items = load_benchmarks([str(mt_bench_file(tmp_path / "b")), str(custom)], field="body")
    assert len(items) == 6  # --bench-field where present, known fields elsewhere
    sep = tmp_path / "sep.jsonl"
    sep.write_text(json.dumps({"turns": ["line\u2028separator inside"]}, ensure_ascii=False))
    assert load_benchmarks([str(sep)])[0].text == "line\u2028separator inside"
