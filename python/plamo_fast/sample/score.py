"""``plamo-fast score``: a score per candidate from an LLM judge (single-answer grading 1-10,
MT-Bench style), a reward model, or the math verifier; and pairwise judging of two models'
answers in both orders.

The judge runs through any generation backend (:mod:`plamo_fast.generation.backends`): candidates
are sent a batch at a time (``Backend.batch_size``), so a vLLM engine gets large batches and a
server ``--concurrency`` requests in flight. The output is written through
:func:`plamo_fast.outputs.atomic_output`: it never replaces an input.

Every record is written with its candidates; a candidate that cannot be scored gets ``score``
null and is counted by reason (``unscored``): no reference answer in the record or one that is
not a number (the math verifier), a judgement without a rating. A run that scores no candidate
fails and writes nothing unless ``allow_empty``; more than 10% unscored gets a warning line
(:func:`plamo_fast.data.accounting.check_kept`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.data.accounting import check_kept
from plamo_fast.errors import UsageError
from plamo_fast.generation.backends import check_backend, load_backend
from plamo_fast.judge.judge import Judge, combine_orders, question_text
from plamo_fast.model_paths import require_transformers, resolve_model
from plamo_fast.outputs import atomic_output
from plamo_fast.sample.records import BadRecordError, prompt_messages, read_jsonl

REFERENCE_FIELDS = ("reference", "answer", "reference_answer", "solution", "ground_truth")
SCORE_BATCH = 64  # candidates per write for the reward model and the verifier


class RewardModel:
    """A sequence-classification model with one output, from a folder checked by
    :meth:`locate`."""

    @staticmethod
    def locate(name: str) -> str:
        """The reward model's folder, checked at once (packages, folder); see
        :func:`~plamo_fast.model_paths.resolve_model`."""
        require_transformers("--reward-model")
        return resolve_model(name)

    def __init__(self, path: str):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        if self.model.config.num_labels != 1:
            raise UsageError(
                f"{path}: a reward model has one output (num_labels={self.model.config.num_labels})"
            )

    def score(self, messages: list[dict], answer: str) -> float:
        conversation = [*messages, {"role": "assistant", "content": answer}]
        ids = self.tokenizer.apply_chat_template(
            conversation, return_tensors="pt", return_dict=True
        )
        with self.torch.no_grad():
            return float(self.model(**ids).logits[0, 0])


def _read_candidates(path: Path) -> list[tuple[int, dict, list, str | None]]:
    """``(line, record, prompt messages, reference or None)`` per record, every record checked
    before anything is scored."""
    rows = []
    for number, record in read_jsonl(path):
        if not isinstance(record.get("candidates"), list):
            raise UsageError(f"{path}:{number}: no 'candidates' (run sample first)")
        try:
            messages = record.get("prompt_messages") or prompt_messages(record)
        except BadRecordError as exc:
            raise BadRecordError(f"{path}:{number}: {exc}") from None
        reference = next(
            (str(record[f]) for f in REFERENCE_FIELDS if record.get(f) is not None), None
        )
        rows.append((number, record, messages, reference))
    return rows


def _batches(rows: list, size: int) -> Iterator[list]:
    """Consecutive records holding at least ``size`` candidates together (or the rest)."""
    batch, count = [], 0
    for row in rows:
        batch.append(row)
        count += len(row[1]["candidates"])
        if count >= size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def _judge_batch(rater: Judge, batch: list) -> int:
    """Rates every candidate of the batch; returns how many needed a retry."""
    requests, targets = [], []
    for number, record, messages, reference in batch:
        question = question_text(messages)
        for k, c in enumerate(record["candidates"]):
            requests.append((number * 1_000_003 + k, question, c["text"], reference))
            targets.append(c)
    retried = 0
    for c, (value, text, attempt) in zip(targets, rater.rate(requests), strict=True):
        c["judgement"], c["score"] = text, value
        retried += attempt > 0
    return retried


def score(
    candidates_path: Path,
    output: Path,
    *,
    judge: str | None = None,
    reward_model: str | None = None,
    verifier: str | None = None,
    backend: str = "auto",
    base_url: str | None = None,
    api_key: str | None = None,
    judge_template: str | None = None,
    retries: int = 2,
    concurrency: int = 8,
    overwrite: bool = False,
    progress: bool = True,
    allow_empty: bool = False,
) -> dict:
    chosen = [x for x in (judge, reward_model, verifier) if x]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --judge, --reward-model or --verifier")
    if verifier is not None and verifier != "math":
        raise UsageError("--verifier supports: math")
    # A missing package or model fails here, at once, before the output is started.
    if judge:
        check_backend(backend, judge, base_url)
    reward_folder = RewardModel.locate(reward_model) if reward_model else None
    unscored: Counter = Counter()
    retried = done = 0
    with (
        atomic_output(
            output,
            command="score",
            inputs=[candidates_path],
            overwrite=overwrite,
            folder=False,
        ) as partial,
        open(partial, "w", encoding="utf-8") as out,
    ):
        rows = _read_candidates(Path(candidates_path))
        total = sum(len(row[1]["candidates"]) for row in rows)
        rater: Judge | RewardModel | None = None
        size = SCORE_BATCH
        engine = None
        if judge:
            engine = load_backend(
                backend, judge, base_url=base_url, api_key=api_key, concurrency=concurrency
            )
            scorer = {"kind": "judge", "model": judge, "units": "rating 1-10"}
            rater, size = Judge(engine, judge_template, retries), engine.batch_size
        elif reward_folder:
            scorer = {"kind": "reward_model", "model": reward_model, "units": "reward logit"}
            rater = RewardModel(reward_folder)
        else:
            scorer = {"kind": "verifier", "model": "math", "units": "1 correct, 0 wrong"}
        update, stop = progress_bar("score", total, transfer=False, show=progress)
        try:
            for batch in _batches(rows, size):
                if isinstance(rater, Judge):
                    retried += _judge_batch(rater, batch)
                for _, record, messages, reference in batch:
                    for c in record["candidates"]:
                        if isinstance(rater, RewardModel):
                            c["score"] = rater.score(messages, c["text"])
                        elif verifier:
                            c["score"], reason = _verify(c["text"], reference)
                            if reason is not None:
                                unscored[reason] += 1
                        elif c["score"] is None:  # the judge's rating, re-asked, not parsed
                            unscored["judge_gave_no_rating"] += 1
                        done += 1
                    record["scorer"] = scorer
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                update(done, engine.progress_note() if engine is not None else "")
        finally:
            stop()
        hint = (
            f"the math verifier compares with the record's reference answer "
            f"({', '.join(REFERENCE_FIELDS)}), and none has one"
            if unscored["no_reference_answer"] == total > 0
            else None
        )
        missing = sum(unscored.values())
        check_kept("score", total, total - missing, unscored, allow_empty, hint=hint,
                   unit="candidates")  # fmt: skip
    return {
        "prompts": len(rows),
        "candidates": total,
        "missing_scores": missing,
        "unscored": dict(sorted(unscored.items())),
        "judge_retries": retried,
        "scorer": scorer,
    }


def _verify(text: str, reference: str | None) -> tuple[float | None, str | None]:
    """The math verifier's score of a candidate (1.0 or 0.0), or None and the reason."""
    from plamo_fast.sample.verify_math import verify

    if reference is None:
        return None, "no_reference_answer"
    ok = verify(text, reference)
    if ok is None:
        return None, "reference_not_a_number"
    return float(ok), None


