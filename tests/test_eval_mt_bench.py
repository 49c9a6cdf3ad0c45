"""``eval mt-bench`` end to end: a tiny model on the hf backend answers two turns, a judge served
by a loopback OpenAI-compatible server (backend_fixtures.Server) grades each turn. The prompts the
judge receives, the ratings parsed (the last [[N]]), failures counted, the table against
FastChat's show_result (peer), resume after a kill, a changed model, bad inputs refused before
any request, a judge that stays down."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from backend_fixtures import Server, choice

from plamo_fast.errors import PlamoFastError
from plamo_fast.eval import mt_bench as mt
from plamo_fast.eval import mt_bench_run as run
from plamo_fast.judge import fastchat as fc

QUESTIONS = [
    {"question_id": 1, "category": "writing", "turns": ["Write a haiku. QGOOD", "Now in French."]},
    {"question_id": 2, "category": "math", "turns": ["What is 2+3? QECHO", "And 2*3?"]},
    {"question_id": 3, "category": "reasoning", "turns": ["Who is taller? QFAIL", "Why?"]},
]
REFERENCES = [
    {"question_id": 2, "answer_id": "r2", "model_id": "ref",
     "choices": [{"index": 0, "turns": ["5", "6"]}], "tstamp": 0},
    {"question_id": 3, "answer_id": "r3", "model_id": "ref",
     "choices": [{"index": 0, "turns": ["Ann", "She is older."]}], "tstamp": 0},
]  # fmt: skip
# A judge prompt file in FastChat's format (our own wording; the official files are in ../shared).
PROMPTS = [
    {"name": "single-v1", "type": "single", "system_prompt": "You judge answers.",
     "prompt_template": "[Question]\n{question}\n\n[Answer]\n{answer}\n\nRate it as [[rating]].",
     "output_format": "[[rating]]"},
    {"name": "single-math-v1", "type": "single", "system_prompt": "You judge math.",
     "prompt_template": "[Question]\n{question}\n\n[Reference]\n{ref_answer_1}\n\n[Answer]\n"
                        "{answer}\n\nRate it as [[rating]].",
     "output_format": "[[rating]]"},
    {"name": "single-v1-multi-turn", "type": "single", "system_prompt": "You judge turn 2.",
     "prompt_template": "Q1 {question_1}\nA1 {answer_1}\nQ2 {question_2}\nA2 {answer_2}\n"
                        "Rate A2 as [[rating]].",
     "output_format": "[[rating]]"},
    {"name": "single-math-v1-multi-turn", "type": "single", "system_prompt": "You judge math 2.",
     "prompt_template": "R1 {ref_answer_1} R2 {ref_answer_2}\nQ1 {question_1}\nA1 {answer_1}\n"
                        "Q2 {question_2}\nA2 {answer_2}\nRate A2 as [[rating]].",
     "output_format": "[[rating]]"},
]  # fmt: skip


def judge_reply(body: dict, calls: int) -> tuple[int, list]:
    """A fake judge: QFAIL never gives a rating, QECHO echoes the example first (the last
    [[N]] is the rating), QGOOD gets 8 on turn 1 and 6 on turn 2."""
    user = body["messages"][-1]["content"]
    second = any(q["turns"][1] in user for q in QUESTIONS)
    if "QFAIL" in user:
        text = "I cannot decide."
    elif "QECHO" in user:
        text = 'The format is "[[5]]".\nRating: [[3]]' if not second else "[[4]]"
    else:
        text = "Rating: [[6]]" if second else "Rating: [[8]]"
    return 200, [choice(0, text)]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@pytest.fixture
def files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    return {
        "questions": write_jsonl(data / "question.jsonl", QUESTIONS),
        "references": write_jsonl(data / "reference.jsonl", REFERENCES),
        "judge_prompts": write_jsonl(data / "judge_prompts.jsonl", PROMPTS),
    }


@pytest.fixture
def judge_server():
    server = Server(judge_reply)
    yield server
    server.close()


@pytest.fixture
def tiny(tmp_path):
    pytest.importorskip("torch")
    from train_fixtures import tiny_model

    return tiny_model(tmp_path / "model")


def _run(files, out, server, *, model=None, answers=None, **kwargs):
    judge = run.Endpoint("judge-x", "openai", server.url, concurrency=4, retries=0)
    return run.run_mt_bench(
        files["questions"],
        out,
        judge=judge,
        judge_prompts=files["judge_prompts"],
        references=files["references"],
        model=run.Endpoint(model, "hf") if model else None,
        answers=answers,
        max_new_tokens=6,
        progress=False,
        cache_dir=kwargs.pop("cache_dir", Path(out).parent / "cache"),
        **kwargs,
    )


def _recording(monkeypatch) -> list:
    """Records (conversation, temperature) of every conversation the hf backend answers."""
    from plamo_fast.generation.backends import HFBackend

    seen, original = [], HFBackend._generate

    def record(self, conversations, options, keys):
        seen.extend((c, options.temperature) for c in conversations)
        return original(self, conversations, options, keys)

    monkeypatch.setattr(HFBackend, "_generate", record)
    return seen


def test_end_to_end_two_turns(tmp_path, files, judge_server, tiny, monkeypatch):
    seen = _recording(monkeypatch)
    out = tmp_path / "out"
    summary = _run(files, out, judge_server, model=str(tiny))
    assert summary["answers_generated"] == 6 and summary["judgements"] == 6

    # Answers: FastChat's model_answer format, two turns; turn 2 saw the model's own turn 1.
    answers = mt.read_answers(out / "model_answer" / "model.jsonl")
    assert set(answers) == {1, 2, 3} and all(len(a.turns) == 2 for a in answers.values())
    second = [c for c, _ in seen if len(c) == 3]
    assert len(second) == 3
    for conversation in second:
        q = next(q for q in QUESTIONS if q["turns"][0] == conversation[0]["content"])
        assert conversation[1] == {
            "role": "assistant",
            "content": answers[q["question_id"]].turns[0],
        }
        assert conversation[2] == {"role": "user", "content": q["turns"][1]}
    temperatures = {c[0]["content"]: t for c, t in seen if len(c) == 1}
    assert temperatures == {"Write a haiku. QGOOD": 0.7, "What is 2+3? QECHO": 0.0,
                            "Who is taller? QFAIL": 0.0}  # fmt: skip

    # The judge received exactly the prompt files filled in, FastChat's way; QFAIL re-asked.
    questions = mt.read_questions(files["questions"])
    prompts = fc.single_prompts(fc.load_judge_prompts(files["judge_prompts"]), 2, "p")
    expected = mt.judge_requests(
        questions, answers, mt.read_answers(files["references"]), prompts, 2
    )
    sent = [c["messages"] for c in judge_server.calls]
    assert all(r.messages() in sent for r in expected)
    assert len(sent) == 6 + 2 * 2  # the two QFAIL turns asked three times each
    assert sorted(c["temperature"] for c in judge_server.calls) == [0] * 6 + [0.7] * 4
    assert {"role": "system", "content": PROMPTS[0]["system_prompt"]} in [m[0] for m in sent]

    # Judgements in FastChat's format: the last [[N]] is the rating, failures are -1.
    judgments = (out / "model_judgment" / "judge-x_single.jsonl").read_text()
    rows = [json.loads(line) for line in judgments.splitlines()]
    scores = {(r["question_id"], r["turn"]): r["score"] for r in rows}
    assert scores == {(1, 1): 8, (1, 2): 6, (2, 1): 3, (2, 2): 4, (3, 1): -1, (3, 2): -1}
    assert all(r["judge"][0] == "judge-x" for r in rows)

    results = json.loads((out / "results.json").read_text())
    assert results["benchmark"] == "mt-bench"
    assert results["average"] == pytest.approx((8 + 6 + 3 + 4) / 4)
    assert results["turn_1"] == pytest.approx(5.5) and results["turn_2"] == pytest.approx(5.0)
    assert results["categories"] == {"writing": 7.0, "reasoning": None, "math": 3.5}
    assert results["failed"] == 2
    assert results["table"]["categories"]["reasoning"]["failed"] == 2
    assert results["table"]["categories"]["writing"]["answer_chars"] == pytest.approx(
        sum(len(t) for t in answers[1].turns) / 2
    )
    assert len(results["interval_95"]) == 2
    assert set(results["files"]) == {"questions", "judge_prompts", "references"}
    assert results["model_fingerprint"]["kind"] == "files"
    markdown = (out / "results.md").read_text()
    assert "| model | writing | reasoning | math | average |" in markdown
    assert "failed judgements: 2 of 6" in markdown
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"

    # A rerun with the same settings answers and judges nothing, and writes the same table.
    calls = len(judge_server.calls)
    again = _run(files, tmp_path / "out2", judge_server, model=str(tiny))
    assert again["answers_generated"] == 0 and again["judgements_asked"] == 0
    assert len(judge_server.calls) == calls
    assert json.loads((tmp_path / "out2" / "results.json").read_text())["table"] == results["table"]


def test_killed_during_judging_resumes_and_a_changed_model_regenerates(
    tmp_path, files, judge_server, tiny
):
    out = tmp_path / "out"
    first = _run(files, out, judge_server, model=str(tiny), stop_after_judgments=3)
    assert first == {"finished": False, "judged": 3, "generated": 6} and not out.exists()
    asked_before = [json.dumps(c["messages"]) for c in judge_server.calls]
    summary = _run(files, out, judge_server, model=str(tiny))
    assert summary["answers_generated"] == 0 and summary["judgements_asked"] == 3
    asked_after = [json.dumps(c["messages"]) for c in judge_server.calls[len(asked_before) :]]
    assert not set(asked_after) & set(asked_before)  # nothing judged before was asked again

    from train_fixtures import tiny_model

    tiny_model(tiny, seed=1)  # other weights in the same folder
    changed = _run(files, tmp_path / "out2", judge_server, model=str(tiny))
    assert changed["answers_generated"] == 6


def test_japanese_prompts_without_multi_turn_use_our_own(tmp_path, judge_server):
    """--answers judges existing answers; a Japanese prompt file with only the turn-1 prompts
    gets plamo-fast's Japanese multi-turn prompts, and the results say so."""
    data = tmp_path / "data"
    data.mkdir()
    ja_prompts = [dict(p, prompt_template=p["prompt_template"].replace("Rate", "評価"))
                  for p in PROMPTS[:2]]  # fmt: skip
    files = {
        "questions": write_jsonl(data / "q.jsonl", QUESTIONS[:1]),
        "references": None,
        "judge_prompts": write_jsonl(data / "p.jsonl", ja_prompts),
    }
    answers = write_jsonl(
        data / "a.jsonl",
        [{"question_id": 1, "answer_id": "x", "model_id": "m1",
          "choices": [{"index": 0, "turns": ["一つ目", "二つ目"]}], "tstamp": 0}],
    )  # fmt: skip
    out = tmp_path / "out"
    _run(files, out, judge_server, answers=answers)
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "m1" and results["turn_2"] == 6.0
    assert results["settings"]["judge_prompts"]["single-v1-multi-turn"] == "plamo-fast"
    assert any("--turns 1" in note for note in results["notes"])
    # The two turns are judged concurrently: the turn-2 judgement is the one that sees "二つ目".
    asked = [c["messages"] for c in judge_server.calls]
    (turn_2,) = [m for m in asked if "二つ目" in m[-1]["content"]]
    assert turn_2[-1]["content"] == fc.fill(
        fc.JA_MULTI_TURN["single-v1-multi-turn"],
        question_1=QUESTIONS[0]["turns"][0], answer_1="一つ目",
        question_2=QUESTIONS[0]["turns"][1], answer_2="二つ目",
    )  # fmt: skip
    # --turns 1 judges turn 1 only, with the file's prompts
    _run(files, tmp_path / "out1", judge_server, answers=answers, turns=1)
    one = json.loads((tmp_path / "out1" / "results.json").read_text())
    assert one["turn_2"] is None and one["notes"] == [] or "matplotlib" in one["notes"][0]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_reference", r"question\.jsonl:2: question 2 \(math\) .*--references"),
        ("missing_answer", r"question\.jsonl:2: question 2 has no answer in .*a\.jsonl"),
        ("one_turn_answer", r"a\.jsonl:1: answer to question 1 has 1 turn\(s\), 2 needed"),
        ("bad_json", r"question\.jsonl:2: malformed JSON"),
        ("bad_prompt", r"judge_prompts\.jsonl:1: prompt 'single-v1': lacks \{answer\}"),
    ],
)
def test_bad_inputs_are_refused_before_any_request(tmp_path, files, judge_server, case, message):
    answers = [{"question_id": q["question_id"], "answer_id": "a", "model_id": "m",
                "choices": [{"index": 0, "turns": ["x", "y"]}], "tstamp": 0}
               for q in QUESTIONS]  # fmt: skip
    if case == "no_reference":
        files = dict(files, references=None)
    elif case == "missing_answer":
        answers = [answers[0], answers[2]]
    elif case == "one_turn_answer":
        answers[0]["choices"][0]["turns"] = ["x"]
    elif case == "bad_json":
        lines = files["questions"].read_text().splitlines()
        files["questions"].write_text(lines[0] + "\n{oops\n" + lines[2] + "\n")
    elif case == "bad_prompt":
        bad = [dict(PROMPTS[0], prompt_template="{question} only"), *PROMPTS[1:]]
        write_jsonl(files["judge_prompts"], bad)
    path = write_jsonl(tmp_path / "a.jsonl", answers)
    with pytest.raises(PlamoFastError, match=message):
        _run(files, tmp_path / "out", judge_server, answers=path)
    assert judge_server.calls == [] and not (tmp_path / "out").exists()


