"""``eval rakuda``: absolute grades per category, pairwise judging in both orders (a split verdict
is a tie) against a baseline, a Bradley-Terry rating with a first-position term over several
answer files, Rakuda's "last digit" verdicts, and the real Rakuda files in ../shared."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from backend_fixtures import Server, choice

from plamo_fast.errors import PlamoFastError
from plamo_fast.eval import bradley_terry as bt
from plamo_fast.eval import mt_bench_run as run
from plamo_fast.eval import rakuda
from plamo_fast.judge import fastchat as fc

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "rakuda"
CATS = ["地理", "政治", "歴史", "社会"]
QUESTIONS = [{"category": CATS[k % 4], "question_id": f"q{k}", "turns": [f"質問{k}"]}
             for k in range(8)]  # fmt: skip
# Our own prompt files in FastChat's format (the official ones are in ../shared).
PAIR = {"name": "pair-ja", "type": "pairwise", "system_prompt": "二つの回答を比べてください。",
        "prompt_template": "[質問]\n{question}\n\n[1]\n{answer_a}\n\n[2]\n{answer_b}",
        "output_format": "last"}  # fmt: skip
SINGLE = {"name": "single-v1", "type": "single", "system_prompt": "評価してください。",
          "prompt_template": "[質問]\n{question}\n\n[回答]\n{answer}\n\n[[評価]]",
          "output_format": "[[評価]]"}  # fmt: skip


def judge_reply(body, calls):
    """Pairwise: the answer holding more GOOD wins ("1" or "2" on the last line); two equal
    answers make the judge pick the first shown (position bias). Single: GOOD gets 9, else 4."""
    user = body["messages"][-1]["content"]
    if "[1]" in user:
        first, second = user.split("[2]")
        a, b = first.count("GOOD"), second.count("GOOD")
        return 200, [choice(0, "理由。\n" + ("２" if b > a else "1"))]
    return 200, [choice(0, "評価：[[9]]" if "GOOD" in user else "評価：[[4]]")]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def answers_file(path: Path, name: str, texts: list[str]) -> Path:
    return write_jsonl(
        path,
        [{"question_id": q["question_id"], "answer_id": str(k), "model_id": name,
          "choices": [{"index": 0, "turns": [texts[k]]}], "tstamp": 0}
         for k, q in enumerate(QUESTIONS)],
    )  # fmt: skip


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return {
        "questions": write_jsonl(d / "questions.jsonl", QUESTIONS),
        "pair": write_jsonl(d / "judge_prompts.jsonl", [PAIR]),
        "single": write_jsonl(d / "single.jsonl", [SINGLE]),
        # model m wins questions 0-3, loses 4-5, and 6-7 are equal (the judge's bias decides)
        "m": answers_file(d / "m.jsonl", "m", ["GOOD"] * 4 + ["x"] * 2 + ["same"] * 2),
        "base": answers_file(d / "b.jsonl", "base", ["x"] * 4 + ["GOOD GOOD"] * 2 + ["same"] * 2),
        "weak": answers_file(d / "w.jsonl", "weak", ["x"] * 8),
    }


@pytest.fixture
def server():
    s = Server(judge_reply)
    yield s
    s.close()


def _run(data, out, server, **kwargs):
    judge = run.Endpoint("judge-x", "openai", server.url, concurrency=4, retries=0)
    return rakuda.run_rakuda(
        data["questions"], out, judge=judge, progress=False, bootstrap_rounds=50, **kwargs
    )


def test_pairwise_against_a_baseline_in_both_orders(tmp_path, data, server):
    out = tmp_path / "out"
    summary = _run(data, out, server, answers=[data["m"]], baseline=data["base"],
                   pair_prompts=data["pair"], judge_prompts=data["single"])  # fmt: skip
    # Equal answers: game 1 says m (shown first), game 2 says base (shown first): a split, a tie.
    assert summary["pairwise"]["m vs base"] == {"wins": 4, "losses": 2, "ties": 2, "failed": 0}
    results = json.loads((out / "results.json").read_text())
    pair = results["pairwise"]["m vs base"]
    assert pair["by_category"]["地理"] == {"wins": 1, "losses": 1, "ties": 0, "failed": 0}
    assert pair["by_order"]["first_shown_first"] == {"win": 6, "loss": 2}
    assert pair["win_rate"] == pytest.approx((4 + 1) / 8)
    # Every question asked in both orders, each prompt the file's template filled in.
    sent = [c["messages"] for c in server.calls if "[1]" in c["messages"][-1]["content"]]
    assert len(sent) == 16
    q0 = "[質問]\n質問0\n\n[1]\n{}\n\n[2]\n{}"
    assert [{"role": "system", "content": PAIR["system_prompt"]},
            {"role": "user", "content": q0.format("GOOD", "x")}] in sent  # fmt: skip
    assert [{"role": "system", "content": PAIR["system_prompt"]},
            {"role": "user", "content": q0.format("x", "GOOD")}] in sent  # fmt: skip
    # FastChat's pair judgement format, g2 expressed for model_1/model_2.
    judged = (out / "model_judgment" / "judge-x_pair.jsonl").read_text()
    rows = [json.loads(x) for x in judged.splitlines()]
    assert {(r["g1_winner"], r["g2_winner"]) for r in rows} == {
        ("model_1", "model_1"),
        ("model_2", "model_2"),
        ("model_1", "model_2"),
    }
    # Absolute grades per category
    assert results["categories"] == {"地理": 6.5, "政治": 6.5, "歴史": 6.5, "社会": 6.5}
    assert results["absolute"]["base"]["average"] == pytest.approx((4 * 4 + 2 * 9 + 2 * 4) / 8)
    markdown = (out / "results.md").read_text()
    assert "| m | base | 4 | 2 | 2 | 0 | 62.5% |" in markdown
    assert "| model | 地理 | 政治 | 歴史 | 社会 | average | failed |" in markdown
    # Bradley-Terry over the games, with the judge's first-position bias as a positive term
    ranking = results["bradley_terry"]
    assert ranking["games"] == 16 and ranking["advantage"] > 0


def test_several_answer_files_give_a_ranking(tmp_path, data, server):
    out = tmp_path / "out"
    _run(data, out, server, answers=[data["m"], data["base"], data["weak"]],
         pair_prompts=data["pair"])  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert set(results["pairwise"]) == {"m vs base", "m vs weak", "base vs weak"}
    assert results["pairwise"]["m vs weak"]["wins"] == 4
    ranking = results["bradley_terry"]
    assert list(ranking["models"]) == ["m", "base", "weak"]
    for r in ranking["models"].values():
        assert r["lower"] <= r["median"] <= r["upper"]
    assert results["absolute"] == {} and results["average"] is None


def test_absolute_grades_of_a_model(tmp_path, data, server):
    pytest.importorskip("torch")
    from train_fixtures import tiny_model

    model = tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    summary = _run(data, out, server, model=run.Endpoint(str(model), "hf"), max_new_tokens=4,
                   judge_prompts=data["single"], baseline=data["base"],
                   pair_prompts=data["pair"])  # fmt: skip
    assert summary["answers_generated"] == 8
    assert set(summary["categories"]) == set(CATS)
    answers = (out / "model_answer" / "model.jsonl").read_text().splitlines()
    assert len(answers) == 8
    again = _run(data, tmp_path / "out2", server, model=run.Endpoint(str(model), "hf"),
                 max_new_tokens=4, judge_prompts=data["single"], baseline=data["base"],
                 pair_prompts=data["pair"], cache_dir=tmp_path / "out.cache")  # fmt: skip
    assert again["answers_generated"] == 0 and again["judgements_asked"] == 0


def test_missing_answer_refused_before_any_request(tmp_path, data, server):
    lines = data["m"].read_text().splitlines()
    data["m"].write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    with pytest.raises(PlamoFastError, match=r"questions\.jsonl:4: question 'q3' has no answer"):
        _run(data, tmp_path / "out", server, answers=[data["m"]], baseline=data["base"],
             pair_prompts=data["pair"])  # fmt: skip
    assert server.calls == []


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("理由。\n1", "A"), ("２", "B"), ("どちらとも言えない。3", "tie"), ("3。", "tie"),
     ("1 と 2 を比べて… 4", None), ("", None), ("no digit", None)],
)  # fmt: skip
def test_last_digit_verdicts(text, verdict):
    assert fc.parse_last_choice(text) == verdict


def _games(strengths: dict[str, float], alpha: float, per_pair: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    games = []
    names = list(strengths)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for first, second in ((a, b), (b, a)) * per_pair:
                p = 1 / (1 + math.exp(-(alpha + strengths[first] - strengths[second])))
                u = rng.random()
                games.append((first, second, 1.0 if u < p * 0.9 else 0.5 if u < p + 0.05 else 0.0))
    return games


def test_bradley_terry_recovers_strengths_and_position_bias():
    games = _games({"a": 1.0, "b": 0.0, "c": -1.0}, alpha=0.5, per_pair=400)
    result = bt.fit(games)
    unit = 400 / math.log(10)
    r = result["ratings"]
    assert result["converged"]
    assert sum(r.values()) / 3 == pytest.approx(1000, abs=1e-6)  # betas sum to 0
    assert (r["a"] - r["c"]) / unit == pytest.approx(2.0, abs=0.25)
    assert result["advantage"] / unit == pytest.approx(0.5 * 0.9, abs=0.25)


def test_bradley_terry_maximises_rakudas_likelihood():
    """The fit is the optimum of the objective Rakuda's compute_bt_mle minimises (scipy's
    L-BFGS-B on -loglik with beta_0 = -sum of the others), to a fraction of a rating point."""
    optimize = pytest.importorskip("scipy.optimize")
    games = _games({"a": 0.3, "b": 0.0, "c": -0.2, "d": 0.1}, alpha=0.2, per_pair=30)
    models = list(dict.fromkeys([g[0] for g in games] + [g[1] for g in games]))
    i = np.array([models.index(g[0]) for g in games])
    j = np.array([models.index(g[1]) for g in games])
    y = np.array([g[2] for g in games])

    def negative(x):
        x = x.copy()
        x[1] = -np.sum(x[2:])
        d = x[0] + x[1:][i] - x[1:][j]
        return -np.sum(y * d - np.log1p(np.exp(d)))

    best = optimize.minimize(negative, np.zeros(len(models) + 1), method="L-BFGS-B",
                             options={"ftol": 1e-14, "gtol": 1e-10})  # fmt: skip
    best.x[1] = -np.sum(best.x[2:])
    unit = 400 / math.log(10)
    ours = bt.fit(games)
    for k, m in enumerate(models):
        assert ours["ratings"][m] == pytest.approx(unit * best.x[1 + k] + 1000, abs=0.05)
    assert ours["advantage"] == pytest.approx(unit * best.x[0], abs=0.05)


def test_real_rakuda_files_are_read_and_matched():
    """Rakuda v2 questions, its pair-ja prompt (output_format last) and the published answers:
    both orders of every question built from the file's template."""
    files = [SHARED / "rakuda_v2" / "questions.jsonl", SHARED / "judge_prompts.jsonl",
             SHARED / "rakuda_v2" / "answers" / "gpt-4-20230713.jsonl",
             SHARED / "rakuda_v2" / "answers" / "gpt-3.5-turbo-0301-20230614.jsonl"]  # fmt: skip
    for f in files:
        if not f.exists():
            pytest.skip(f"{f} is absent")
    from plamo_fast.eval import mt_bench as mt

    questions = mt.read_questions(files[0])
    prompts = fc.load_judge_prompts(files[1])
    pair = fc.pair_prompt(prompts, str(files[1]))
    assert fc.verdict_parser(pair)[0] == "last digit 1/2/3"
    sets = rakuda._answer_sets(questions, files[2:], "--answers")
    assert list(sets) == ["gpt-4:20230713", "gpt-3.5-turbo-0301-20230614"]
    a, b = sets.values()
    requests = rakuda.pair_requests(questions, a, b, pair)
    assert len(requests) == 80 and {q.category for q in questions} == set(CATS)
    raw = json.loads(files[1].read_text(encoding="utf-8"))
    q = questions[0]
    assert requests[1].messages() == [
        {"role": "system", "content": raw["system_prompt"]},
        {"role": "user", "content": raw["prompt_template"].format(
            question=q.turns[0], answer_a=b[q.question_id].turns[0],
            answer_b=a[q.question_id].turns[0])},
    ]  # fmt: skip
