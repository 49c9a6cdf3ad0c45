"""``plamo-fast synth instruct``: the three steps and every filter against a loopback
OpenAI-compatible server with scripted replies (duplicate titles, a near-duplicate question, a
blacklisted word, English and Chinese in a Japanese run, cut replies, a benchmark leak), the
counts of the report and the lines of the rejected file, exactly -n records, a resumed run equal
to an uninterrupted one, --prompts validation, outputs that never replace an input, provenance
the guard acts on, Self-Instruct's own seed file, and the hf backend on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backend_fixtures import Server, choice
from chat_fixtures import write_jsonl

from plamo_fast.cli import main
from plamo_fast.data.provenance import ProvenanceGuard
from plamo_fast.errors import UsageError
from plamo_fast.generation.backends import prompt_seed
from plamo_fast.synth.instruct import filters as flt
from plamo_fast.synth.instruct.prompts import DEFAULTS, load_prompts
from plamo_fast.synth.instruct.report import check_sums
from plamo_fast.synth.instruct.seeds import read_seeds
from plamo_fast.synth.instruct.steps import normalize_title, parse_titles, request_key
from plamo_fast.synth.instruct.store import side_paths

SHARED_SEEDS = Path(__file__).resolve().parents[2] / "shared/corpora/self-instruct/seed_tasks.jsonl"
# An invented benchmark question (the test writes its own benchmark file).
BENCH_QUESTION = "架空の島ミナトの名物料理について、旅行者向けの紹介文を三段落で書いてください。"
KEPT_QUESTION = "犬の散歩を楽しくするコツを三つ教えてください。"
FIRST_SEED = read_seeds(None).tasks[0].instruction

# Titles replies per round (one titles request a round): (text, finish_reason).
TITLES = {
    0: (
        "以下がタイトルです。\n1. 犬の散歩のコツ\n2. 犬の散歩のコツ\n3. 「犬の散歩のコツ！」\n"
        "4. グラフの読み方\n5. 猫の爪切り\n6. 英語のタイトル\n7. 長い話\n8. ベンチマーク\n"
        "9. 天気の話",
        "stop",
    ),
    1: (
        "1. 犬の散歩の楽しみ方\n2. 犬の散歩のコツについて\n3. 犬の散歩のコツ\n4. 野菜の保存方法\n"
        "5. 短い\n6. 中国語\n7. 途中で切",
        "length",
    ),
    2: ("", "stop"),
    3: (
        "1. 取引先への感謝\n2. 本の選び方\n3. 最初の一冊\n4. 部屋の片付け\n5. 朝ごはんの工夫\n"
        "6. 雨の日の過ごし方",
        "stop",
    ),
}
QUESTIONS = {
    "犬の散歩のコツ": KEPT_QUESTION,
    "猫の爪切り": "猫の爪切りの画像を見て、手順を説明してください。",
    "英語のタイトル": "Please explain how to cook rice in a rice cooker.",
    "ベンチマーク": "次の依頼に答えてください：" + BENCH_QUESTION,
    "犬の散歩の楽しみ方": "犬の散歩を楽しくするコツを三つ教えて下さい。",
    "短い": "短い？",
    "中国語": "请告诉我学习日语的有效方法和一些实用的技巧。",
    "取引先への感謝": FIRST_SEED,
    "長い話": "昔話を一つ、最初から最後まで語ってください。",
    "天気の話": "明日の天気を予想するときに気をつけることは何ですか。",
    "野菜の保存方法": "買ってきた野菜を長持ちさせる保存方法を教えてください。",
    "本の選び方": "読書が苦手な人に、最初の一冊の選び方を助言してください。",
    "最初の一冊": "読書が苦手な人に、最初の一冊の選び方を助言して下さい。",  # same round
    "部屋の片付け": "散らかった部屋を週末だけで片付ける段取りを考えてください。",
    "朝ごはんの工夫": "忙しい朝に五分で用意できる朝食の案を三つください。",
    "雨の日の過ごし方": "雨の日に子どもと家の中で楽しめる遊びを挙げてください。",
}
ANSWERS = {
    "昔話を一つ、最初から最後まで語ってください。": ("むかしむかし、あるところに", "length"),
    "明日の天気を予想するときに気をつけることは何ですか。": (
        "It will be sunny tomorrow in most of the country, with light winds.",
        "stop",
    ),
}
# What the scripted run must count (see TITLES): per step and reason.
EXPECTED = {
    "titles": {"requests": 4, "parsed": 22, "asked": 16, "duplicate": 3, "blacklist": 1,
               "novelty": 1, "truncated": 1, "no_titles": 1},
    "questions": {"asked": 16, "answered": 7, "blacklist": 1, "language": 2,
                  "benchmark_leak": 1, "novelty": 3, "too_short": 1, "surplus": 1},
    "answers": {"asked": 7, "kept": 5, "truncated": 1, "language": 1},
}  # fmt: skip


def stage(text: str) -> str:
    if "新しい依頼のタイトル" in text or "titles of new tasks" in text:
        return "titles"
    if text.rstrip().endswith(("依頼：", "Task:")):
        return "question"
    return "answer"


def title_of(prompt: str) -> str:
    marker = "タイトル：" if "タイトル：" in prompt else "Title: "
    return prompt.rsplit(marker, 1)[1].splitlines()[0]


def scripted(titles: dict, questions: dict, answers: dict, seed: int = 0):
    """A reply function for :class:`Server`: titles by round (found from the request's seed),
    a question per title, an answer per question; anything else gets a plain reply."""
    rounds = {prompt_seed(seed, request_key(r, "titles", 0)): r for r in range(50)}

    def reply(body: dict, calls: int):
        prompt = body["messages"][-1]["content"]
        step = stage(prompt)
        if step == "titles":
            text, reason = titles.get(rounds.get(body["seed"]), ("", "stop"))
        elif step == "question":
            title = title_of(prompt)
            text, reason = (
                questions.get(title, f"「{title}」について詳しく説明してください。"),
                "stop",
            )
        else:
            text, reason = answers.get(
                prompt, (f"{prompt[:20]}への答えです。順に説明します。", "stop")
            )
        return 200, [choice(0, text, reason)]

    return reply


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    folder = tmp_path / "mt_bench"
    folder.mkdir()
    return write_jsonl(
        folder / "question.jsonl",
        [{"question_id": 1, "category": "writing", "turns": [BENCH_QUESTION, "短くして。"]}],
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def run(out: Path, url: str, *extra: str, n: int = 5, model: str = "local-13b") -> int:
    args = ["synth", "instruct", "--model", model, "-n", str(n), "-o", str(out),
            "--backend", "openai", "--base-url", url, "--requests", "1", "--retries", "0",
            "--concurrency", "2", "-q", *extra]  # fmt: skip
    return main(args)


def test_filters_counts_and_rejected_file(tmp_path, bench, capsys):
    server = Server(scripted(TITLES, QUESTIONS, ANSWERS))
    try:
        out = tmp_path / "si.jsonl"
        assert run(out, server.url, "--bench", str(bench)) == 0
    finally:
        server.close()
    records = lines(out)
    assert len(records) == 5  # exactly -n
    assert [r["title"] for r in records] == [
        "犬の散歩のコツ", "野菜の保存方法", "本の選び方", "部屋の片付け", "朝ごはんの工夫",
    ]  # fmt: skip
    assert records[0]["messages"] == [
        {"role": "user", "content": KEPT_QUESTION},
        {"role": "assistant", "content": f"{KEPT_QUESTION[:20]}への答えです。順に説明します。"},
    ]
    version = load_prompts("ja").version
    for r in records:
        assert r["generator"] == "local-13b" and r["backend"] == "openai"
        assert r["synth"] == "instruct" and r["prompt_version"] == version
        assert r["seed_file"] == read_seeds(None).provenance
        assert r["seed_file"]["path"] == "package:seeds_ja.jsonl"
    assert len({r["id"] for r in records}) == 5

    rejected_path, report_path = side_paths(out)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    counts = {step: dict(v) for step, v in report["counts"].items()}
    assert counts == EXPECTED
    assert report["kept"] == 5 and report["complete"] and report["rounds"] == 4
    assert report["benchmark_items"] == 2
    rejected = lines(rejected_path)
    assert len(rejected) == report["rejected"] == 18
    by = {(r["step"], r["reason"]) for r in rejected}
    flat = {(s, k) for s, v in EXPECTED.items() for k in v if k not in ("requests", "parsed",
            "asked", "answered", "kept")}  # fmt: skip
    assert by == flat
    reasons = {(r["step"], r["reason"], r.get("title")): r for r in rejected}
    leak = reasons[("questions", "benchmark_leak", "ベンチマーク")]["details"]
    assert leak["benchmark"] == "mt_bench/question" and leak["kind"] == "containment"
    near = reasons[("questions", "novelty", "犬の散歩の楽しみ方")]["details"]
    assert near["nearest"] == KEPT_QUESTION and near["rouge_l"] > 0.7
    same_round = reasons[("questions", "novelty", "最初の一冊")]["details"]
    assert same_round["nearest"] == QUESTIONS["本の選び方"]  # not kept yet: the round's own
    seed_copy = reasons[("questions", "novelty", "取引先への感謝")]["details"]
    assert seed_copy["nearest"] == FIRST_SEED
    assert reasons[("questions", "blacklist", "猫の爪切り")]["details"]["keyword"] == "画像"
    assert reasons[("titles", "blacklist", "グラフの読み方")]["details"]["keyword"] == "グラフ"
    assert "Chinese" in reasons[("questions", "language", "中国語")]["details"]["note"]
    assert reasons[("titles", "truncated", "途中で切")]
    assert reasons[("answers", "truncated", "長い話")]["answer"] == "むかしむかし、あるところに"
    assert reasons[("questions", "surplus", "雨の日の過ごし方")]
    summary = capsys.readouterr().err
    assert "kept 5 of 5 in 4 rounds; rejected 18" in summary and "benchmark_leak 1" in summary
    assert not out.with_name(out.name + ".state.json").exists()
    assert not out.with_name(out.name + ".partial").exists()


def test_report_sums_hold_and_fail_when_broken():
    from collections import Counter

    flat = Counter({f"{s}.{k}": v for s, d in EXPECTED.items() for k, v in d.items()})
    assert check_sums(flat) == []
    flat["questions.novelty"] += 1
    assert check_sums(flat)


def test_resume_after_failure_gives_the_same_records(tmp_path, bench):
    reply = scripted(TITLES, QUESTIONS, ANSWERS)
    whole = tmp_path / "whole.jsonl"
    server = Server(reply)
    try:
        assert run(whole, server.url, "--bench", str(bench)) == 0
    finally:
        server.close()

    def failing(body, calls):  # round 0 takes 10 requests; fail in the middle of round 1
        return (400, []) if calls > 13 else reply(body, calls)

    out = tmp_path / "resumed.jsonl"
    server = Server(failing)
    try:
        assert run(out, server.url, "--bench", str(bench)) == 1
    finally:
        server.close()
    partial = out.with_name(out.name + ".partial")
    state = json.loads(out.with_name(out.name + ".state.json").read_text())
    assert state["rounds"] == 1 and state["kept"] == 1 and len(lines(partial)) == 1
    assert not out.exists()
    with open(partial, "ab") as f:  # a torn line, as from a kill while writing
        f.write(b'{"id": "si-tor')
    # Other settings are refused.
    server = Server(reply)
    try:
        assert run(out, server.url, "--bench", str(bench), "--novelty", "0.8") == 1
        assert run(out, server.url, "--bench", str(bench)) == 0
        assert len(server.calls) == 27 - 10  # round 0 (10 requests) was not asked again
    finally:
        server.close()
    assert out.read_text(encoding="utf-8") == whole.read_text(encoding="utf-8")
    for side in (0, 1):
        assert side_paths(out)[side].exists()
    assert lines(side_paths(out)[0]) == lines(side_paths(whole)[0])
    report = json.loads(side_paths(out)[1].read_text())
    assert report["counts"] == json.loads(side_paths(whole)[1].read_text())["counts"]


def test_same_seed_same_output_other_seed_other_draws(tmp_path):
    outs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        server = Server(scripted(TITLES, QUESTIONS, ANSWERS, seed=seed))
        try:
            out = tmp_path / f"{name}.jsonl"
            assert run(out, server.url, "--seed", str(seed), n=1) == 0
            calls = sorted((c["seed"], c["messages"][-1]["content"]) for c in server.calls)
            outs[name] = (out.read_text(encoding="utf-8"), calls)
        finally:
            server.close()
    assert outs["a"] == outs["b"]
    titles_a, titles_c = ([t for _, t in calls if stage(t) == "titles"] for _, calls in
                          (outs["a"], outs["c"]))  # fmt: skip
    assert titles_a != titles_c  # other seed examples drawn
    assert {s for s, _ in outs["a"][1]}.isdisjoint(s for s, _ in outs["c"][1])


def test_prompts_file_validation_and_version(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("question: 'タイトルなしの依頼：'\nanswer: '{question} {answr}'\n")
    with pytest.raises(UsageError) as err:
        load_prompts("ja", bad)
    message = str(err.value)
    assert "template 'question' lacks {title}" in message
    assert "template 'answer' has unknown {answr}" in message
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"title": "{examples}"}))
    with pytest.raises(UsageError, match="unknown keys \\['title'\\]"):
        load_prompts("ja", unknown)
    assert run(tmp_path / "x.jsonl", "http://127.0.0.1:9/v1", "--prompts", str(bad)) == 1
    assert "lacks {title}" in capsys.readouterr().err

    custom = tmp_path / "custom.yaml"
    custom.write_text(
        json.dumps({"answer": "（簡潔に）{question}"}, ensure_ascii=False), encoding="utf-8"
    )
    prompts = load_prompts("ja", custom)
    assert prompts.templates["titles"] == DEFAULTS["ja"]["titles"]
    assert prompts.version != load_prompts("ja").version
    server = Server(scripted(TITLES, QUESTIONS, ANSWERS))
    try:
        out = tmp_path / "custom.jsonl"
        assert run(out, server.url, "--prompts", str(custom), n=1) == 0
        answered = [c["messages"][-1]["content"] for c in server.calls]
    finally:
        server.close()
    assert f"（簡潔に）{KEPT_QUESTION}" in answered
    assert lines(out)[0]["prompt_version"] == prompts.version


def test_outputs_never_replace_an_input(tmp_path, capsys):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"instruction": "日本の四季について説明して。"}])
    before = seeds.read_text()
    server = Server(scripted(TITLES, QUESTIONS, ANSWERS))
    try:
        assert run(seeds, server.url, "--seeds", str(seeds), "--overwrite") == 1
        assert "is the input" in capsys.readouterr().err
        out = tmp_path / "o.jsonl"
        out.write_text("old\n")
        assert run(out, server.url, "--seeds", str(seeds), n=1) == 1
        assert "already exists" in capsys.readouterr().err
        assert out.read_text() == "old\n" and server.calls == []
    finally:
        server.close()
    assert seeds.read_text() == before


def test_provenance_guard_acts_on_the_records(tmp_path):
    server = Server(scripted(TITLES, QUESTIONS, ANSWERS))
    try:
        for model in ("local-13b", "gpt-4o-mini"):
            assert run(tmp_path / f"{model}.jsonl", server.url, n=1, model=model) == 0
    finally:
        server.close()
    guard = ProvenanceGuard()
    (local,) = lines(tmp_path / "local-13b.jsonl")
    (closed,) = lines(tmp_path / "gpt-4o-mini.jsonl")
    assert guard.drop_reason(local, tmp_path / "local-13b.jsonl") is None
    assert "proprietary" in guard.drop_reason(closed, tmp_path / "gpt-4o-mini.jsonl")


def test_patience_ends_a_run_that_keeps_nothing(tmp_path, capsys):
    server = Server(scripted({}, {}, {}))  # every titles reply is empty
    try:
        out = tmp_path / "none.jsonl"
        assert run(out, server.url, "--patience", "3") == 1
        assert "kept none" in capsys.readouterr().err and not out.exists()
        assert run(out, server.url, "--patience", "3", "--allow-empty", "--overwrite") == 0
    finally:
        server.close()
    report = json.loads(side_paths(out)[1].read_text())
    assert report["complete"] is False and "3 rounds in a row kept nothing" in report["stopped"]
    assert report["counts"]["titles"] == {"requests": 3, "no_titles": 3}
    assert lines(out) == [] and len(lines(side_paths(out)[0])) == 3


def test_title_parsing_and_normalization():
    assert parse_titles("はい。\n1. メールの書き方\n2) 「旅行の計画」\n３．**料理**\n以上です") == [
        "メールの書き方", "旅行の計画", "料理",
    ]  # fmt: skip
    assert parse_titles("タイトル：朝の習慣\n夜の習慣") == ["朝の習慣", "夜の習慣"]
    assert parse_titles("\n \n") == []
    assert normalize_title("「ＡＢＣの 使い方！」") == normalize_title("abcの使い方")


def test_filters_one_by_one():
    blacklist = flt.Blacklist()
    assert blacklist.find("この文の意図を説明して、図書館で調べて") is None
    assert blacklist.find("次の図を見て答えて") == "図"
    assert blacklist.find("Update my profile page") is None
    assert blacklist.find("Plot the data") == "Plot"
    assert flt.Blacklist(()).find("画像") is None
    assert flt.language("Pythonでリストを逆順にする方法を教えてください", "ja", 0.5) is None
    assert flt.language("Explain recursion.", "ja", 0.5)[0] == "language"
    code = "次のコードを直して：\n```python\nprint('hello world, this is a long line')\n```"
    assert flt.language(code, "ja", 0.5) is None  # code is left out
    assert flt.language("Explain recursion.", "en", 0.5) is None
    translate = "次の英文を日本語に訳してください。\nThe meeting has been moved to Thursday."
    assert flt.language(translate, "ja", 0.5)[0] == "language"
    assert flt.language(translate, "ja", 0.5, by_line=True) is None
    assert flt.length("abc", 5, 10) == ("too_short", {"chars": 3, "min": 5})
    assert flt.truncated("length") and flt.truncated("stop") is None


def test_blacklist_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# mine\n料理\n!料理人\nrecipe\n", encoding="utf-8")
    blacklist = flt.load_blacklist(path)
    assert blacklist.find("料理人の一日") is None and blacklist.find("料理の手順") == "料理"
    assert blacklist.find("a Recipe for bread") == "Recipe" and blacklist.find("画像") is None


def test_seed_layouts(tmp_path):
    path = write_jsonl(
        tmp_path / "seeds.jsonl",
        [
            {"name": "unit_convert", "instruction": "Convert.", "instances": [
                {"input": "3 km", "output": "3000 m"}], "is_classification": False},
            {"instruction": "俳句を一つ作って。"},
            {"messages": [{"role": "user", "content": "こんにちは"},
                          {"role": "assistant", "content": "こんにちは！"}]},
        ],
    )  # fmt: skip
    tasks = read_seeds(path).tasks
    assert [(t.title, t.instruction) for t in tasks] == [
        ("unit convert", "Convert.\n3 km"),
        ("俳句を一つ作って。", "俳句を一つ作って。"),
        ("こんにちは", "こんにちは"),
    ]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "ok"}, {"text": "no"}])
    with pytest.raises(Exception, match="bad.jsonl:2"):
        read_seeds(bad)
    assert len(read_seeds(bad, skip_bad=True).tasks) == 1


def test_shipped_seeds_are_varied_japanese():
    seeds = read_seeds(None)
    assert len(seeds.tasks) >= 40
    assert len({normalize_title(t.title) for t in seeds.tasks}) == len(seeds.tasks)
    for task in seeds.tasks:
        assert flt.language(task.instruction, "ja", 0.5, by_line=True) is None, task
        assert flt.blacklisted(task.instruction, flt.Blacklist()) is None, task


def test_self_instruct_seed_file(tmp_path):
    if not SHARED_SEEDS.is_file():
        pytest.skip("../shared/corpora/self-instruct/seed_tasks.jsonl is absent")
    copied = read_seeds(SHARED_SEEDS).tasks[1].instruction
    titles = {0: ("1. Antonym relation\n2. Plan a picnic menu\n3. Pairs of opposites", "stop")}
    questions = {
        "Plan a picnic menu": "Suggest a menu for a family picnic with two children.",
        "Pairs of opposites": copied,
    }
    server = Server(scripted(titles, questions, {}))
    try:
        out = tmp_path / "en.jsonl"
        assert run(out, server.url, "--seeds", str(SHARED_SEEDS), "--lang", "en", n=1) == 0
    finally:
        server.close()
    (record,) = lines(out)
    assert record["title"] == "Plan a picnic menu" and record["lang"] == "en"
    assert record["seed_file"]["path"] == str(SHARED_SEEDS)
    report = json.loads(side_paths(out)[1].read_text())
    assert report["seed_tasks"] == 175
    assert report["counts"]["titles"]["duplicate"] == 1  # the seed's name, as a title
    assert report["counts"]["questions"]["novelty"] == 1  # a seed instruction, copied


def eos_prone_model(folder: Path) -> Path:
    """The tiny test model, changed so that it ends a reply after ~5 tokens on average: a
    constant first hidden dimension (every embedding's is large) and an end-of-sequence logit
    read from it; the other tokens stay near uniform (gibberish)."""
    import torch
    from train_fixtures import tiny_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tiny_model(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    eos = AutoTokenizer.from_pretrained(folder).eos_token_id
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 100.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[eos, 0] = 0.75  # about 0.12 a token
    model.save_pretrained(folder)
    return folder


@pytest.mark.torch
def test_hf_backend_end_to_end(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    model = eos_prone_model(tmp_path / "model")
    short = tmp_path / "short.json"  # prompts within the tiny model's 512 positions
    short.write_text(json.dumps({"titles": "{examples}\n{count}", "question": "{title}"}))
    out = tmp_path / "hf.jsonl"
    args = ["synth", "instruct", "--model", str(model), "-n", "2", "-o", str(out),
            "--backend", "hf", "--max-new-tokens", "12", "--requests", "2", "--titles", "3",
            "--prompts", str(short), "--seed-examples", "2",
            "--min-question-chars", "1", "--min-answer-chars", "1", "--min-question-share", "0",
            "--min-answer-share", "0", "--patience", "8", "--allow-empty", "-q"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(side_paths(out)[1].read_text())
    records = lines(out)
    assert len(records) == report["kept"] <= 2
    assert report["counts"]["answers"].get("kept", 0) == len(records)
    from collections import Counter

    flat = Counter({f"{s}.{k}": v for s, d in report["counts"].items() for k, v in d.items()})
    assert check_sums(flat) == []
    assert len(lines(side_paths(out)[0])) == report["rejected"]
    assert report["counts"]["titles"]["requests"] == 2 * report["rounds"]
    for r in records:
        assert r["generator"] == str(model) and r["backend"] == "hf"


def test_real_benchmark_folders_as_decontaminate_takes_them(tmp_path):
    shared = Path(__file__).resolve().parents[2] / "shared/benchmarks"
    folders = [shared / "japanese_mt_bench", shared / "rakuda"]
    if not all(f.is_dir() for f in folders):
        pytest.skip("../shared/benchmarks is absent")
    with open(folders[0] / "question.jsonl", encoding="utf-8") as f:
        leaked = json.loads(f.readline())["turns"][0]  # read here, never copied
    titles = {0: ("1. 映画の評価\n2. 野菜の保存方法", "stop")}
    questions = {"映画の評価": leaked, "野菜の保存方法": QUESTIONS["野菜の保存方法"]}
    server = Server(scripted(titles, questions, {}))
    try:
        out = tmp_path / "b.jsonl"
        bench = [f"jmtb={folders[0]}", str(folders[1])]
        assert run(out, server.url, *[x for b in bench for x in ("--bench", b)], n=1) == 0
    finally:
        server.close()
    report = json.loads(side_paths(out)[1].read_text())
    assert report["counts"]["questions"]["benchmark_leak"] == 1
    (rejection,) = lines(side_paths(out)[0])
    assert rejection["details"]["benchmark"] == "jmtb" and rejection["details"]["kind"] == "exact"
    assert report["benchmark_items"] > 100


def test_a_fleet_of_servers_gives_the_same_records(tmp_path):
    reply = scripted(TITLES, QUESTIONS, ANSWERS)
    servers = [Server(reply), Server(reply)]
    try:
        one, fleet = tmp_path / "one.jsonl", tmp_path / "fleet.jsonl"
        assert run(one, servers[0].url) == 0
        calls = len(servers[0].calls)
        assert run(fleet, servers[0].url, "--base-url", servers[1].url) == 0
        assert len(servers[0].calls) > calls and servers[1].calls
    finally:
        for server in servers:
            server.close()
    assert fleet.read_text(encoding="utf-8") == one.read_text(encoding="utf-8")
