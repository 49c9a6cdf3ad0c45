from __future__ import annotations

import json
from pathlib import Path

import pytest

from plamo_fast.judge.templates import (
    PAIR_EN,
    PAIR_JA,
    SINGLE_EN,
    SINGLE_JA,
    JudgeTemplate,
    TemplateError,
    load_template,
    parse_rating,
    parse_verdict,
    render_pair,
    render_single,
)

# --- parse_rating: realistic judge outputs ----------------------------------------------------

RATINGS = [
    # The plain MT-Bench form.
    (
        "The assistant explains the concept clearly and gives a correct example. It could "
        "mention edge cases.\n\nRating: [[7]]",
        7.0,
    ),
    ("Rating: [[10]]", 10.0),
    ("Rating: [[1]]", 1.0),
    ("The answer is decent but shallow. [[7.5]]", 7.5),
    ("[[ 9 ]]", 9.0),
    ("Rating: [[8/10]]", 8.0),
    ("Rating: [[8 / 10]]", 8.0),
    ("**Rating:** **[[6]]**", 6.0),
    ("Rating: [[**6**]]", 6.0),
    ("Rating: [[7]].", 7.0),
    ("Rating: [[7.0]]", 7.0),
    ("Final verdict -> [[3]]\n", 3.0),
    ("Rating: [[Rating: 4]]", 4.0),
    # Japanese judges.
    (
        "回答は質問の意図を正しく捉えており、具体例も適切です。ただし説明がやや冗長です。\n\n評価：[[8]]",
        8.0,
    ),
    ("評価: [[6]]", 6.0),
    ("総合的に見て良い回答です。評価：［［８］］", 8.0),
    ("評価：［［ ７．５ ］］", 7.5),
    ("評価：[[9点]]", 9.0),
    # Several ratings: the last one wins.
    ("First impression: [[5]]. After checking the arithmetic again, Rating: [[3]]", 3.0),
    (
        'The required format is "[[rating]]", for example "Rating: [[1]]". The answer is '
        "excellent and fully correct.\n\nRating: [[9]]",
        9.0,
    ),
    # Echoes of the format are not ratings.
    ("I will write my rating as [[rating]].\n\nThe answer is fine. Rating: [[6]]", 6.0),
    ("Rating: [[6]]\n\n(Format: [[rating]])", 6.0),
    # Out of range: None, never clamped.
    ("Rating: [[11]]", None),
    ("Rating: [[0]]", None),
    ("Rating: [[-3]]", None),
    ("Rating: [[10.5]]", None),
    # A rating then an out-of-range one: the last decides, so None.
    ("Rating: [[8]] ... actually [[12]]", None),
    # Other denominators are not rescaled.
    ("Rating: [[4/5]]", None),
    # Not a number.
    ("Rating: [[N/A]]", None),
    ("Rating: [[]]", None),
    ("Rating: [[A]]", None),
    ("Rating: [[seven]]", None),
    ("Rating: [[7]] and then [[N/A]]", None),
    # Truncated / malformed.
    ("The answer is mostly correct. Rating: [[7", None),
    ("Rating: [[7]", None),
    ("Rating: [[7\n]]", None),
    ("Rating: [[7\n\nRating: 6", None),  # a bracket was attempted: no fallback
    # Fallback without double brackets: the last line must end with label + number.
    ("The answer is correct but terse.\n\nRating: 6", 6.0),
    ("The answer is correct but terse.\nRating: 6.", 6.0),
    ("Final score: 6/10", 6.0),
    ("**Rating:** 6", 6.0),
    ("Rating: **6**\n\n", 6.0),
    ("回答はおおむね正確です。\n評価: 6", 6.0),
    ("回答はおおむね正確です。\n総合評価：６点。", 6.0),
    ("Rating: 6/5", None),
    ("Rating: 0", None),
    ("Rating: 6\n\nThe answer could be improved by adding examples.", None),
    ("I would give it a 6.", None),
    ("The answer is correct. [7]", None),
    ("Overall rating: excellent", None),
    # Garbage never reads as 0.
    ("", None),
    ("   \n  ", None),
    ("I cannot evaluate this answer.", None),
    ("0", None),
    ("[[rating]]", None),
]


@pytest.mark.parametrize(("text", "expected"), RATINGS)
def test_parse_rating(text: str, expected: float | None) -> None:
    got = parse_rating(text)
    assert got == expected
    if got is not None:
        assert isinstance(got, float)


def test_parse_rating_none_text() -> None:
    assert parse_rating(None) is None


