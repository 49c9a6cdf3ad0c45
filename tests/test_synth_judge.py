"""``plamo-fast synth judge``: grading exercises labelled by the verifier, in the very prompt
``eval mt-bench`` sends its judge; and ``synth math``'s held-out split as an MT-Bench set."""

from __future__ import annotations

import json
import re
from pathlib import Path
from random import Random

import pytest

from plamo_fast.data.conversation import BadRecordError
from plamo_fast.errors import UsageError
from plamo_fast.eval import mt_bench as mt
from plamo_fast.judge import fastchat as fc
from plamo_fast.judge.templates import parse_rating
from plamo_fast.synth.judge import near_miss, synth_judge
from plamo_fast.synth.run import bench_paths, holdout_path, synth_math

PROMPTS = Path(__file__).parents[1] / "python/plamo_fast/recipes/data/judge-prompts-en.jsonl"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def math_file(tmp_path) -> Path:
    out = tmp_path / "math.jsonl"
    synth_math(out, 300, seed=3, lang="en", mix="arithmetic=1,decimals=1", holdout=0.1)
    return out


def test_exercises_are_labelled_by_the_answer_and_parse_as_ratings(math_file, tmp_path):
    out = tmp_path / "judge.jsonl"
    report = synth_judge([math_file], out, PROMPTS, wrong=0.5, seed=1)
    sources = {r["id"]: r for r in read(math_file)}
    exercises = read(out)
    assert report["written"] == len(exercises) == len(sources)
    assert report["right"] + report["wrong"] == len(exercises)
    assert 0.35 < report["wrong"] / len(exercises) < 0.65
    for ex in exercises:
        source = sources[ex["judge_label"]["source_id"]]
        solution = source["messages"][-1]["content"]
        user, reply = ex["messages"][-2]["content"], ex["messages"][-1]["content"]
        boxed = re.findall(r"\\boxed\{([^}]*)\}", user)[-1]
        assert user.endswith(f"[Reference answer]\n{source['answer']}")
        if ex["judge_label"]["right"]:
            assert solution in user and boxed == source["answer"]
            assert parse_rating(reply) == 10 and "Same." in reply
        else:
            assert solution not in user and boxed != source["answer"]
            assert parse_rating(reply) == 1 and "Different." in reply
            assert f"The answer gives {boxed};" in reply


def test_the_prompt_is_the_one_eval_mt_bench_sends(math_file, tmp_path):
    """Byte for byte: the judge is trained on the prompts it will be asked."""
    out = tmp_path / "judge.jsonl"
    synth_judge([math_file], out, PROMPTS, wrong=0.0)
    prompts = fc.single_prompts(fc.load_judge_prompts(PROMPTS), 1, str(PROMPTS))
    for source, ex in zip(read(math_file), read(out), strict=True):
        question = mt.Question(source["id"], "math", [source["messages"][0]["content"]], "here")
        answer = mt.Answer(source["id"], "m", [source["messages"][-1]["content"]], "here")
        reference = mt.Answer(source["id"], "ref", [source["answer"]], "here")
        (request,) = mt.judge_requests(
            [question], {source["id"]: answer}, {source["id"]: reference}, prompts, 1
        )
        assert request.messages() == ex["messages"][:-1]


def test_same_seed_same_file_and_another_seed_another(math_file, tmp_path):
    a, b, c = (tmp_path / f"{n}.jsonl" for n in "abc")
    synth_judge([math_file], a, PROMPTS, seed=5)
    synth_judge([math_file], b, PROMPTS, seed=5)
    synth_judge([math_file], c, PROMPTS, seed=6)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_near_miss_is_close_and_never_the_answer():
    rng = Random(0)
    for answer in ["0", "7", "10", "99", "153", "-12", "3.5", "0.25", "1000"]:
        for _ in range(300):
            wrong = near_miss(answer, rng)
            assert wrong != answer and re.fullmatch(r"-?\d+(\.\d+)?", wrong)
            assert len(wrong.lstrip("-")) <= len(answer.lstrip("-")) + 1
    with pytest.raises(BadRecordError, match="not a number"):
        near_miss("x/2", rng)


def test_a_bad_record_is_named_or_counted(tmp_path, math_file):
    bad = tmp_path / "bad.jsonl"
    lines = math_file.read_text(encoding="utf-8").splitlines()[:3]
    broken = json.loads(lines[1])
    broken["answer"] = "123456789"  # not stated in the solution
    lines[1] = json.dumps(broken)
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadRecordError, match=rf"{re.escape(str(bad))}:2: .*never states"):
        synth_judge([bad], tmp_path / "out.jsonl", PROMPTS)
    assert not (tmp_path / "out.jsonl").exists()
    report = synth_judge([bad], tmp_path / "out.jsonl", PROMPTS, skip_bad=True)
    assert report["written"] == 2 and report["skipped"] == {"bad_record": 1}


def test_a_prompt_file_without_a_reference_prompt_is_refused(tmp_path, math_file):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(PROMPTS.read_text(encoding="utf-8").splitlines()[0] + "\n")
    with pytest.raises(UsageError, match="single-math-v1"):
        synth_judge([math_file], tmp_path / "out.jsonl", prompts)


def test_the_output_never_replaces_an_input(math_file):
    with pytest.raises(UsageError):
        synth_judge([math_file], math_file, PROMPTS, overwrite=True)


def test_the_holdout_is_also_an_mt_bench_set(math_file):
    test = read(holdout_path(math_file))
    questions_path, references_path = bench_paths(math_file)
    questions = mt.read_questions(questions_path)
    references = mt.read_answers(references_path)
    assert [q.question_id for q in questions] == [r["id"] for r in test]
    assert all(q.category == "math" for q in questions)
    for q, record in zip(questions, test, strict=True):
        assert q.turns == [record["messages"][0]["content"]]
        assert references[q.question_id].turns == [record["answer"]]
    mt.check_references(questions, references, references_path, 1)


def test_nothing_usable_is_refused_and_writes_nothing(tmp_path):
    from plamo_fast.data.accounting import NothingKeptError

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(NothingKeptError, match=r"read 1 records but kept none .*bad_record 1"):
        synth_judge([bad], tmp_path / "out.jsonl", PROMPTS, skip_bad=True)
    assert not (tmp_path / "out.jsonl").exists()
    # The error's advice works: the command has --allow-empty.
    from plamo_fast.cli import main

    out = tmp_path / "empty.jsonl"
    args = ["synth", "judge", str(bad), "-o", str(out), "--judge-prompts", str(PROMPTS)]
    assert main([*args, "--skip-bad"]) == 1
    assert main([*args, "--skip-bad", "--allow-empty"]) == 0
    assert out.read_text() == ""