def test_a_judge_that_stays_down_fails_saying_how_far_it_got(tmp_path, files, tiny):
    down = Server(lambda body, calls: (503, []))
    try:
        with pytest.raises(PlamoFastError, match=r"judging stopped after 0 of 6 .*503.*reused"):
            _run(files, tmp_path / "out", down, model=str(tiny))
    finally:
        down.close()
    up = Server(judge_reply)
    try:
        summary = _run(files, tmp_path / "out", up, model=str(tiny))
    finally:
        up.close()
    assert summary["answers_generated"] == 0 and summary["judgements_asked"] == 6


def test_judgments_only_aggregates(tmp_path, files):
    rows = [{"question_id": q, "model": m, "judge": ["j", "single-v1"], "user_prompt": "",
             "judgment": "", "score": s, "turn": t, "tstamp": 0}
            for m, base in (("a", 3), ("b", 5)) for q in (1, 2, 3) for t in (1, 2)
            for s in [-1 if (q, t) == (3, 2) else base + q - t]]  # fmt: skip
    path = write_jsonl(tmp_path / "j.jsonl", rows)
    out = tmp_path / "out"
    summary = run.aggregate_judgments(path, out, questions=files["questions"])
    a = summary["models"]["a"]
    assert a["turn_1"] == pytest.approx((3 + 4 + 5) / 3)
    assert a["turn_2"] == pytest.approx((2 + 3) / 2)
    assert a["average"] == pytest.approx((3 + 4 + 5 + 2 + 3) / 5)
    assert a["categories"] == {"writing": 2.5, "reasoning": 5.0, "math": 3.5}
    table = json.loads((out / "results.json").read_text())["tables"]["a"]
    assert table["failed"] == 1 and table["categories"]["reasoning"]["failed"] == 1
    assert re.search(r"\| b \| .* \| 1 \|", (out / "results.md").read_text())