def test_parse_rating_custom_scale() -> None:
    assert parse_rating("Score: [[4/5]]", lo=1, hi=5) == 4.0
    assert parse_rating("Score: [[8/10]]", lo=1, hi=5) is None
    assert parse_rating("Score: [[6]]", lo=1, hi=5) is None
    assert parse_rating("Score: [[0]]", lo=0, hi=5) == 0.0
    assert parse_rating("Score: 3", lo=1, hi=5) == 3.0
    with pytest.raises(ValueError, match="lo"):
        parse_rating("[[3]]", lo=5, hi=1)


# --- parse_verdict -----------------------------------------------------------------------------

VERDICTS = [
    ("Assistant A is more accurate and complete.\n\n[[A]]", "A"),
    ("Both are fine, but B gives the runnable code. Final verdict: [[B]]", "B"),
    ("Neither answer is clearly better. [[C]]", "tie"),
    ("[[tie]]", "tie"),
    ("[[Tie]]", "tie"),
    ("[[ b ]]", "B"),
    ("**[[A]]**", "A"),
    ("[[**B**]]", "B"),
    ("Final verdict: [[Assistant A]]", "A"),
    ("最終判定：［［Ｂ］］", "B"),
    ("両者は同等です。[[C]]", "tie"),
    ("[[引き分け]]", "tie"),
    # Last one wins.
    ('The instructions say to output "[[A]]", "[[B]]" or "[[C]]". B is better: [[B]]', "B"),
    ("Initially [[A]], but on reflection A has an error. [[B]]", "B"),
    ("[[A]] ... [[D]]", None),
    # Nothing usable.
    ("Assistant A is better.", None),
    ("[[A", None),
    ("[A]", None),
    ("[[]]", None),
    ("[[AB]]", None),
    ("[[7]]", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), VERDICTS)
def test_parse_verdict(text: str | None, expected: str | None) -> None:
    assert parse_verdict(text) == expected


# --- rendering ---------------------------------------------------------------------------------


