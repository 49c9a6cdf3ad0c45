"""LLM-as-a-judge prompts and the parsing of what the judge answers.

Two formats, after MT-Bench's judges (FastChat ``llm_judge``; the wording here is our own):

* single-answer grading (``SINGLE_EN``, ``SINGLE_JA``): the judge explains, then ends with a
  rating from 1 to 10 written ``[[rating]]`` (``Rating: [[7]]``); read it with
  :func:`parse_rating`. Used to score on-policy samples.
* pairwise comparison (``PAIR_EN``, ``PAIR_JA``): the judge ends with ``[[A]]``, ``[[B]]`` or
  ``[[C]]`` (tie); read it with :func:`parse_verdict`. Judges favour a position, so compare both
  orders (swap ``answer_a`` and ``answer_b``) and count a win only where the two agree.

The Japanese templates (as Japanese MT-Bench / Rakuda judges do) add a language rule: when the
question is in Japanese, an answer written mostly in another language gets a rating of **at most
2** (single), and loses to an answer in Japanese (pair), unless the user asked for another
language (a translation, say). Code, proper nouns, technical terms and quotations do not count.

Templates. ``user`` holds the placeholders: ``{question}`` and ``{answer}`` (single) or
``{question}``, ``{answer_a}`` and ``{answer_b}`` (pair), each exactly once, plus an optional
``{reference}``. Any ``{identifier}`` is a placeholder (an unknown one is an error); other braces
are plain text, and nothing is escaped. ``system`` has no placeholders. The blank-line-separated
paragraph of ``user`` that holds ``{reference}`` is the reference section: it is kept, filled in,
when a reference answer is given, and left out entirely otherwise, so it should carry its own
heading and any instruction about using the reference.

Parsing ratings (:func:`parse_rating`). The text is NFKC-normalised first, so full-width
``［［８］］`` and ``評価：`` read as ``[[8]]`` and ``評価:``.

1. Every complete ``[[...]]`` on one line is a candidate, except echoes of the format
   (``[[rating]]``, ``[[score]]``, ``[[評価]]``). The **last** candidate decides: its content
   (markdown ``*``/``_`` and spaces ignored, an optional ``Rating:``/``評価:`` label allowed)
   must be a number (``7``, ``7.5``), optionally ``/hi`` (``8/10`` gives 8 when ``hi`` is 10;
   any other denominator gives ``None``: nothing is rescaled). Anything else (``[[N/A]]``,
   ``[[]]``), or a number outside ``[lo, hi]``, gives ``None``; earlier candidates are not
   consulted and nothing is clamped.
2. With no candidate but a ``[[`` somewhere (a truncated ``Rating: [[7``), ``None``.
3. With no ``[[`` at all, the fallback: the last non-empty line, with markdown ``*``, ``_`` and
   backticks removed, must **end** with a label (``Rating``, ``Score``, ``評価``, ``スコア``,
   ``点数``, ``得点``; case-insensitive), an optional ``:`` or ``=``, and the number, optionally
   followed by ``/hi``, ``点`` and a final ``.`` or ``。``: ``Rating: 6``, ``**評価：** 6点``,
   ``Final score: 6/10``. The same range rule applies. Anything else (a rating in the middle of
   the text, ``I would give it a 6``) gives ``None``.

Parsing verdicts (:func:`parse_verdict`): the same candidates (no echoes skipped); the last one
decides: ``A`` or ``B`` (optionally ``Assistant A``), ``C``/``tie``/``draw``/``引き分け``
(case-insensitive) give ``"A"``, ``"B"``, ``"tie"``; anything else, or no candidate, ``None``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from plamo_fast.errors import UsageError

__all__ = [
    "PAIR_EN",
    "PAIR_JA",
    "SINGLE_EN",
    "SINGLE_JA",
    "JudgeTemplate",
    "TemplateError",
    "load_template",
    "parse_rating",
    "parse_verdict",
    "render_pair",
    "render_single",
]

SINGLE_FIELDS = frozenset({"question", "answer"})
PAIR_FIELDS = frozenset({"question", "answer_a", "answer_b"})
OPTIONAL_FIELDS = frozenset({"reference"})

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n\s*)")


class TemplateError(UsageError):
    """A judge template that cannot be used (the message names the file, when there is one)."""


@dataclass(frozen=True)
class JudgeTemplate:
    """A judge prompt: ``system`` message and ``user`` message with placeholders (see the module
    docs). Checked on construction; :attr:`kind` is ``"single"`` or ``"pair"``."""

    name: str
    system: str
    user: str

    def __post_init__(self) -> None:
        _check_template(self)

    @property
    def kind(self) -> str:
        return "pair" if "answer_a" in _fields(self.user) else "single"

    @property
    def has_reference(self) -> bool:
        return "reference" in _fields(self.user)


def _fields(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


def _check_template(t: JudgeTemplate) -> None:
    for attr in ("name", "system", "user"):
        if not isinstance(getattr(t, attr), str):
            raise TemplateError(f"`{attr}` must be a string, got {type(getattr(t, attr)).__name__}")
    if not t.name.strip():
        raise TemplateError("`name` must not be empty")
    if _fields(t.system):
        listed = ", ".join(f"{{{f}}}" for f in _fields(t.system))
        raise TemplateError(
            f"template {t.name!r}: `system` has placeholders ({listed}); they belong in `user`"
        )
    found = _fields(t.user)
    names = set(found)
    known = SINGLE_FIELDS | PAIR_FIELDS | OPTIONAL_FIELDS
    unknown = sorted(names - known)
    if unknown:
        raise TemplateError(
            f"template {t.name!r}: unknown placeholder(s) "
            + ", ".join(f"{{{u}}}" for u in unknown)
            + "; `user` takes {question} {answer} (single) or {question} {answer_a} {answer_b}"
            " (pair), and optionally {reference}"
        )
    if "answer" in names and names & {"answer_a", "answer_b"}:
        raise TemplateError(
            f"template {t.name!r}: mixes {{answer}} (single grading) with {{answer_a}}/"
            "{answer_b} (pairwise)"
        )
    required = PAIR_FIELDS if names & {"answer_a", "answer_b"} else SINGLE_FIELDS
    missing = sorted(required - names)
    if missing:
        raise TemplateError(
            f"template {t.name!r}: `user` lacks " + ", ".join(f"{{{m}}}" for m in missing)
        )
    repeated = sorted({f for f in found if found.count(f) > 1})
    if repeated:
        raise TemplateError(
            f"template {t.name!r}: placeholder(s) used more than once: "
            + ", ".join(f"{{{r}}}" for r in repeated)
        )
    if "reference" in names:
        paragraph = next(p for p in _PARAGRAPH_BREAK.split(t.user) if "{reference}" in p)
        others = sorted(set(_fields(paragraph)) - {"reference"})
        if others:
            raise TemplateError(
                f"template {t.name!r}: the reference paragraph (left out when there is no "
                "reference) also holds "
                + ", ".join(f"{{{o}}}" for o in others)
                + "; separate it with a blank line"
            )


def load_template(path: str | Path) -> JudgeTemplate:
    """A template from a YAML or JSON file (``.json``: JSON, else YAML) holding a mapping with
    the string keys ``name``, ``system`` and ``user`` (no others). A missing file raises
    :class:`FileNotFoundError`; anything else wrong, :class:`TemplateError` naming the file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise TemplateError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"{path}: a judge template is a mapping with keys name, system, user")
    expected = ("name", "system", "user")
    missing = [k for k in expected if k not in raw]
    extra = sorted(str(k) for k in raw if k not in expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing key(s) " + ", ".join(missing))
        if extra:
            parts.append("unknown key(s) " + ", ".join(extra))
        raise TemplateError(f"{path}: {'; '.join(parts)} (expected name, system, user)")
    try:
        return JudgeTemplate(name=raw["name"], system=raw["system"], user=raw["user"])
    except TemplateError as exc:
        raise TemplateError(f"{path}: {exc}") from None


def _fill(t: JudgeTemplate, values: dict[str, str], reference: str | None) -> str:
    user = t.user
    if reference is not None and not reference.strip():
        reference = None
    if reference is None:
        if t.has_reference:
            parts = _PARAGRAPH_BREAK.split(user)
            i = next(i for i, p in enumerate(parts) if "{reference}" in p)
            # Drop the paragraph and one separator next to it.
            if i > 0:
                del parts[i - 1 : i + 1]
            else:
                del parts[i : i + 2]
            user = "".join(parts)
    else:
        if not t.has_reference:
            raise ValueError(
                f"template {t.name!r} has no {{reference}} placeholder, but a reference was given"
            )
        values = {**values, "reference": reference}
    # One pass, so a placeholder-like text inside a question or answer is left alone.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], user)


def _messages(t: JudgeTemplate, user: str) -> list[dict]:
    messages = [{"role": "system", "content": t.system}] if t.system else []
    messages.append({"role": "user", "content": user})
    return messages


def render_single(
    t: JudgeTemplate, question: str, answer: str, reference: str | None = None
) -> list[dict]:
    """Chat messages (``system`` unless the template's is empty, then ``user``) asking the judge
    to rate ``answer``. The reference paragraph appears only when ``reference`` is given and not
    blank; giving one to a template without ``{reference}`` is a :class:`ValueError`."""
    if t.kind != "single":
        raise ValueError(f"template {t.name!r} is a pairwise template; use render_pair")
    return _messages(t, _fill(t, {"question": question, "answer": answer}, reference))


def render_pair(
    t: JudgeTemplate,
    question: str,
    answer_a: str,
    answer_b: str,
    reference: str | None = None,
) -> list[dict]:
    """Chat messages asking the judge which of ``answer_a`` and ``answer_b`` is better (the
    reference works as in :func:`render_single`)."""
    if t.kind != "pair":
        raise ValueError(f"template {t.name!r} is a single-grading template; use render_single")
    values = {"question": question, "answer_a": answer_a, "answer_b": answer_b}
    return _messages(t, _fill(t, values, reference))


# --- parsing ---------------------------------------------------------------------------------

_GROUP = re.compile(r"\[\[([^\[\]\n]*)\]\]")
_ECHOES = frozenset({"rating", "score", "評価", "スコア"})
_NUMBER = r"[+-]?\d+(?:\.\d*)?"
_LABEL = r"(?:(?<![A-Za-z])(?:rating|score)|評価|スコア|点数|得点)"
_IN_GROUP = re.compile(
    rf"(?:{_LABEL}\s*[:=]?)?\s*({_NUMBER})\s*(?:/\s*({_NUMBER}))?\s*点?", re.IGNORECASE
)
_LAST_LINE = re.compile(
    rf"{_LABEL}\s*[:=]?\s*({_NUMBER})\s*(?:/\s*({_NUMBER}))?\s*点?\s*[.。]?\s*$", re.IGNORECASE
)
_MARKDOWN = str.maketrans("", "", "*_`")


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _rating_value(number: str, denominator: str | None, lo: float, hi: float) -> float | None:
    value = float(number)
    if denominator is not None and float(denominator) != hi:
        return None
    return value if lo <= value <= hi else None


def parse_rating(text: str | None, lo: float = 1, hi: float = 10) -> float | None:
    """The judge's rating in ``text``, or ``None`` when there is no usable one (the rules are in
    the module docs: the last ``[[...]]`` decides, out of range is ``None``, never clamped; a
    ``Rating: 6`` ending the text is the fallback when there are no double brackets)."""
    if lo > hi:
        raise ValueError(f"lo ({lo}) is above hi ({hi})")
    if not text:
        return None
    text = _normalise(text)
    candidates = [
        g for g in _GROUP.findall(text) if g.translate(_MARKDOWN).strip().casefold() not in _ECHOES
    ]
    if candidates:
        m = _IN_GROUP.fullmatch(candidates[-1].translate(_MARKDOWN).strip())
        return _rating_value(m.group(1), m.group(2), lo, hi) if m else None
    if "[[" in _GROUP.sub("", text):
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    m = _LAST_LINE.search(lines[-1].translate(_MARKDOWN))
    return _rating_value(m.group(1), m.group(2), lo, hi) if m else None


_VERDICTS = {"a": "A", "b": "B", "c": "tie", "tie": "tie", "draw": "tie", "引き分け": "tie"}


def parse_verdict(text: str | None) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` from the last ``[[...]]`` in ``text`` (``[[C]]`` is a tie),
    or ``None`` when there is none or it is not a verdict."""
    if not text:
        return None
    groups = _GROUP.findall(_normalise(text))
    if not groups:
        return None
    content = " ".join(groups[-1].translate(_MARKDOWN).split()).casefold()
    content = content.removeprefix("assistant ")
    return _VERDICTS.get(content)


# --- built-in templates ----------------------------------------------------------------------

SINGLE_EN = JudgeTemplate(
    name="single-en",
    system="You are a careful and impartial evaluator of answers written by AI assistants.",
    user="""\
[Task]
Assess how well the AI assistant's answer below responds to the user's question. Weigh \
helpfulness, relevance, accuracy, depth, creativity and level of detail, as far as the question \
calls for them. Neither the length of the answer nor its style should sway you on their own. \
Begin with a short explanation of your assessment and be as objective as you can. Then give a \
rating from 1 to 10 written exactly as "[[rating]]", for example "Rating: [[6]]". Give the rating \
once, at the very end, and do not use double square brackets anywhere else.

[Question]
{question}

[Reference answer: a correct answer to the question. Compare the assistant's answer with it and \
point out any mistakes.]
{reference}
[End of reference answer]

[Start of the assistant's answer]
{answer}
[End of the assistant's answer]""",
)

SINGLE_JA = JudgeTemplate(
    name="single-ja",
    system="あなたは AI アシスタントの回答を公平かつ厳密に評価する審査員です。",
    user="""\
[指示]
以下のユーザーの質問に対する AI アシスタントの回答を評価してください。質問が求める範囲で、\
有用性、関連性、正確さ、深さ、創造性、詳しさを考慮してください。回答の長さや文体だけで評価を\
左右させないでください。
言語について：質問が日本語で書かれている場合、回答も日本語で書かれている必要があります。回答の\
大部分が日本語以外の言語で書かれている場合は、内容がどれほど優れていても評価を 2 以下にして\
ください。ただし、ユーザーが別の言語での回答（翻訳など）を明示的に求めている場合は除きます。\
コード、固有名詞、専門用語、引用に含まれる外国語は問題にしません。
まず評価の理由を簡潔に、できるだけ客観的に説明してください。その後、1 から 10 の評価を必ず \
"[[評価]]" の形式で、例えば "評価：[[5]]" のように、最後に一度だけ書いてください。それ以外の\
箇所で二重の角括弧を使わないでください。

[質問]
{question}

[参考回答：質問に対する正しい回答です。アシスタントの回答と比較し、誤りがあれば指摘してください。]
{reference}
[参考回答の終わり]

[アシスタントの回答の始まり]
{answer}
[アシスタントの回答の終わり]""",
)

PAIR_EN = JudgeTemplate(
    name="pair-en",
    system="""\
You are an impartial judge comparing the answers of two AI assistants to the same user question. \
Decide which answer follows the user's instructions and answers the question better, weighing \
helpfulness, relevance, accuracy, depth, creativity and level of detail as the question requires. \
The order in which the answers are shown must not influence you, nor their length, nor the names \
of the assistants. Explain your comparison briefly and as objectively as you can, then end with \
your verdict in exactly one of these forms: "[[A]]" if assistant A's answer is better, "[[B]]" if \
assistant B's answer is better, "[[C]]" if they are equally good. Write the verdict once, at the \
very end, and do not use double square brackets anywhere else.""",
    user="""\
[User question]
{question}

[Reference answer: a correct answer to the question. Check both answers against it.]
{reference}
[End of reference answer]

[Start of assistant A's answer]
{answer_a}
[End of assistant A's answer]

[Start of assistant B's answer]
{answer_b}
[End of assistant B's answer]""",
)

PAIR_JA = JudgeTemplate(
    name="pair-ja",
    system="""\
あなたは、同じユーザーの質問に対する 2 つの AI アシスタントの回答を比較する公平な審査員です。\
ユーザーの指示に従い、質問によりよく答えているのはどちらの回答かを、質問が求める範囲で有用性、\
関連性、正確さ、深さ、創造性、詳しさを考慮して判断してください。回答の提示順、回答の長さ、\
アシスタントの名前に判断を左右されないでください。
言語について：質問が日本語で書かれている場合、回答の大部分が日本語以外の言語で書かれていれば、\
大きく減点してください。もう一方の回答が日本語で妥当に答えていれば、そちらを優れているとして\
ください。ただし、ユーザーが別の言語での回答（翻訳など）を明示的に求めている場合は除きます。\
コード、固有名詞、専門用語、引用に含まれる外国語は問題にしません。
比較の理由を簡潔に、できるだけ客観的に説明し、最後に判定を次のいずれかの形式で一度だけ書いて\
ください：アシスタント A の回答が優れていれば "[[A]]"、アシスタント B の回答が優れていれば \
"[[B]]"、同等であれば "[[C]]"。それ以外の箇所で二重の角括弧を使わないでください。""",
    user="""\
[ユーザーの質問]
{question}

[参考回答：質問に対する正しい回答です。両方の回答をこれと照らし合わせてください。]
{reference}
[参考回答の終わり]

[アシスタント A の回答の始まり]
{answer_a}
[アシスタント A の回答の終わり]

[アシスタント B の回答の始まり]
{answer_b}
[アシスタント B の回答の終わり]""",
)