def test_concurrent_judging_keeps_requests_in_flight(tmp_path, files):
    """With --concurrency 4 the judge sees up to 4 requests at once."""
    active, peak, lock = [0], [0], threading.Lock()

    def slow(body, calls):
        import time

        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return judge_reply(body, calls)

    server = Server(slow)
    answers = [{"question_id": q["question_id"], "answer_id": "a", "model_id": "m",
                "choices": [{"index": 0, "turns": ["x", "y"]}], "tstamp": 0}
               for q in QUESTIONS]  # fmt: skip
    try:
        _run(files, tmp_path / "out", server, answers=write_jsonl(tmp_path / "a.jsonl", answers))
    finally:
        server.close()
    assert peak[0] == 4


@pytest.mark.peer
def test_end_to_end_equals_fastchat(tmp_path, files, judge_server, tiny):
    """On the files a run wrote: FastChat's run_judge_single builds the prompts the judge
    received, and FastChat's show_result gives the table of results.json."""
    from test_eval_mt_bench_fastchat import run_peer

    out = tmp_path / "out"
    _run(files, out, judge_server, model=str(tiny))
    judgments = out / "model_judgment" / "judge-x_single.jsonl"
    rows = [json.loads(x) for x in judgments.read_text().splitlines()]
    spec = {
        "questions": str(files["questions"]),
        "answers": str(out / "model_answer" / "model.jsonl"),
        "references": str(files["references"]),
        "judge_prompts": str(files["judge_prompts"]),
        "matches": [{"question_id": r["question_id"], "prompt": r["judge"][1],
                     "multi_turn": r["turn"] == 2} for r in rows],
    }  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    theirs = run_peer("prompts", str(tmp_path / "spec.json"))
    sent = [c["messages"] for c in judge_server.calls]
    for row, their in zip(rows, theirs, strict=True):
        assert their["user_prompt"] == row["user_prompt"]
        assert their["messages"] in sent
    table = run_peer("show_result", str(judgments))
    results = json.loads((out / "results.json").read_text())
    for key in ("turn_1", "turn_2", "average"):
        assert results[key] == pytest.approx(table[key]["model"], rel=1e-12, abs=0)


