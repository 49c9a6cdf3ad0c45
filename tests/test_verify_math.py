"""The rule-based math verifier: answer extraction, exact number parsing and the verdict."""

from fractions import Fraction

import pytest

from plamo_fast.sample.verify_math import extract_answer, parse_number, verify

VERIFY_CASES = [
    # Plain answers, Japanese and English.
    ("答えは１２です。", "12", True),
    ("3×4=11です。", "12", False),
    (r"\boxed{12}", "12", True),
    ("12個", "12", True),
    ("りんごは全部で 12 個あります。", "12", True),
    ("答えは 42 です。", "42", True),
    ("答え：４２", "42", True),
    ("【答え】42円", "42", True),
    ("The answer is 42.", "42", True),
    ("**Answer:** 42 apples", "42", True),
    ("Final answer: 41", "42", False),
    # The last boxed / marked answer wins over the right number earlier in the text.
    (r"最初は \boxed{12} と考えましたが、誤りでした。正しくは \boxed{13} です。", "12", False),
    (r"\boxed{13} ... 見直すと \boxed{12}", "12", True),
    ("12個と18個を足すと30個。答えは 30 です。", "12", False),
    ("答えは 12 です。ただし問題3では 7 でした。", "12", True),
    ("12 を 2 倍すると 24 になるので、24個です。", "12", False),
    ("途中で 12 が出てきますが、答え: 15", "12", False),
    ("答えは 3 + 4 = 7 です。", "7", True),
    ("答え：12個（3 × 4 = 12）", "12", True),
    # GSM8K style.
    ("Natalia sold 48/2 = 24 clips in May.\n48 + 24 = 72\n#### 72", "72", True),
    ("####  1,234", "1234", True),
    ("#### 1,234", "1,234", True),
    ("#### 1234", "1，234", True),
    # Negatives, including full-width and Unicode minus.
    ("答えは -5 です。", "-5", True),
    ("答えは －５ です。", "-5", True),
    ("x = −5", "-5", True),
    ("答えは 5 です。", "-5", False),
    (r"\boxed{-\frac{3}{4}}", "-0.75", True),
    # Decimals, fractions and TeX: exact rational comparison.
    ("答えは 0.5 です。", "1/2", True),
    ("答えは ０．５ です。", r"\frac{1}{2}", True),
    (r"\boxed{\frac{3}{4}}", "0.75", True),
    (r"\boxed{\dfrac{3}{4}}", "3/4", True),
    (r"答えは $\frac{1}{2}$ です。", "0.5", True),
    ("答えは １／２ です。", "0.5", True),
    ("答えは 4分の3 です。", "3/4", True),
    ("42.0", "42", True),
    ("答えは 0.333 です。", "1/3", False),
    ("3.14", r"\frac{22}{7}", False),
    (r"\boxed{2\frac{1}{3}}", "7/3", True),
    ("2 1/3 cups", "7/3", True),
    # Units and trailing words.
    ("答えは 3.5 cm です。", "3.5", True),
    (r"\boxed{12 \text{ cm}^2}", "12", True),
    (r"\boxed{90^\circ}", "90", True),
    ("面積は 25 m² です。", "25", True),
    ("合計 1,234 円", "1234", True),
    ("答えは 3万 人です。", "30000", True),
    # Percentages: % is stripped, never scaled.
    ("答えは 50% です。", "50", True),
    ("答えは 50% です。", "50%", True),
    ("答えは 0.5 です。", "50%", False),
    # No number or an unreadable final answer: False.
    ("わかりません。", "12", False),
    ("", "12", False),
    (r"\boxed{}", "12", False),
    (r"\boxed{x = 3, y = 4}", "3", False),
    (r"\boxed{2\sqrt{3}}", "2", False),
    # A reference that is a whole solution is read through its final answer.
    ("答えは 72 です。", "She sold 48 + 24 = 72 clips.\n#### 72", True),
    (r"\boxed{5}", r"So $x = 5$, and the answer is $\boxed{5}$.", True),
    # A reference that cannot be read: None (the caller records the score as missing).
    ("答えは 12 です。", "わからない", None),
    ("答えは A です。", "A", None),
    ("答えは 3 です。", "1, 2, 3", None),
    ("答えは 2 です。", r"\sqrt{2}", None),
    ("答えは 3.14 です。", "π", None),
    ("anything", "", None),
]


