"""MT-Bench and Japanese MT-Bench (FastChat ``llm_judge`` and Stability AI's Japanese fork): the
files, the judge requests, and the aggregation of judgements.

Files (FastChat's formats, read and written as they are):

- questions: ``{"question_id", "category", "turns": [q1, q2]}`` per line;
- model answers (``model_answer/*.jsonl``): ``{"question_id", "answer_id", "model_id",
  "choices": [{"index": 0, "turns": [a1, a2]}], "tstamp"}``; reference answers have the same
  format (the reference-guided prompts take their ``choices[0].turns``);
- judgements (``model_judgment/*_single.jsonl``): ``{"question_id", "model", "judge": [judge
  model, prompt name], "user_prompt", "judgment", "score", "turn", "tstamp"}``; a failed judgement
  has score -1 (as in FastChat), is left out of the averages and counted as failed.

Question ids are compared as JSON values, as FastChat does: ``1`` and ``"1"`` are different ids
(the 2023 reference file has string ids, the current questions integer ones).

The aggregation is FastChat's ``show_result`` (``--mode single``): rows with score -1 dropped,
duplicate rows kept, the mean of turn 1, of turn 2, and of all rows of a model; plus the mean
per category, a bootstrap 95% interval of the overall mean (resampling questions), and failed
judgements per category.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.errors import UsageError
from plamo_fast.judge import fastchat as fc
from plamo_fast.sample.records import read_jsonl

CATEGORIES = (
    "writing",
    "roleplay",
    "reasoning",
    "math",
    "coding",
    "extraction",
    "stem",
    "humanities",
)
# FastChat's llm_judge/common.py temperature_config (the Japanese fork keeps the same table);
# a category not listed is answered at 0.7, and a temperature below 1e-4 is greedy.
TEMPERATURES = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
DEFAULT_TEMPERATURE = 0.7
BOOTSTRAP_SAMPLES = 1000


class BenchFileError(UsageError):
    """A question, answer, reference or judgement file that does not fit (names FILE:LINE)."""


@dataclass(frozen=True)
class Question:
    question_id: object  # int or str, as in the file
    category: str
    turns: list[str]
    where: str  # FILE:LINE


def _records(path: Path) -> Iterable[tuple[str, dict]]:
    for number, record in read_jsonl(Path(path)):
        where = f"{path}:{number}"
        if not isinstance(record, dict):
            raise BenchFileError(f"{where}: expected a JSON object")
        yield where, record


def _question_id(record: dict, where: str) -> object:
    qid = record.get("question_id")
    if isinstance(qid, bool) or not isinstance(qid, int | str):
        raise BenchFileError(f"{where}: question_id must be an integer or a string")
    return qid


def _texts(value, where: str, what: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise BenchFileError(f"{where}: {what} must be a non-empty list of strings")
    return value


def read_questions(path: str | Path) -> list[Question]:
    """The questions, each with a category and one or more turns; ids unique."""
    questions, seen = [], {}
    for where, record in _records(Path(path)):
        qid = _question_id(record, where)
        if qid in seen:
            raise BenchFileError(f"{where}: question_id {qid!r} also at {seen[qid]}")
        seen[qid] = where
        category = record.get("category")
        if not isinstance(category, str) or not category:
            raise BenchFileError(f"{where}: no category")
        turns = record.get("turns")
        if turns is None and isinstance(record.get("text"), str):  # Rakuda v1
            turns = [record["text"]]
        turns = _texts(turns, where, "turns")
        questions.append(Question(qid, category, turns, where))
    if not questions:
        raise BenchFileError(f"{path}: no questions in it")
    return questions


@dataclass(frozen=True)
class Answer:
    question_id: object
    model_id: str
    turns: list[str]  # choices[0].turns
    where: str


def read_answers(path: str | Path) -> dict[object, Answer]:
    """FastChat model answers (or reference answers) by question id. A repeated id keeps the
    last line, as FastChat's ``load_model_answers`` does."""
    answers = {}
    for where, record in _records(Path(path)):
        qid = _question_id(record, where)
        choices = record.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BenchFileError(f"{where}: choices must be a list of {{index, turns}}")
        turns = _texts(choices[0].get("turns"), where, "choices[0].turns")
        model = record.get("model_id")
        answers[qid] = Answer(qid, model if isinstance(model, str) else "", turns, where)
    if not answers:
        raise BenchFileError(f"{path}: no answers in it")
    return answers


def check_answers(
    questions: list[Question], answers: dict, path: str | Path, turns: int, what: str = "answer"
) -> None:
    """Every question has an answer with ``turns`` turns (refused before any request)."""
    for q in questions:
        answer = answers.get(q.question_id)
        if answer is None:
            other = str(q.question_id) if isinstance(q.question_id, int) else None
            hint = ""
            if other is not None and other in answers:
                hint = f" (it has the string id {other!r}: another revision of the questions?)"
            raise BenchFileError(
                f"{q.where}: question {q.question_id!r} has no {what} in {path}{hint}"
            )
        if len(answer.turns) < turns:
            raise BenchFileError(
                f"{answer.where}: {what} to question {q.question_id!r} has {len(answer.turns)} "
                f"turn(s), {turns} needed"
            )


@dataclass(frozen=True)
class JudgeRequest:
    question: Question
    turn: int  # 1 or 2
    prompt: fc.JudgePrompt
    user_prompt: str

    def messages(self) -> list[dict]:
        return fc.messages(self.prompt, self.user_prompt)