def test_cli_judges_answers_and_aggregates_judgments(tmp_path, files, judge_server, capsys):
    from plamo_fast.cli import main

    answers = [{"question_id": q["question_id"], "answer_id": "a", "model_id": "m",
                "choices": [{"index": 0, "turns": ["x", "y"]}], "tstamp": 0}
               for q in QUESTIONS]  # fmt: skip
    path = write_jsonl(tmp_path / "a.jsonl", answers)
    common = ["--questions", str(files["questions"])]
    code = main(["eval", "mt-bench", *common, "--answers", str(path), "--judge", "judge-x",
                 "--judge-backend", "openai", "--judge-base-url", judge_server.url,
                 "--judge-prompts", str(files["judge_prompts"]), "--references",
                 str(files["references"]), "-o", str(tmp_path / "out"), "-q"])  # fmt: skip
    assert code == 0
    judged = tmp_path / "out" / "model_judgment" / "judge-x_single.jsonl"
    code = main(["eval", "mt-bench", *common, "--judgments", str(judged), "-o",
                 str(tmp_path / "agg")])  # fmt: skip
    assert code == 0
    ran = json.loads((tmp_path / "out" / "results.json").read_text())
    agg = json.loads((tmp_path / "agg" / "results.json").read_text())["models"]["m"]
    assert agg["average"] == ran["average"] and agg["categories"] == ran["categories"]
    # a missing option is a usage error naming it, before anything is read
    code = main(["eval", "mt-bench", *common, "--answers", str(path), "-o", str(tmp_path / "x")])
    assert code == 1 and "--judge, --judge-prompts" in capsys.readouterr().err


