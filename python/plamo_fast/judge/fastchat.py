"""FastChat's judge prompt files (``llm_judge/data/judge_prompts.jsonl``, the Japanese fork's
``judge_ja_prompts.jsonl``) and how FastChat 0.2.36 fills them in.

A prompt file holds one JSON object per line with ``name``, ``type`` (``single`` or
``pairwise``), ``system_prompt``, ``prompt_template``, ``output_format`` and optional
``description``/``category``. FastChat fills ``prompt_template`` with Python's ``str.format``
(``question``/``answer`` for turn 1; ``question_1``, ``answer_1``, ``question_2``, ``answer_2``
for the multi-turn prompts; ``ref_answer_1``/``ref_answer_2`` for the reference-guided ones) and
sends ``[system, user]`` (no system message when ``system_prompt`` is empty): :func:`messages`
does the same, so the prompts are byte for byte those of FastChat.

Single-answer grading uses four prompts, chosen as FastChat's ``make_judge_single``:
``single-v1`` (turn 1), ``single-math-v1`` (turn 1 of math/reasoning/coding, with a reference),
``single-v1-multi-turn`` and ``single-math-v1-multi-turn`` (turn 2). The Japanese fork ships only
the two turn-1 prompts; :data:`JA_MULTI_TURN` are our own Japanese multi-turn prompts, used only
when a file lacks them (and said so in the results).

The rating is read with :func:`plamo_fast.judge.templates.parse_rating` (the **last** ``[[N]]``;
FastChat takes the first, which is often the judge echoing the example ``[[5]]``).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.errors import UsageError

SINGLE_NAMES = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")
NEED_REF_CATS = ("math", "reasoning", "coding")  # FastChat's, less its arena-hard-200
FIELDS = {
    "single": ({"question", "answer"}, {"question_1", "answer_1", "question_2", "answer_2"}),
    "pairwise": (
        {"question", "answer_a", "answer_b"},
        {"question_1", "question_2", "answer_a_1", "answer_a_2", "answer_b_1", "answer_b_2"},
    ),
}


class JudgePromptError(UsageError):
    """A judge prompt file that cannot be used (the message names FILE:LINE)."""


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    type: str  # "single" or "pairwise"
    system_prompt: str
    prompt_template: str
    output_format: str
    source: str  # FILE:LINE, or "plamo-fast" for our own prompts

    @property
    def multi_turn(self) -> bool:
        return "question_2" in self.fields

    @property
    def ref_based(self) -> bool:
        return "ref_answer_1" in self.fields

    @property
    def fields(self) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(self.prompt_template) if f}

    def record(self) -> dict:
        """The prompt as a line of a FastChat prompt file."""
        return {
            "name": self.name,
            "type": self.type,
            "system_prompt": self.system_prompt,
            "prompt_template": self.prompt_template,
            "output_format": self.output_format,
        }


def _check(prompt: JudgePrompt) -> None:
    try:
        fields = prompt.fields
    except ValueError as exc:
        raise JudgePromptError(f"{prompt.source}: prompt_template: {exc}") from None
    if prompt.type not in FIELDS:
        raise JudgePromptError(f"{prompt.source}: type must be single or pairwise")
    first, multi = FIELDS[prompt.type]
    base = multi if "question_2" in fields else first
    refs = {"ref_answer_1", "ref_answer_2"} if "question_2" in fields else {"ref_answer_1"}
    missing = sorted(base - fields)
    unknown = sorted(fields - base - refs)
    if missing or unknown:
        raise JudgePromptError(
            f"{prompt.source}: prompt {prompt.name!r}: "
            + "; ".join(
                p
                for p in (
                    missing and "lacks {" + "}, {".join(missing) + "}",
                    unknown and "unknown placeholder(s) {" + "}, {".join(unknown) + "}",
                )
                if p
            )
        )


def load_judge_prompts(path: str | Path) -> dict[str, JudgePrompt]:
    """``{name: prompt}`` of a FastChat judge prompt file, every line checked."""
    from plamo_fast.sample.records import read_jsonl

    prompts: dict[str, JudgePrompt] = {}
    for number, raw in read_jsonl(Path(path)):
        where = f"{path}:{number}"
        keys = ("name", "type", "system_prompt", "prompt_template", "output_format")
        if not isinstance(raw, dict) or any(not isinstance(raw.get(k), str) for k in keys):
            raise JudgePromptError(f"{where}: a judge prompt needs string fields {', '.join(keys)}")
        if raw["name"] in prompts:
            raise JudgePromptError(f"{where}: prompt {raw['name']!r} appears twice")
        prompt = JudgePrompt(*(raw[k] for k in keys), source=where)
        _check(prompt)
        prompts[prompt.name] = prompt
    if not prompts:
        raise JudgePromptError(f"{path}: no judge prompt in it")
    return prompts


def fill(prompt: JudgePrompt, **values: str) -> str:
    """The user prompt, filled as FastChat does (``str.format``)."""
    return prompt.prompt_template.format(**values)


def messages(prompt: JudgePrompt, user: str) -> list[dict]:
    """The chat FastChat sends an OpenAI judge (its ``chatgpt`` conversation template)."""
    system = [{"role": "system", "content": prompt.system_prompt}] if prompt.system_prompt else []
    return [*system, {"role": "user", "content": user}]


def single_prompts(
    prompts: dict[str, JudgePrompt], turns: int, source: str, ref_based: bool = True
) -> dict:
    """The single-grading prompts a run needs (``single-v1``; ``single-math-v1`` when some
    question needs a reference; the multi-turn ones for ``turns == 2``), with our Japanese
    multi-turn prompts filling in for missing multi-turn prompts of a Japanese file; refuses a
    file that lacks others."""
    needed = [n for n in SINGLE_NAMES[: 2 * turns] if ref_based or "math" not in n]
    chosen = {}
    for name in needed:
        if name in prompts:
            chosen[name] = prompts[name]
        elif name in JA_MULTI_TURN and _japanese(prompts):
            chosen[name] = JA_MULTI_TURN[name]
        else:
            raise JudgePromptError(
                f"{source}: no {name!r} prompt"
                + (" (judge turn 1 only with --turns 1)" if "multi" in name else "")
            )
    for name, prompt in chosen.items():
        if prompt.type != "single" or prompt.multi_turn != ("multi" in name):
            raise JudgePromptError(f"{prompt.source}: {name!r} is not a {name} prompt")
    return chosen


def pair_prompt(prompts: dict[str, JudgePrompt], source: str) -> JudgePrompt:
    """The one turn-1 pairwise prompt of a file (Rakuda's ``pair-ja``; FastChat's ``pair-v2``)."""
    pairs = [p for p in prompts.values() if p.type == "pairwise" and not p.multi_turn]
    if "pair-v2" in prompts:
        return prompts["pair-v2"]
    if len(pairs) != 1:
        raise JudgePromptError(
            f"{source}: expected one turn-1 pairwise prompt, found "
            f"{', '.join(p.name for p in pairs) or 'none'}"
        )
    return pairs[0]


_LAST_CHOICE = {"1": "A", "2": "B", "3": "tie"}


def parse_last_choice(text: str | None) -> str | None:
    """Rakuda's ``output_format: last``: the last digit of the judgement (NFKC, so a full-width
    digit counts) must be 1 (the first answer wins), 2 (the second) or 3 (cannot choose);
    anything else is None."""
    import unicodedata

    digits = [c for c in unicodedata.normalize("NFKC", text or "") if c.isdigit()]
    return _LAST_CHOICE.get(digits[-1]) if digits else None


def verdict_parser(prompt: JudgePrompt):
    """``(name, parse)`` of a pairwise prompt's output format: ``A``, ``B``, ``tie`` or None."""
    from plamo_fast.judge.templates import parse_verdict

    if prompt.output_format == "last":
        return "last digit 1/2/3", parse_last_choice
    if prompt.output_format in ("[[A]]", "[[A]]/[[B]]/[[C]]"):
        return "last [[A]]/[[B]]/[[C]]", parse_verdict
    raise JudgePromptError(
        f"{prompt.source}: output_format {prompt.output_format!r} is not one plamo-fast reads "
        "(last, [[A]])"
    )


