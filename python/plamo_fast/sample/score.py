"""``plamo-fast score``: a score per candidate from an LLM judge (single-answer grading 1-10,
MT-Bench style), a reward model, or the math verifier; and pairwise judging of two models'
answers in both orders."""

from __future__ import annotations

import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from plamo_fast._atomic import atomic_path
from plamo_fast._progress import progress_bar
from plamo_fast.errors import UsageError
from plamo_fast.sample.backends import SamplingOptions
from plamo_fast.sample.records import prompt_messages, read_jsonl

REFERENCE_FIELDS = ("reference", "answer", "reference_answer", "solution", "ground_truth")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
GREEDY = SamplingOptions(n=1, temperature=0.0, top_p=1.0, max_new_tokens=1024, seed=0)


def question_text(messages: list[dict]) -> str:
    """What the judge sees as the question: the last user turn, with earlier turns before it."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def pick_template(spec: str | None, question: str, pair: bool = False):
    from plamo_fast.sample import judge_prompts as jp

    if spec and spec not in ("en", "ja", "auto"):
        return jp.load_template(spec)
    japanese = spec == "ja" or (spec in (None, "auto") and JAPANESE.search(question))
    if pair:
        return jp.PAIR_JA if japanese else jp.PAIR_EN
    return jp.SINGLE_JA if japanese else jp.SINGLE_EN


class Judge:
    """Asks a judge model through a generation backend; an unparseable judgement is retried
    with sampling, then recorded as missing (never as 0)."""

    def __init__(self, engine, template: str | None, retries: int = 2):
        self.engine, self.template, self.retries = engine, template, retries

    def _ask(self, key: int, messages: list[dict], parse):
        attempts = []
        for attempt in range(self.retries + 1):
            opts = GREEDY if attempt == 0 else replace(GREEDY, temperature=0.7, seed=attempt)
            text = self.engine.generate(key * 17 + attempt, messages, opts)[0]["text"]
            attempts.append(text)
            value = parse(text)
            if value is not None:
                return value, text, attempt
        return None, attempts[-1], self.retries

    def rate(self, key: int, question: str, answer: str, reference: str | None):
        from plamo_fast.sample.judge_prompts import parse_rating, render_single

        t = pick_template(self.template, question)
        reference = reference if t.has_reference else None  # a template may not show one
        return self._ask(key, render_single(t, question, answer, reference), parse_rating)

    def compare(self, key: int, question: str, first: str, second: str):
        from plamo_fast.sample.judge_prompts import parse_verdict, render_pair

        t = pick_template(self.template, question, pair=True)
        return self._ask(key, render_pair(t, question, first, second), parse_verdict)


class RewardModel:
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
) -> dict:
    chosen = [x for x in (judge, reward_model, verifier) if x]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --judge, --reward-model or --verifier")
    records = [r for _, r in read_jsonl(Path(candidates_path))]
    if verifier is not None and verifier != "math":
        raise UsageError("--verifier supports: math")
    if judge:
        from plamo_fast.sample.sample import make_backend

        _, engine = make_backend(backend, judge, base_url=base_url, api_key=api_key)
        scorer = {"kind": "judge", "model": judge, "units": "rating 1-10"}
        rater = Judge(engine, judge_template, retries)
    elif reward_model:
        scorer = {"kind": "reward_model", "model": reward_model, "units": "reward logit"}
        rater = RewardModel(reward_model)
    else:
        scorer = {"kind": "verifier", "model": "math", "units": "1 correct, 0 wrong"}
        rater = None
    total = sum(len(r.get("candidates") or []) for r in records)
    update, stop = progress_bar("score", total, transfer=False, show=progress)
    missing = retried = done = 0
    workers = concurrency if judge and base_url else 1
    try:
        with (
            atomic_path(Path(output), overwrite=overwrite, folder=False) as partial,
            open(partial, "w", encoding="utf-8") as out,
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        ):
            for number, record in enumerate(records, start=1):
                messages = record.get("prompt_messages") or prompt_messages(record)
                if not isinstance(record.get("candidates"), list):
                    raise UsageError(
                        f"{candidates_path}:{number}: no 'candidates' (run sample first)"
                    )
                reference = next(
                    (str(record[f]) for f in REFERENCE_FIELDS if record.get(f) is not None), None
                )
                if verifier and reference is None:
                    raise UsageError(
                        f"{candidates_path}:{number}: the math verifier needs a reference answer "
                        f"({', '.join(REFERENCE_FIELDS)})"
                    )
                if judge:
                    # A record's candidates are judged concurrently (a server batches them).
                    question = question_text(messages)
                    keys = [number * 1_000_003 + k for k in range(len(record["candidates"]))]
                    answers = [c["text"] for c in record["candidates"]]
                    verdicts = list(
                        pool.map(rater.rate, keys, [question] * len(keys), answers,
                                 [reference] * len(keys))
                    )  # fmt: skip
                for k, c in enumerate(record["candidates"]):
                    if judge:
                        value, text, attempt = verdicts[k]
                        c["judgement"] = text
                        retried += attempt > 0
                    elif reward_model:
                        value = rater.score(messages, c["text"])
                    else:
                        from plamo_fast.sample.verify_math import verify

                        ok = verify(c["text"], reference)
                        value = None if ok is None else float(ok)
                    c["score"] = value
                    missing += value is None
                    done += 1
                    update(done)
                record["scorer"] = scorer
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        stop()
    return {
        "prompts": len(records),
        "candidates": total,
        "missing_scores": missing,
        "judge_retries": retried,
        "scorer": scorer,
    }


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
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Judge A's and B's first candidates for each prompt in both orders (A first, then B
    first) to cancel position bias. A prompt is a win for A when A wins both orders, or one
    order with a tie in the other; a split verdict is a tie."""
    from plamo_fast.sample.sample import make_backend

    a = {r.get("prompt_index", n): r for n, r in read_jsonl(Path(a_path))}
    b = {r.get("prompt_index", n): r for n, r in read_jsonl(Path(b_path))}
    keys = [k for k in a if k in b]
    if not keys:
        raise UsageError(f"{a_path} and {b_path} share no prompt index")
    _, engine = make_backend(backend, judge, base_url=base_url, api_key=api_key)
    rater = Judge(engine, judge_template, retries)
    outcome: Counter = Counter()
    by_order: Counter = Counter()
    update, stop = progress_bar("judge pairs", len(keys), transfer=False, show=progress)
    try:
        with (
            atomic_path(Path(output), overwrite=overwrite, folder=False) as partial,
            open(partial, "w", encoding="utf-8") as out,
        ):
            for done, key in enumerate(keys, start=1):
                messages = a[key].get("prompt_messages") or prompt_messages(a[key])
                question = question_text(messages)
                answer_a = a[key]["candidates"][0]["text"]
                answer_b = b[key]["candidates"][0]["text"]
                first, _, _ = rater.compare(2 * done, question, answer_a, answer_b)
                second, _, _ = rater.compare(2 * done + 1, question, answer_b, answer_a)
                second = {"A": "B", "B": "A"}.get(second, second)
                by_order[f"a_first:{first}"] += 1
                by_order[f"b_first:{second}"] += 1
                verdict = _combine(first, second)
                outcome[verdict] += 1
                out.write(
                    json.dumps(
                        {
                            "prompt_index": key,
                            "a_first": first,
                            "b_first": second,
                            "verdict": verdict,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                update(done)
    finally:
        stop()
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


def _combine(first: str | None, second: str | None) -> str:
    if first is None or second is None:
        return "missing"
    if first == second:
        return first
    if "tie" in (first, second):
        return first if second == "tie" else second
    return "tie"