@pytest.mark.parametrize(("response", "reference", "expected"), VERIFY_CASES)
def test_verify(response, reference, expected):
    assert verify(response, reference) is expected


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"まず \boxed{1} を考える。最終的に \boxed{\frac{3}{4}}", r"\frac{3}{4}"),
        (r"\boxed{\text{答え} \{1\} + {2}}", r"\text{答え} \{1\} + {2}"),  # nested braces
        (r"\boxed 5 です", "5"),
        (r"答えは \boxed{12", "12"),  # truncated: the rest of the text
        ("####  1,234", "1,234"),
        ("答えは、x = 5 です。", "5"),
        ("答えは\n\n$$\\frac{3}{4}$$", "3/4"),
        ("答えは次の通りです。\n計算すると 6 × 7 = 42", "42"),  # no number after the marker
        ("答え: 7\n\n補足: 他に 3 通りの解き方があります。", "7"),
        ("The answer is 12 apples.", "12"),
        ("合計は 12 + 30 = 42 個です。", "42"),
        ("１２３４５", "12345"),
        ("x2 + y2 = 13 なので 13", "13"),
        ("数がありません", None),
        ("", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", Fraction(42)),
        ("-7", Fraction(-7)),
        ("+7", Fraction(7)),
        ("１，２３４", Fraction(1234)),
        ("1,234,567.5", Fraction(2469135, 2)),
        ("0.1", Fraction(1, 10)),
        (".5", Fraction(1, 2)),
        ("3/4", Fraction(3, 4)),
        ("3 / -4", Fraction(-3, 4)),
        (r"\frac{-3}{4}", Fraction(-3, 4)),
        (r"\frac12", Fraction(1, 2)),
        (r"\tfrac{1,000}{4}", Fraction(250)),
        (r"$\boxed{\frac{3}{4}}$", Fraction(3, 4)),
        ("-2 1/3", Fraction(-7, 3)),
        ("½", Fraction(1, 2)),
        ("2½", Fraction(5, 2)),
        ("1億2000万", Fraction(120_000_000)),
        ("2万5千円", Fraction(25_000)),
        ("1.5e3", Fraction(1500)),
        (r"1\,234", Fraction(1234)),
        (r"\frac{3}{4} = 0.75", Fraction(3, 4)),
        ("x = 3", Fraction(3)),
        ("答えは 42 です。", Fraction(42)),
        ("50%", Fraction(50)),
        ("50％", Fraction(50)),
        ("3.5 cm", Fraction(7, 2)),
        ("12個", Fraction(12)),
        # Not one number.
        ("", None),
        ("abc", None),
        ("1, 2", None),
        ("1,2,3", None),
        ("1、234", None),
        ("3時間20分", None),
        ("2^{10}", None),
        ("10^3", None),
        ("1/0", None),
        ("2024/1/2", None),
        (r"\frac{\pi}{2}", None),
        ("2π", None),
        ("√2", None),
        (r"3 \pm 1", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_decimal_is_not_the_repeating_fraction():
    assert parse_number("0.333") != parse_number("1/3")
    assert parse_number("0.5") == parse_number(r"\frac{1}{2}") == parse_number("０．５")


def test_reference_given_as_a_json_number():
    assert verify("答えは 12 です。", 12) is True  # type: ignore[arg-type]
    assert verify("答えは 0.5 です。", 0.5) is True  # type: ignore[arg-type]


# Hostile numbers: each is judged exactly, within a time bound, without being multiplied out.
MILLION = 10**6
HOSTILE_CASES = [
    # Huge exponents: compared as exponents, equal only to the same value.
    ("1e100000000", "12", False),
    ("答えは 1e100000000 です。", "1e100000000", True),
    ("10e99999999", "1e100000000", True),
    ("1e100000000", "1e100000001", False),
    ("1e-100000000", "0", False),
    ("1E+999999999999999999", "12", False),  # an 18-digit exponent is still read
    ("1e" + "9" * MILLION, "12", False),  # a million-digit exponent cannot be read
    ("答えは 12 です。", "1e" + "9" * MILLION, None),
    # A million digits: too many significant digits to read; zeros are not significant.
    ("1" * MILLION, "12", False),
    ("1" * MILLION, "1" * MILLION, None),
    ("1" + "0" * MILLION, "1e1000000", True),
    ("1" + ",000" * 300_000, "1e900000", True),
    ("0" * MILLION + "12", "12", True),
    ("12." + "0" * MILLION, "12", True),
    ("0." + "1" * MILLION, "0.1", False),
    ("0." + "0" * MILLION + "1", "0", False),
    ("0." + "0" * MILLION + "1", "1e-1000001", True),
    # Fractions with huge or nested parts.
    ("1/" + "7" * MILLION, "0", False),
    (r"\frac{1}{" + "7" * MILLION + "}", "0", False),
    ("1e100000000/1e99999999", "1e99999999", True),  # no exponent in a fraction: the last number
    ("2 " + "1" * 5000 + "/" + "2" * 5000, "2", False),
    (r"\frac{" * 100_000 + "1" + "}{2}" * 100_000, "1/2", False),
    (r"\boxed{" + "{" * 300_000 + "1", "1", True),
    # Powers are never evaluated, nor read as their base.
    ("10**10**10", "10", False),
    ("10**10**10", "10000000000", False),
    ("答えは 2^10 です。", "2", False),
    ("9" * 50 + "^" + "9" * 50, "9" * 50, False),
    # Huge Japanese forms.
    ("9" * MILLION + "兆", "12", False),
    ("1" + "0" * MILLION + "億", "1e1000008", True),
    ("1" + "0" * 20_000 + "万", "1e20004", True),
    ("1" + "0" * 20_000 + "万5", "5", False),  # a sum of parts 10**20004 apart: unreadable
    ("1" + "0" * MILLION + "兆" + "5" * 1000 + "億", "12", False),
    # Many markers after many numbers (once quadratic).
    ("1 " * 20_000 + "答えは " * 20_000, "1", True),
    ("あ" * MILLION, "1", False),
]


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    HOSTILE_CASES,
    ids=[f"{r[:24]}...{len(r)}" for r, _, _ in HOSTILE_CASES],
)
def test_hostile_numbers_are_judged_quickly(response, reference, expected):
    import time

    start = time.perf_counter()
    got = verify(response, reference)
    elapsed = time.perf_counter() - start
    assert got is expected
    assert elapsed < 1.0, f"{elapsed:.2f} s"


def test_parse_number_bounds():
    assert parse_number("1e3") == 1000 and parse_number("1.5e-2") == Fraction(3, 200)
    assert parse_number("1" + "0" * 30) == 10**30
    assert parse_number("1e100000000") is None  # too large to hold as a Fraction
    assert parse_number("2" * 1000) == int("2" * 1000)  # MAX_DIGITS significant digits
    assert parse_number("2" * 1001) is None
    assert parse_number("10**3") is None and parse_number("3**2") is None