def _first_answers(path: Path) -> dict:
    """``{prompt index: (question, first candidate's text)}`` of a sample output."""
    answers = {}
    for number, record, messages, _ in _read_candidates(path):
        if not record["candidates"]:
            raise UsageError(f"{path}:{number}: no candidate to compare")
        key = record.get("prompt_index", number)
        answers[key] = (question_text(messages), record["candidates"][0]["text"])
    return answers


def pairwise(
    a_path: Path,
    b_path: Path,
    output: Path,
    *,
    judge: str,
    backend: str = "auto",
    base_url: str | None = None,
    api_key: str | None = None,
    judge_template: str | None = None,
    retries: int = 2,
    concurrency: int = 8,
    overwrite: bool = False,
    progress: bool = True,
    allow_empty: bool = False,
) -> dict:
    """Judge A's and B's first candidates for each prompt in both orders (A first, then B
    first) to cancel position bias. A prompt is a win for A when A wins both orders, or one
    order with a tie in the other; a split verdict is a tie. No verdict at all (every judgement
    unparsed) fails unless ``allow_empty``."""
    check_backend(backend, judge, base_url)  # at once, before the output is started
    outcome: Counter = Counter()
    by_order: Counter = Counter()
    with (
        atomic_output(
            output,
            command="score",
            inputs=[a_path, b_path],
            overwrite=overwrite,
            folder=False,
        ) as partial,
        open(partial, "w", encoding="utf-8") as out,
    ):
        a, b = _first_answers(Path(a_path)), _first_answers(Path(b_path))
        keys = [k for k in a if k in b]
        if not keys:
            raise UsageError(f"{a_path} and {b_path} share no prompt index")
        engine = load_backend(
            backend, judge, base_url=base_url, api_key=api_key, concurrency=concurrency
        )
        rater = Judge(engine, judge_template, retries)
        size = max(1, engine.batch_size // 2)  # two orders per prompt
        update, stop = progress_bar("judge pairs", len(keys), transfer=False, show=progress)
        try:
            for start in range(0, len(keys), size):
                chunk = keys[start : start + size]
                requests = []
                for n, key in enumerate(chunk, start=start + 1):
                    (question, answer_a), (_, answer_b) = a[key], b[key]
                    requests.append((2 * n, question, answer_a, answer_b))
                    requests.append((2 * n + 1, question, answer_b, answer_a))
                verdicts = rater.compare(requests)
                for j, key in enumerate(chunk):
                    first = verdicts[2 * j][0]
                    second = {"A": "B", "B": "A"}.get(
                        verdicts[2 * j + 1][0], verdicts[2 * j + 1][0]
                    )
                    by_order[f"a_first:{first}"] += 1
                    by_order[f"b_first:{second}"] += 1
                    verdict = combine_orders(first, second)
                    outcome[verdict] += 1
                    row = {"prompt_index": key, "a_first": first, "b_first": second,
                           "verdict": verdict}  # fmt: skip
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                update(start + len(chunk), engine.progress_note())
        finally:
            stop()
        unjudged = {"judge_gave_no_verdict": outcome["missing"]}
        check_kept("score", len(keys), len(keys) - outcome["missing"], unjudged, allow_empty,
                   unit="prompts")  # fmt: skip
    return {
        "prompts": len(keys),
        "a_wins": outcome["A"],
        "b_wins": outcome["B"],
        "ties": outcome["tie"],
        "unjudged": outcome["missing"],
        "only_in_a": len(a) - len(keys),
        "only_in_b": len(b) - len(keys),
        "by_order": dict(by_order),
    }