def _japanese(prompts: dict[str, JudgePrompt]) -> bool:
    from plamo_fast.judge.judge import JAPANESE

    return any(JAPANESE.search(p.prompt_template) for p in prompts.values())


# Our own Japanese multi-turn prompts (the Japanese fork ships none): the rating format of its
# turn-1 prompts ("[[評価]]", e.g. "評価：[[5]]"), judging only the second answer.
_JA_SYSTEM = "あなたは有益な助手です。"
_JA_INSTRUCTION = (
    "[指示]\n"
    "公平な判断者として、以下に示すユーザーとAIアシスタントの会話を読み、2つ目のユーザーの質問に"
    "対するAIアシスタントの応答の品質を評価してください。応答の有用性、関連性、正確性、深さ、"
    "創造性、詳細度などを考慮し、1つ目のやりとりを踏まえているかも確かめてください。"
    "AIアシスタントの応答の言語はユーザーの言語と一致しているべきで、そうでない場合は減点して"
    "ください。{reference_note}"
    "評価は短い説明から始め、できるだけ客観的にしてください。説明の後、1から10までのスケールで、"
    '必ず"[[評価]]"の形式で評価を書いてください。例："評価：[[5]]"。\n\n'
)
_JA_CONVERSATION = (
    "<|ユーザーとアシスタントの会話の始まり|>\n\n"
    "### ユーザー:\n{question_1}\n\n### アシスタント:\n{answer_1}\n\n"
    "### ユーザー:\n{question_2}\n\n### アシスタント:\n{answer_2}\n\n"
    "<|ユーザーとアシスタントの会話の終わり|>"
)
_JA_REFERENCE = (
    "<|参考回答の始まり|>\n\n### ユーザー:\n{question_1}\n\n### 参考回答:\n{ref_answer_1}\n\n"
    "### ユーザー:\n{question_2}\n\n### 参考回答:\n{ref_answer_2}\n\n<|参考回答の終わり|>\n\n"
)
_JA_REFERENCE_NOTE = (
    "参考回答が与えられるので、アシスタントの応答と比較し、誤りがあれば指摘してください。"
)
JA_MULTI_TURN = {
    "single-v1-multi-turn": JudgePrompt(
        "single-v1-multi-turn",
        "single",
        _JA_SYSTEM,
        _JA_INSTRUCTION.format(reference_note="") + _JA_CONVERSATION,
        "[[評価]]",
        "plamo-fast",
    ),
    "single-math-v1-multi-turn": JudgePrompt(
        "single-math-v1-multi-turn",
        "single",
        _JA_SYSTEM,
        _JA_INSTRUCTION.format(reference_note=_JA_REFERENCE_NOTE)
        + _JA_REFERENCE
        + _JA_CONVERSATION,
        "[[評価]]",
        "plamo-fast",
    ),
}
