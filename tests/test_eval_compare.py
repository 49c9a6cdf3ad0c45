"""``eval compare``: two MT-Bench runs side by side (a table per benchmark, a chart each) and
judged against each other in both orders (math with its reference), plus a Jaster-like run."""

from __future__ import annotations

import json

import pytest
from backend_fixtures import Server, choice
from test_eval_mt_bench import PROMPTS, QUESTIONS, REFERENCES, judge_reply, write_jsonl

from plamo_fast.cli import main
from plamo_fast.errors import UsageError
from plamo_fast.eval import compare as cmp
from plamo_fast.eval import mt_bench_run as run

PAIRS = [
    {"name": "pair-v2", "type": "pairwise", "system_prompt": "Compare.",
     "prompt_template": "Q {question}\nA {answer_a}\nB {answer_b}", "output_format": "[[A]]"},
    {"name": "pair-math-v1", "type": "pairwise", "system_prompt": "Compare math.",
     "prompt_template": "Q {question}\nREF {ref_answer_1}\nA {answer_a}\nB {answer_b}",
     "output_format": "[[A]]"},
]  # fmt: skip


def pair_reply(body, calls):
    """The answer marked WIN wins; otherwise the first shown (position bias)."""
    user = body["messages"][-1]["content"]
    if "\nA " in user:
        a, b = user.split("\nB ")
        verdict = "[[B]]" if "WIN" in b and "WIN" not in a else "[[A]]"
        return 200, [choice(0, f"Thinking [[C]] maybe. Final: {verdict}")]
    return judge_reply(body, calls)


def answers(model: str, texts: list[str]) -> list[dict]:
    return [{"question_id": q["question_id"], "answer_id": "a", "model_id": model,
             "choices": [{"index": 0, "turns": [t, "t2"]}], "tstamp": 0}
            for q, t in zip(QUESTIONS, texts, strict=True)]  # fmt: skip


@pytest.fixture
def two_runs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    files = {"questions": write_jsonl(data / "question.jsonl", QUESTIONS),
             "references": write_jsonl(data / "ref.jsonl", REFERENCES),
             "judge_prompts": write_jsonl(data / "judge.jsonl", PROMPTS)}  # fmt: skip
    server = Server(pair_reply)
    folders = []
    for name, texts in (("m1", ["WIN", "x", "x"]), ("m2", ["x", "WIN", "x"])):
        path = write_jsonl(data / f"{name}.jsonl", answers(name, texts))
        out = tmp_path / name
        judge = run.Endpoint("j", "openai", server.url, retries=0)
        run.run_mt_bench(
            files["questions"],
            out,
            answers=path,
            progress=False,
            judge=judge,
            judge_prompts=files["judge_prompts"],
            references=files["references"],
        )
        folders.append(out)
    yield folders, server, write_jsonl(data / "pairs.jsonl", PAIRS)
    server.close()


def test_side_by_side_and_pairwise_both_orders(tmp_path, two_runs):
    folders, server, pairs = two_runs
    before = len(server.calls)
    out = tmp_path / "cmp"
    code = main(["eval", "compare", *map(str, folders), "-o", str(out), "--judge", "j",
                 "--judge-backend", "openai", "--judge-base-url", server.url,
                 "--pair-prompts", str(pairs)])  # fmt: skip
    assert code == 0
    md = (out / "compare.md").read_text()
    assert "## mt-bench" in md and "| run | writing | reasoning | math | average |" in md
    assert "| m1 (m1) |" in md and "| m2 (m2) |" in md
    assert (out / "mt-bench.png").read_bytes()[:4] == b"\x89PNG"
    # 3 questions x 2 orders; the math question with its reference and the math prompt
    sent = [c["messages"] for c in server.calls[before:]]
    assert len(sent) == 6
    assert {"role": "user", "content": "Q What is 2+3? QECHO\nREF 5\nA x\nB WIN"} in [
        m[-1] for m in sent
    ]
    # q1: m1 wins both orders; q2: m2 wins both; q3: position bias, a split: a tie
    pair = json.loads((out / "compare.json").read_text())["pairwise"]["mt-bench"]
    assert (pair["wins"], pair["losses"], pair["ties"], pair["failed"]) == (1, 1, 1, 0)
    assert "| mt-bench | m1 | m2 | 1 | 1 | 1 | 0 |" in md


def test_tables_without_a_judge_and_jaster_rows(tmp_path, two_runs):
    folders, server, _ = two_runs
    jaster = tmp_path / "jaster"
    jaster.mkdir()
    (jaster / "results.json").write_text(json.dumps({
        "benchmark": "jaster", "model": "m1", "average": 0.5, "categories": {"NLI": 0.5},
        "runs": [{"shots": 0, "categories": {"NLI": 0.4}, "average": 0.4},
                 {"shots": 4, "categories": {"NLI": 0.6}, "average": 0.6}]}))  # fmt: skip
    calls = len(server.calls)
    result = cmp.compare([*folders, jaster], tmp_path / "cmp")
    assert result["benchmarks"] == ["mt-bench", "jaster"] and len(server.calls) == calls
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| m1 (jaster) 0-shot | 0.4000 | 0.4000 |" in md
    assert "| m1 (jaster) 4-shot | 0.6000 | 0.6000 |" in md
    with pytest.raises(UsageError, match="no results.json"):
        cmp.compare([folders[0], tmp_path / "data"], tmp_path / "cmp2")
