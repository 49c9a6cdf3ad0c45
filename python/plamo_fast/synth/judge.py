"""``plamo-fast synth judge``: grading exercises for training a small judge from a verifier.

Every input record with a known final answer (``synth math``'s records: a user question, the
worked solution as the last assistant turn, and ``answer``) becomes one judge conversation: the
judge prompt of a FastChat prompt file (``single-math-v1``: question, reference answer, answer),
filled and framed exactly as ``plamo-fast eval mt-bench`` asks its judge
(:func:`plamo_fast.judge.fastchat.fill` / :func:`~plamo_fast.judge.fastchat.messages`), and the
judge's reply ``Rating: [[R]]``. With probability ``--wrong`` the solution's final answer is
replaced by a near miss (one more or less, a digit changed) everywhere it stands as a number, and
the rating is the low one; otherwise the solution is the verified one and the rating the high
one. The labels come from the generator's own answer, so the judge learns from a verifier, not
from another model.

The choice of wrong answers is seeded per record (``--seed`` and the record's id), so the same
input gives the same file. A record without a question, a solution or an answer that the
solution states is refused naming FILE:LINE, or counted with ``--skip-bad``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from random import Random

from plamo_fast.data.conversation import BadRecordError
from plamo_fast.errors import UsageError

PROMPT_NAME = "single-math-v1"
COMMAND = "synth judge"


@dataclass
class JudgeReport:
    read: int = 0
    written: int = 0
    right: int = 0
    wrong: int = 0
    skipped: Counter = field(default_factory=Counter)

    def to_json(self) -> dict:
        return {**asdict(self), "skipped": dict(self.skipped)}


def _number_pattern(answer: str) -> re.Pattern:
    """``answer`` where it stands as a whole number (not inside a longer one)."""
    return re.compile(r"(?<![\d.])" + re.escape(answer) + r"(?![\d]|\.\d)")


def near_miss(answer: str, rng: Random) -> str:
    """A wrong answer close to ``answer`` (an integer or decimal string): one more or less,
    or one digit changed; never ``answer`` itself."""
    if not re.fullmatch(r"-?\d+(\.\d+)?", answer):
        raise BadRecordError(f"answer {answer!r} is not a number")
    digits = [i for i, ch in enumerate(answer) if ch.isdigit()]
    while True:
        if rng.random() < 0.5:
            i = rng.choice(digits)
            wrong = answer[:i] + str((int(answer[i]) + rng.randint(1, 9)) % 10) + answer[i + 1 :]
            if len(wrong) > 1 and wrong[0] == "0" and "." not in wrong[:2]:
                continue  # a leading zero is no plausible answer
        else:  # one more or less in the last place
            last_place = Decimal(1).scaleb(-len(answer.partition(".")[2]))
            wrong = str(Decimal(answer) + rng.choice((-1, 1)) * last_place)
        if wrong != answer:
            return wrong


def verdict(given: str, reference: str, ratings: tuple[int, int]) -> str:
    """The judge's reply: the two final answers side by side, whether they agree, the rating
    (a short explanation first, as judge prompts ask for, which also puts the two numbers next
    to each other for a small model)."""
    same = given == reference
    return (
        f"The answer gives {given}; the reference is {reference}. "
        f"{'Same' if same else 'Different'}. Rating: [[{ratings[0] if same else ratings[1]}]]"
    )


def exercise(record: dict, prompt, rng: Random, wrong_share: float, ratings: tuple[int, int]):
    """``(messages, is_right)``: one grading conversation made from ``record``."""
    from plamo_fast.judge.fastchat import fill, messages

    turns = record.get("messages")
    if not isinstance(turns, list) or len(turns) < 2:
        raise BadRecordError("no messages with a question and a solution")
    question, solution = turns[0].get("content"), turns[-1].get("content")
    answer = record.get("answer")
    if (
        not isinstance(question, str)
        or not isinstance(solution, str)
        or turns[-1].get("role") != "assistant"
    ):
        raise BadRecordError("the first turn must be the question, the last the solution")
    if not isinstance(answer, str) or not answer:
        raise BadRecordError("no `answer` field")
    pattern = _number_pattern(answer)
    if not pattern.search(solution):
        raise BadRecordError(f"the solution never states the answer {answer!r}")
    is_right = rng.random() >= wrong_share
    given = answer if is_right else near_miss(answer, rng)
    solution = pattern.sub(given, solution)
    user = fill(prompt, question=question, ref_answer_1=answer, answer=solution)
    reply = {"role": "assistant", "content": verdict(given, answer, ratings)}
    return [*messages(prompt, user), reply], is_right


def synth_judge(
    inputs: list[Path],
    out: Path,
    judge_prompts: Path,
    *,
    wrong: float = 0.5,
    seed: int = 0,
    limit: int | None = None,
    ratings: tuple[int, int] = (10, 1),
    skip_bad: bool = False,
    allow_empty: bool = False,
    overwrite: bool = False,
) -> dict:
    """Writes the grading exercises of ``inputs`` to ``out`` (JSONL); returns the report. A run
    that writes none fails (nothing is written) unless ``allow_empty``."""
    from plamo_fast.data.accounting import check_kept
    from plamo_fast.data.curation_io import check_input, iter_input, where
    from plamo_fast.judge.fastchat import load_judge_prompts
    from plamo_fast.outputs import atomic_output, check_output

    if not 0.0 <= wrong <= 1.0:
        raise UsageError(f"--wrong is a share between 0 and 1, not {wrong}")
    if limit is not None and limit < 1:
        raise UsageError("-n must be at least 1")
    inputs = [check_input(Path(p)) for p in inputs]
    prompts = load_judge_prompts(judge_prompts)
    if PROMPT_NAME not in prompts or not prompts[PROMPT_NAME].ref_based:
        raise UsageError(f"{judge_prompts}: needs a reference-guided {PROMPT_NAME!r} prompt")
    prompt = prompts[PROMPT_NAME]
    sources = [*inputs, Path(judge_prompts)]
    check_output(out, command=COMMAND, inputs=sources, overwrite=overwrite, folder=False)
    report = JudgeReport()
    with (
        atomic_output(
            out, command=COMMAND, inputs=sources, overwrite=overwrite, folder=False
        ) as tmp,
        open(tmp, "w", encoding="utf-8") as f,
    ):
        for path in inputs:
            for row in iter_input(path):
                if limit is not None and report.written >= limit:
                    break
                report.read += 1
                try:
                    f.write(_exercise_line(row, path, prompt, seed, wrong, ratings, report))
                except BadRecordError as exc:
                    if not skip_bad:
                        raise BadRecordError(f"{where(path, row)}: {exc}") from None
                    report.skipped["bad_record"] += 1
        check_kept(COMMAND, report.read, report.written, report.skipped, allow_empty=allow_empty)
    return report.to_json()


def _exercise_line(row, path, prompt, seed, wrong, ratings, report: JudgeReport) -> str:
    """The JSON line of one input row's exercise (counted in ``report``); a row that cannot
    make one raises :class:`BadRecordError`."""
    if row.record is None:
        raise BadRecordError(row.error or "no record")
    record = row.record
    rng = Random(f"{seed}:{record.get('id', row.number)}")
    messages, is_right = exercise(record, prompt, rng, wrong, ratings)
    report.written += 1
    report.right += is_right
    report.wrong += not is_right
    out = {"id": f"judge-{record.get('id', row.number)}", "messages": messages}
    out["judge_label"] = {"right": is_right, "source_id": record.get("id"), "file": str(path)}
    return json.dumps(out, ensure_ascii=False) + "\n"
