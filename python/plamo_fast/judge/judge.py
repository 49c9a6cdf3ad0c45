"""Asking a judge model through any generation backend (:mod:`plamo_fast.generation.backends`).

:class:`Judge` sends many judge conversations per call (so a vLLM engine gets large batches and
a server ``--concurrency`` requests in flight), parses each answer, and re-asks only the ones that
could not be parsed (first at temperature 0, then with sampling); a judgement still unparseable
after the re-asks is returned with value ``None``: callers count it as failed, never as 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

from plamo_fast.generation.backends import Backend, Conversation, SamplingOptions
from plamo_fast.judge import templates as jt

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
GREEDY = SamplingOptions(n=1, temperature=0.0, top_p=1.0, max_new_tokens=1024, seed=0)


class Verdict(NamedTuple):
    value: object  # the parsed rating or verdict, None when unparseable after every re-ask
    text: str  # the judge's last answer
    attempt: int  # the attempt that gave the value (0: the first), or the retries when none did


def question_text(messages: list[dict]) -> str:
    """What the judge sees as the question: the last user turn, with earlier turns before it."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def pick_template(spec: str | None, question: str, pair: bool = False) -> jt.JudgeTemplate:
    """``en``, ``ja``, a template file, or ``None``/``auto`` (``ja`` for a Japanese question)."""
    if spec and spec not in ("en", "ja", "auto"):
        return jt.load_template(spec)
    japanese = spec == "ja" or (spec in (None, "auto") and JAPANESE.search(question))
    if pair:
        return jt.PAIR_JA if japanese else jt.PAIR_EN
    return jt.SINGLE_JA if japanese else jt.SINGLE_EN


def combine_orders(first: str | None, second: str | None) -> str:
    """One verdict from two orders, both already expressed for the same answer (``"A"``: the
    first model): agreement stands, a tie and a win give the win, a split verdict is a tie;
    a missing one gives ``"missing"``."""
    if first is None or second is None:
        return "missing"
    if first == second:
        return first
    if "tie" in (first, second):
        return first if second == "tie" else second
    return "tie"


class Judge:
    """A judge model behind a backend; ``retries`` re-asks of an unparseable judgement."""

    def __init__(
        self,
        engine: Backend,
        template: str | None = None,
        retries: int = 2,
        options: SamplingOptions = GREEDY,
    ):
        self.engine, self.template, self.retries, self.options = engine, template, retries, options

    def ask(
        self,
        conversations: Sequence[Conversation],
        parse: Callable[[str], object],
        keys: Sequence[int],
    ) -> list[Verdict]:
        """One verdict per conversation, in order; only the unparsed ones are asked again (at
        temperature 0.7, a new seed per attempt). ``keys[i]`` seeds conversation i."""
        verdicts = [Verdict(None, "", self.retries)] * len(keys)
        pending = list(range(len(keys)))
        for attempt in range(self.retries + 1):
            if not pending:
                break
            opts = self.options
            if attempt:
                opts = replace(opts, temperature=0.7, seed=opts.seed + attempt)
            outs = self.engine.generate(
                [conversations[i] for i in pending], opts, [keys[i] * 17 + attempt for i in pending]
            )
            unparsed = []
            for i, out in zip(pending, outs, strict=True):
                text = out[0]["text"]
                value = parse(text)
                verdicts[i] = Verdict(value, text, attempt if value is not None else self.retries)
                if value is None:
                    unparsed.append(i)
            pending = unparsed
        return verdicts

    def rate(self, requests: Sequence[tuple[int, str, str, str | None]]) -> list[Verdict]:
        """``(key, question, answer, reference)`` each: a rating 1-10 or None."""
        conversations = []
        for _, question, answer, reference in requests:
            t = pick_template(self.template, question)
            reference = reference if t.has_reference else None  # a template may not show one
            conversations.append(jt.render_single(t, question, answer, reference))
        return self.ask(conversations, jt.parse_rating, [r[0] for r in requests])

    def compare(self, requests: Sequence[tuple[int, str, str, str]]) -> list[Verdict]:
        """``(key, question, first, second)`` each: ``"A"``, ``"B"``, ``"tie"`` or None."""
        conversations = [
            jt.render_pair(pick_template(self.template, q, pair=True), q, first, second)
            for _, q, first, second in requests
        ]
        return self.ask(conversations, jt.parse_verdict, [r[0] for r in requests])