def test_render_single_fills_placeholders() -> None:
    messages = render_single(SINGLE_EN, "What is 2+2?", "It is 4.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SINGLE_EN.system
    user = messages[1]["content"]
    assert "What is 2+2?" in user
    assert "It is 4." in user
    assert "{" not in user
    assert "Reference" not in user
    assert "[[rating]]" in user
    assert user.index("What is 2+2?") < user.index("It is 4.")


def test_render_single_reference_only_when_given() -> None:
    without = render_single(SINGLE_EN, "Q?", "A.")[1]["content"]
    with_ref = render_single(SINGLE_EN, "Q?", "A.", reference="The answer is 42.")[1]["content"]
    assert "The answer is 42." in with_ref
    assert "[Reference answer" in with_ref and "[End of reference answer]" in with_ref
    assert "[Reference answer" not in without and "reference" not in without.lower()
    # Dropping the section leaves the rest intact: no doubled blank lines.
    assert "\n\n\n" not in without
    # Everything else is the same.
    start = with_ref.index("[Reference answer")
    end = with_ref.index("[End of reference answer]\n\n") + len("[End of reference answer]\n\n")
    assert with_ref[:start] + with_ref[end:] == without
    assert with_ref.index("Q?") < with_ref.index("The answer is 42.") < with_ref.index("A.")
    # A blank reference counts as none.
    assert render_single(SINGLE_EN, "Q?", "A.", reference="  ")[1]["content"] == without


def test_render_single_japanese() -> None:
    user = render_single(SINGLE_JA, "日本の首都はどこですか？", "東京です。")[1]["content"]
    assert "日本の首都はどこですか？" in user and "東京です。" in user
    assert "参考回答" not in user
    assert "2 以下" in user  # the language rule
    ref = render_single(SINGLE_JA, "質問", "回答", reference="正解")[1]["content"]
    assert "[参考回答" in ref and "正解" in ref


def test_render_does_not_substitute_inside_values() -> None:
    question = "Format this: {answer} and {reference} and {x}"
    answer = 'Use str.format: "{answer}".format(answer=1) -> {question}'
    user = render_single(SINGLE_EN, question, answer)[1]["content"]
    assert question in user and answer in user


def test_render_pair() -> None:
    for template in (PAIR_EN, PAIR_JA):
        messages = render_pair(template, "Q?", "first answer", "second answer")
        assert [m["role"] for m in messages] == ["system", "user"]
        user = messages[1]["content"]
        assert user.index("Q?") < user.index("first answer") < user.index("second answer")
        assert "{" not in user
        assert "[[A]]" in messages[0]["content"] and "[[C]]" in messages[0]["content"]
        ref = render_pair(template, "Q?", "a1", "b1", reference="gold")[1]["content"]
        assert ref.index("Q?") < ref.index("gold") < ref.index("a1")
        assert "gold" not in user


def test_render_kind_mismatch() -> None:
    with pytest.raises(ValueError, match="render_pair"):
        render_single(PAIR_EN, "Q", "A")
    with pytest.raises(ValueError, match="render_single"):
        render_pair(SINGLE_EN, "Q", "A", "B")


def test_reference_without_placeholder() -> None:
    t = JudgeTemplate(name="plain", system="", user="Q: {question}\nA: {answer}\nRate [[1-10]].")
    messages = render_single(t, "q", "a")
    assert messages == [{"role": "user", "content": "Q: q\nA: a\nRate [[1-10]]."}]
    with pytest.raises(ValueError, match="reference"):
        render_single(t, "q", "a", reference="r")


def test_reference_paragraph_first() -> None:
    t = JudgeTemplate(name="t", system="s", user="Ref:\n{reference}\n\nQ: {question}\n\n{answer}")
    assert render_single(t, "q", "a")[1]["content"] == "Q: q\n\na"
    assert render_single(t, "q", "a", "r")[1]["content"] == "Ref:\nr\n\nQ: q\n\na"


def test_builtin_templates() -> None:
    assert SINGLE_EN.kind == SINGLE_JA.kind == "single"
    assert PAIR_EN.kind == PAIR_JA.kind == "pair"
    names = {t.name for t in (SINGLE_EN, SINGLE_JA, PAIR_EN, PAIR_JA)}
    assert len(names) == 4
    for t in (SINGLE_EN, SINGLE_JA, PAIR_EN, PAIR_JA):
        assert t.has_reference


# --- templates: construction and loading ------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "system", "match"),
    [
        ("{question}", "", r"lacks \{answer\}"),
        ("{question} {answer_a}", "", r"lacks \{answer_b\}"),
        ("{question} {answer} {answer_a} {answer_b}", "", "mixes"),
        ("{question} {answer} {answr}", "", r"unknown placeholder\(s\) \{answr\}"),
        ("{question} {answer} {answer}", "", "more than once"),
        ("{question} {answer}", "Judge {question}", "system"),
        ("{question}\nRef: {reference}\n{answer}", "", "reference paragraph"),
    ],
)
def test_template_validation(user: str, system: str, match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        JudgeTemplate(name="bad", system=system, user=user)


def test_template_literal_braces_allowed() -> None:
    t = JudgeTemplate(name="json", system="", user='{question}\n{answer}\nReply {"score": 5}')
    assert render_single(t, "q", "a")[0]["content"] == 'q\na\nReply {"score": 5}'


def test_load_template_yaml(tmp_path: Path) -> None:
    path = tmp_path / "judge.yaml"
    path.write_text(
        "name: my-judge\n"
        "system: You grade answers.\n"
        "user: |\n"
        "  Question: {question}\n"
        "\n"
        "  Reference: {reference}\n"
        "\n"
        "  Answer: {answer}\n"
        "  Reply with [[rating]].\n",
        encoding="utf-8",
    )
    t = load_template(path)
    assert t.name == "my-judge" and t.kind == "single" and t.has_reference
    user = render_single(t, "q", "a")[1]["content"]
    assert user == "Question: q\n\nAnswer: a\nReply with [[rating]].\n"


def test_load_template_json(tmp_path: Path) -> None:
    path = tmp_path / "pair.json"
    path.write_text(
        json.dumps({"name": "p", "system": "s", "user": "{question}|{answer_a}|{answer_b}"}),
        encoding="utf-8",
    )
    t = load_template(str(path))
    assert t == JudgeTemplate(name="p", system="s", user="{question}|{answer_a}|{answer_b}")
    assert render_pair(t, "q", "a", "b")[1]["content"] == "q|a|b"


@pytest.mark.parametrize(
    ("filename", "content", "match"),
    [
        ("t.yaml", "name: x\nsystem: s\nuser: '{question}'\n", r"lacks \{answer\}"),
        ("t.yaml", "name: x\nsystem: s\nuser: '{question} {answr}'\n", "answr"),
        ("t.yaml", "name: x\nsystem: s\n", r"missing key\(s\) user"),
        ("t.yaml", "name: x\nsystem: s\nuser: '{question} {answer}'\nextra: 1\n", "extra"),
        ("t.yaml", "- a\n- b\n", "mapping"),
        ("t.yaml", "", "mapping"),
        ("t.yaml", "name: [unclosed\n", "not valid YAML"),
        ("t.json", '{"name": "x",', "not valid JSON"),
        ("t.yaml", "name: x\nsystem: 3\nuser: '{question} {answer}'\n", "`system` must be"),
        ("t.yaml", "name: ''\nsystem: s\nuser: '{question} {answer}'\n", "`name`"),
    ],
)
def test_load_template_errors(tmp_path: Path, filename: str, content: str, match: str) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TemplateError, match=match) as info:
        load_template(path)
    assert str(path) in str(info.value)


def test_load_template_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_template(tmp_path / "nope.yaml")


def test_template_error_is_value_error() -> None:
    assert issubclass(TemplateError, ValueError)
