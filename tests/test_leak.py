"""The leak index: the three match kinds, the length-aware rule, multi-turn items, parity with
the reference matcher, the benchmark loaders, and the planting test on real data."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from curation_fixtures import (
    BENCHMARKS,
    DOLLY,
    FIXTURE_BENCHMARKS,
    MT_BENCH_LIKE,
    mt_bench_file,
    needs_benchmarks,
    needs_shared,
    write_jsonl,
)
from leak_plants import KINDS, edit, full_width, plant, plantable, score

from plamo_fast.cli import main
from plamo_fast.data.benchmarks import BenchmarkFormatError, load_benchmarks, read_benchmarks
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


def test_short_items_match_only_without_edits():
    """Below min_near_len (30 normalized characters) an edit makes another question: the
    JCommonsenseQA cases differing in one noun do not match; exact and contained copies do."""
    items = load_benchmarks_from_texts(
        ["宿のことを英語でなんと言う？", "本を売っているところは？", "机を動かすのに必要なものは？",
         "日本の首都はどこですか", "動物は？"]
    )  # fmt: skip
    found = leaks(
        items,
        [
            "店のことを英語でなんと言う？",  # one noun changed: another question
            "犬を売っているところは？",
            "力を動かすのに必要なものは？",
            "日本の首都はどこですが",  # one edit, whole text
            "日本の首都はどこですか",  # exact
            "ところで、日本の首都はどこですか？教えて",  # contained exactly
            "動物は？",  # too generic to identify a benchmark
        ],
    )
    assert [m[0]["kind"] if m else None for m in found] == [
        None, None, None, None, "exact", "containment", None,
    ]  # fmt: skip


def test_long_items_still_match_with_edits():
    text = "単一の企業が複数の分野の専門店を統一的に運営し、大規模な店舗に集約した小売店の総称は？"
    items = load_benchmarks_from_texts([text])
    (match,) = leaks(items, [text.replace("総称", "名前")])[0]
    assert match["kind"] == "near" and match["benchmark_text"] == text


@needs_benchmarks
def test_jcommonsenseqa_train_against_its_valid_split():
    """Every match of a short question is the benchmark's own text (no edit), and the report
    shows it beside the training text."""
    valid = BENCHMARKS / "jaster_sources" / "jcommonsenseqa" / "valid-v1.1.json"
    train = BENCHMARKS.parent / "corpora" / "jglue-jcommonsenseqa-train" / "train-v1.1.json"
    if not (valid.is_file() and train.is_file()):
        pytest.skip("JCommonsenseQA train/valid absent")
    items = load_benchmarks([str(valid)])
    questions = [json.loads(x)["question"] for x in train.read_text(encoding="utf-8").splitlines()]
    found = [m for m in leaks(items, questions) if m]
    assert found
    for best, *_ in found:
        bench = matching.normalize(best["benchmark_text"])
        assert len(bench) >= 30 or bench in matching.normalize(best["matched"]), best
        assert best["kind"] != "near" or len(bench) >= 30, best


def load_benchmarks_from_texts(texts):
    from plamo_fast.data.benchmarks import BenchItem

    return [BenchItem("bench", str(i), 1, t, 1) for i, t in enumerate(texts)]


def native_and_reference(items, clean: list[str], seed: int) -> tuple[dict, dict]:
    """Matches of the native index and of the reference matcher on ``clean`` texts plus items
    in full width, lightly edited, and embedded in clean text: ``{(text, item): (kind, edits)}``."""
    rng = random.Random(seed)
    texts = clean + [full_width(it.text) for it in rng.sample(items, 10)]
    texts += [edit(it.text, rng, 0.08) for it in rng.sample(items, 60)]
    texts += [f"{rng.choice(clean)}\n{it.text}" for it in rng.sample(items, 30)]
    index = build_index(items)
    native = {}
    for t, item, kind, score_, *_ in index.scan(texts):
        native[(t, item)] = (kind, round((1 - score_) * len(matching.normalize(items[item].text))))
    reference = {}
    for t, text in enumerate(texts):
        for item, (kind, edits) in matching.scan([it.text for it in items], text).items():
            reference[(t, item)] = (kind, edits)
    return native, reference


@pytest.mark.parametrize("seed", [3, 4])
def test_native_matches_equal_the_reference_matcher(seed):
    """On the shipped excerpts (tests/fixtures/benchmarks): English and Japanese questions, and
    short ja-vicuna-qa questions sharing polite endings, half indexed and half clean."""
    names = ("mt_bench", "japanese_mt_bench", "rakuda_v2")
    questions = load_benchmarks([str(FIXTURE_BENCHMARKS / n) for n in names])
    vicuna = load_benchmarks([str(FIXTURE_BENCHMARKS / "ja_vicuna_qa")])
    items = plantable(questions) + plantable(vicuna[::2])
    clean = [it.text for it in vicuna[1::2]] + [it.text for it in questions if it.turn > 1]
    native, reference = native_and_reference(items, clean, seed)
    assert native == reference
    kinds = Counter(kind for kind, _ in native.values())
    assert kinds["near"] > 20 and kinds["containment"] >= 30 and kinds["exact"] >= 10, kinds


@needs_shared
def test_native_matches_equal_the_reference_matcher_on_shared_data():
    items = plantable(load_benchmarks([str(BENCHMARKS / "mt_bench"), str(BENCHMARKS / "rakuda")]))
    items += plantable(load_benchmarks([str(BENCHMARKS / "jaster_sources" / "niilc")]))[:60]
    clean = [json.loads(x)["instruction"] for x in DOLLY.read_text().splitlines()[:150]]
    native, reference = native_and_reference(items, clean, 3)
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
    assert entry["matched"] == entry["benchmark_text"] == MT_BENCH_LIKE[0]["turns"][0]


def test_min_item_len_also_stops_containment(tmp_path):
    bench = write_jsonl(
        tmp_path / "q.jsonl", [{"question_id": 7, "turns": ["富士山の高さは何メートル？"]}]
    )
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "ねえ、富士山の高さは何メートル？教えて"},
                                              {"prompt": "猫について教えて"}])  # fmt: skip
    from plamo_fast.data.decontaminate import LeakParams

    summary = decontaminate([data], [str(bench)], tmp_path / "o.jsonl", progress=False,
                            params=LeakParams(min_item_len=20))  # fmt: skip
    assert summary["records_kept"] == 2 and summary["benchmark_items_too_short"] == 1
    summary = decontaminate([data], [str(bench)], tmp_path / "o2.jsonl", progress=False)
    assert summary["records_kept"] == 1


JUDGE_PROMPT = {
    "name": "single-v1",
    "type": "single",
    "system_prompt": "You are a helpful assistant.",
    "prompt_template": "[Instruction]\nPlease act as an impartial judge...\n[Question]\n{question}",
    "description": "Prompt for general questions",
    "category": "general",
    "output_format": "[[rating]]",
}


def answer(question_id, model: str, turns: list[str]) -> dict:
    return {"question_id": question_id, "answer_id": "x1", "model_id": model,
            "choices": [{"index": 0, "turns": turns}], "tstamp": 1.0}  # fmt: skip


def benchmark_folder(root: Path) -> Path:
    """A benchmark folder as FastChat, Rakuda and llm-jp-eval publish them: questions beside
    judge prompts, model and reference answers, judgments and a pretty-printed ranking."""
    mt = root / "mt_bench"
    mt_bench_file(mt)
    write_jsonl(mt / "judge_prompts.jsonl", [JUDGE_PROMPT])
    (mt / "model_answer").mkdir()
    write_jsonl(mt / "model_answer" / "gpt-4.jsonl", [answer(81, "gpt-4", ["Aloha!", "A..."])])
    (mt / "reference_answer").mkdir()
    write_jsonl(mt / "reference_answer" / "gpt-4.jsonl", [answer(121, "gpt-4", ["def f()"])])
    (mt / "model_judgment").mkdir()
    judgment = {"question_id": 81, "model": "gpt-4", "judge": ["gpt-4", "single-v1"],
                "user_prompt": "[Question] ...", "judgment": "[[9]]", "score": 9}  # fmt: skip
    write_jsonl(mt / "model_judgment" / "gpt-4_single.jsonl", [judgment])
    rankings = root / "rakuda" / "rankings"
    rankings.mkdir(parents=True)
    ranking = {"date": "2023-09-27", "judge": "gpt-4", "ranking": [{"model_id": "a", "median": 1}]}
    (rankings / "gpt-4_mle.json").write_text(json.dumps(ranking, indent=4))
    (root / "rakuda" / "pair.jsonl").write_text(json.dumps(JUDGE_PROMPT) + "\n")  # by schema
    jaster = root / "llm_jp_eval"
    jaster.mkdir()
    samples = [{"input": "質問：日本一高い山の名前を教えてください。", "output": "富士山"}]
    dataset = {"instruction": "質問に答えてください。", "output_length": 15,
               "metrics": ["exact_match"], "few_shots": [], "samples": samples}  # fmt: skip
    (jaster / "jemhopqa.json").write_text(json.dumps(dataset, ensure_ascii=False, indent=4))
    return root


SKIPPED = [
    "mt_bench/judge_prompts.jsonl",
    "mt_bench/model_answer/gpt-4.jsonl",
    "mt_bench/model_judgment/gpt-4_single.jsonl",
    "mt_bench/reference_answer/gpt-4.jsonl",
    "rakuda/pair.jsonl",
    "rakuda/rankings/gpt-4_mle.json",
]


def test_benchmark_folder_indexes_question_files_and_skips_the_rest(tmp_path):
    folder = benchmark_folder(tmp_path / "bench")
    (folder / "mt_bench" / "model_answer" / "raw.jsonl").write_bytes(b"\xff\xfe")  # never read
    found = read_benchmarks([str(folder)])  # no warning (pytest turns warnings into errors)
    assert [str(f.relative_to(folder)) for f in found.files] == [
        "llm_jp_eval/jemhopqa.json", "mt_bench/question.jsonl",
    ]  # fmt: skip
    assert [str(f.relative_to(folder)) for f in found.skipped] == sorted(
        [*SKIPPED, "mt_bench/model_answer/raw.jsonl"]
    )
    assert len(found.items) == 1 + 5
    assert found.items[0].text == "質問：日本一高い山の名前を教えてください。"


def test_benchmark_folder_summary_is_one_line(tmp_path, capsys):
    folder = benchmark_folder(tmp_path / "bench")
    clean = [{"prompt": f"猫について教えて ({i})"} for i in range(9)]  # a tenth removed: no warning
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": MT_BENCH_LIKE[1]["turns"][0]}, *clean])
    assert main(["decontaminate", str(data), "--bench", str(folder), "-o",
                 str(tmp_path / "o.jsonl"), "-q"]) == 0  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2, err  # the skipped files, then the summary
    assert err[0].startswith("benchmarks: indexed 2 question files; skipped 6 files that are not")
    assert err[0].endswith("and 3 more") and "judge_prompts.jsonl" in err[0]
    summary = json.loads(err[1])
    assert (summary["benchmark_files"], summary["benchmark_files_skipped"]) == (2, 6)
    assert summary["records_kept"] == 9 and summary["dropped"] == {"benchmark_leak": 1}


BROKEN = {
    "mt_bench/question.jsonl": [
        ('{"turns": ["a question here"]}\n{oops\n', r"question.jsonl:2: malformed JSON"),
        ('{"id": 1, "body": "x"}\n', r"question.jsonl:1: no question text"),
        ("", r"question.jsonl: no questions in it"),
    ],
    "jsts/valid.json": [
        ('{"sentence1": "a", "sentence2": "b"}\n{"sentence1": \n', r"valid.json:2: malformed"),
        ("{oops\n", r"valid.json:1: malformed JSON"),
    ],
    "eval/jnli.json": [
        (json.dumps({"samples": [{"output": "x"}]}, indent=2), r"jnli.json: samples\[0\]"),
    ],
    "niilc/dev.xml": [("<questions><question><text>x", r"dev.xml: malformed XML")],
    "q/q.json": [(b"\xff\xfe", r"q.json: invalid UTF-8")],
}


@pytest.mark.parametrize(
    "name, content, message",
    [(name, content, message) for name, cases in BROKEN.items() for content, message in cases],
)
def test_a_question_file_that_cannot_be_read_is_an_error(tmp_path, capsys, name, content, message):
    folder = benchmark_folder(tmp_path / "bench")
    broken = folder / name
    broken.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        broken.write_bytes(content)
    else:
        broken.write_text(content, encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=message):
        read_benchmarks([str(folder)])
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "hello"}])
    out = tmp_path / "o.jsonl"
    assert main(["decontaminate", str(data), "--bench", str(folder), "-o", str(out)]) == 1
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists() and not list(tmp_path.glob(".o.jsonl*"))


@needs_benchmarks
def test_shared_benchmark_folder_skips_only_what_is_not_questions(capsys, tmp_path):
    found = read_benchmarks([str(BENCHMARKS)])
    skipped = [str(p.relative_to(BENCHMARKS)) for p in found.skipped]
    assert len(found.files) == 14 and len(skipped) == 24
    assert all(re.search(r"judg|answer|ranking|prompt", s) for s in skipped), skipped
    assert not any(re.search(r"judg|answer|ranking|review", str(f)) for f in found.files)
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "hello"}])
    assert main(["decontaminate", str(data), "--bench", str(BENCHMARKS), "-o",
                 str(tmp_path / "o.jsonl"), "-q"]) == 0  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("benchmarks: indexed 14 question files; skipped 24")


def test_custom_fields_and_line_separators(tmp_path):
    custom = write_jsonl(tmp_path / "custom.jsonl", [{"id": 1, "body": "独自形式の長い質問文です"}])
    items = load_benchmarks([str(mt_bench_file(tmp_path / "b")), str(custom)], field="body")
    assert len(items) == 6  # --bench-field where present, known fields elsewhere
    sep = tmp_path / "sep.jsonl"
    sep.write_text(json.dumps({"turns": ["line\u2028separator inside"]}, ensure_ascii=False))
    assert load_benchmarks([str(sep)])[0].text == "line\u2028separator inside"
