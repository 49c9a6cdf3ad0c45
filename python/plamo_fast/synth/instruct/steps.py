"""The text work of the three steps: the titles prompt and the parsing of its numbered list,
the question prompt and the cleaning of its reply, the answer prompt; and the request keys
that seed every generation (so a round is the same whenever it runs)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from plamo_fast.synth.instruct.prompts import Prompts
from plamo_fast.synth.instruct.seeds import Task

STAGE_KEYS = {"titles": 0, "question": 1, "answer": 2}
ROUND_SPAN = 1 << 20  # requests of one stage in a round, at most (keys stay distinct)

# A list item: "1. ", "1) ", "１．", "(1) ", "1、", "- ", "* ", "・", "• "
ITEM = re.compile(r"^\s*(?:[(（]?[0-9０-９]+\s*[.)．）、:：]|[-*・•])\s*(.*)$")
QUOTES = (("「", "」"), ("『", "』"), ('"', '"'), ("“", "”"), ("'", "'"), ("**", "**"))
LABEL = re.compile(
    r"^\s*(?:依頼|質問|問題|タイトル|Task|Question|Instruction|Title)\s*[:：]\s*", re.IGNORECASE
)


def request_key(round_index: int, stage: str, index: int) -> int:
    """The key of request ``index`` of ``stage`` in round ``round_index`` (its seed derives
    from it and ``--seed``)."""
    return (round_index * ROUND_SPAN + index) * len(STAGE_KEYS) + STAGE_KEYS[stage]


def titles_prompt(prompts: Prompts, examples: Sequence[Task], count: int) -> str:
    listed = "\n".join(f"{i}. {task.title}" for i, task in enumerate(examples, start=1))
    return prompts.render("titles", examples=listed, count=str(count))


def question_prompt(prompts: Prompts, title: str, examples: Sequence[Task]) -> str:
    shown = "\n\n".join(prompts.example_pair(t.title, t.instruction) for t in examples)
    return prompts.render("question", title=title, examples=shown)


def answer_prompt(prompts: Prompts, title: str, question: str) -> str:
    return prompts.render("answer", title=title, question=question)


def parse_titles(text: str) -> list[str]:
    """The items of a reply's list, in order. When no line is a list item, each non-blank
    line is one (small models forget the numbers); when some are, other lines (a preamble,
    a closing remark) are left out."""
    lines = [line for line in text.splitlines() if line.strip()]
    items = [m[1] for m in map(ITEM.match, lines) if m]
    chosen = items if items else lines
    return [t for t in (_unquote(LABEL.sub("", x.strip())) for x in chosen) if t]


def clean_question(text: str) -> str:
    """The reply to the question prompt without a leading label (``依頼：``, ``Task:``) or
    quotes around the whole of it."""
    return _unquote(LABEL.sub("", text.strip()))


def normalize_title(title: str) -> str:
    """The form that exact title dedup compares: NFKC, case-folded, without spaces,
    punctuation and symbols."""
    text = unicodedata.normalize("NFKC", title).casefold()
    return "".join(c for c in text if unicodedata.category(c)[0] not in "PSZ")


def _unquote(text: str) -> str:
    """``text`` without one pair of quotes (or bold marks) around the whole of it."""
    text = text.strip()
    for opening, closing in QUOTES:
        inner = text[len(opening) : -len(closing)]
        wrapped = text.startswith(opening) and text.endswith(closing) and inner.strip()
        if wrapped and opening not in inner and closing not in inner:
            return inner.strip()
    return text