def judge_requests(
    questions: list[Question],
    answers: dict[object, Answer],
    references: dict[object, Answer] | None,
    prompts: dict[str, fc.JudgePrompt],
    turns: int,
) -> list[JudgeRequest]:
    """The single-grading requests of every question and turn, filled as FastChat's
    ``run_judge_single`` fills them (reference-guided prompts for math, reasoning, coding)."""
    requests = []
    for q in questions:
        answer = answers[q.question_id].turns
        ref_based = q.category in fc.NEED_REF_CATS
        ref = references[q.question_id].turns if ref_based and references else None
        for turn in range(1, turns + 1):
            name = ("single-math-v1" if ref_based else "single-v1") + (
                "-multi-turn" if turn == 2 else ""
            )
            prompt = prompts[name]
            values = {}
            if ref is not None:
                values["ref_answer_1"] = ref[0]
                if turn == 2:
                    values["ref_answer_2"] = ref[1]
            if turn == 1:
                values |= {"question": q.turns[0], "answer": answer[0]}
            else:
                values |= {
                    "question_1": q.turns[0],
                    "question_2": q.turns[1],
                    "answer_1": answer[0],
                    "answer_2": answer[1],
                }
            requests.append(JudgeRequest(q, turn, prompt, fc.fill(prompt, **values)))
    return requests


def check_references(
    questions: list[Question], references: dict | None, path: str | Path | None, turns: int
) -> None:
    needing = [q for q in questions if q.category in fc.NEED_REF_CATS]
    if needing and references is None:
        q = needing[0]
        raise BenchFileError(
            f"{q.where}: question {q.question_id!r} ({q.category}) is judged against a reference "
            "answer: pass --references FILE"
        )
    if needing:
        check_answers(needing, references, path, turns, what="reference answer")


# --- judgements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgment:
    question_id: object
    model: str
    turn: int
    score: float  # -1: failed
    where: str


def read_judgments(path: str | Path) -> list[Judgment]:
    """The rows of a FastChat single-grading judgement file."""
    rows = []
    for where, record in _records(Path(path)):
        qid = _question_id(record, where)
        model, turn, score = record.get("model"), record.get("turn"), record.get("score")
        if not isinstance(model, str) or not model:
            raise BenchFileError(f"{where}: no model (a single-grading judgement file?)")
        if turn not in (1, 2):
            raise BenchFileError(f"{where}: turn must be 1 or 2")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise BenchFileError(f"{where}: score must be a number (-1 for a failed judgement)")
        rows.append(Judgment(qid, model, turn, float(score), where))
    if not rows:
        raise BenchFileError(f"{path}: no judgements in it")
    return rows


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def bootstrap_interval(
    by_question: dict[object, list[float]], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of the mean of all scores, resampling questions (the turns of a
    question stay together) with a fixed seed."""
    groups = [v for v in by_question.values() if v]
    if len(groups) < 2:
        return None
    rng = random.Random(seed)
    means = []
    for _ in range(samples):
        picked = [groups[rng.randrange(len(groups))] for _ in groups]
        means.append(sum(map(sum, picked)) / sum(map(len, picked)))
    means.sort()
    return means[int(0.025 * samples)], means[min(samples - 1, int(0.975 * samples))]


def aggregate(
    rows: list[Judgment],
    questions: list[Question] | None = None,
    answers: dict[str, dict[object, Answer]] | None = None,
) -> dict:
    """Per model: turn 1, turn 2 and overall means as FastChat's ``show_result``, the 95%
    bootstrap interval, failed judgements, and with ``questions`` the same per category (and
    with ``answers``, ``{model: {id: answer}}``, the mean answer length in characters)."""
    category = {q.question_id: q.category for q in questions} if questions else {}
    if questions:
        for row in rows:
            if row.question_id not in category:
                raise BenchFileError(
                    f"{row.where}: question {row.question_id!r} is not in the questions file"
                )
    models: dict[str, list[Judgment]] = defaultdict(list)
    for row in rows:
        models[row.model].append(row)
    out = {}
    for model, mrows in models.items():
        valid = [r for r in mrows if r.score != -1]
        by_question: dict[object, list[float]] = defaultdict(list)
        for r in valid:
            by_question[r.question_id].append(r.score)
        entry = {
            "turn_1": _mean([r.score for r in valid if r.turn == 1]),
            "turn_2": _mean([r.score for r in valid if r.turn == 2]),
            "average": _mean([r.score for r in valid]),
            "interval_95": bootstrap_interval(by_question),
            "judgements": len(mrows),
            "failed": len(mrows) - len(valid),
        }
        if category:
            entry["categories"] = _by_category(mrows, category, (answers or {}).get(model))
        out[model] = entry
    return out


def _by_category(rows: list[Judgment], category: dict, answers: dict | None) -> dict:
    cats: dict[str, list[Judgment]] = defaultdict(list)
    for r in rows:
        cats[category[r.question_id]].append(r)
    table = {}
    for name in sorted(cats, key=lambda c: (CATEGORIES.index(c) if c in CATEGORIES else 99, c)):
        crows = cats[name]
        valid = [r for r in crows if r.score != -1]
        entry = {
            "turn_1": _mean([r.score for r in valid if r.turn == 1]),
            "turn_2": _mean([r.score for r in valid if r.turn == 2]),
            "average": _mean([r.score for r in valid]),
            "failed": len(crows) - len(valid),
        }
        if answers is not None:
            lengths = [
                len(answers[r.question_id].turns[r.turn - 1])
                for r in crows
                if r.question_id in answers and len(answers[r.question_id].turns) >= r.turn
            ]
            entry["answer_chars"] = _mean(lengths)
        table[name] = entry
    return table