def test_a_process_killed_during_judging_resumes_without_re_asking(tmp_path, files):
    """A real kill (SIGKILL of the command while the judge answers slowly): what was judged is
    in the cache and the rerun asks only for the rest."""
    import os
    import subprocess
    import sys
    import time

    answered = threading.Event()

    def slow(body, calls):
        time.sleep(0.3)
        if calls >= 3:
            answered.set()
        return 200, [choice(0, "Rating: [[7]]")]

    server = Server(slow)
    answers = [{"question_id": q["question_id"], "answer_id": "a", "model_id": "m",
                "choices": [{"index": 0, "turns": ["x", "y"]}], "tstamp": 0}
               for q in QUESTIONS]  # fmt: skip
    path = write_jsonl(tmp_path / "a.jsonl", answers)
    cache = tmp_path / "cache"
    args = ["eval", "mt-bench", "--questions", str(files["questions"]), "--answers", str(path),
            "--judge", "judge-x", "--judge-backend", "openai", "--judge-base-url", server.url,
            "--judge-prompts", str(files["judge_prompts"]), "--references",
            str(files["references"]), "--concurrency", "1", "--cache", str(cache),
            "-q"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "plamo_fast.cli", *args, "-o", str(tmp_path / "out")], env=env
        )
        assert answered.wait(120)
        time.sleep(0.1)  # the fourth request is in flight
        proc.kill()
        proc.wait()
        cached = len((cache / "answers.jsonl").read_text().splitlines())
        assert 3 <= cached < 6 and not (tmp_path / "out").exists()
        before = len(server.calls)
        summary = _run(files, tmp_path / "out", server, answers=path, cache_dir=cache)
    finally:
        server.close()
    assert summary["judgements_asked"] == 6 - cached == len(server.calls) - before
