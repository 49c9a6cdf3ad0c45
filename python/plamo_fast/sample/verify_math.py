"""Rule-based check of a model's final math answer against a reference answer, for scoring
on-policy samples of (Japanese, template-generated) math problems as in the PLaMo recipe.

:func:`verify` extracts the final answer from the response (:func:`extract_answer`), reads both
sides as exact rationals (:func:`parse_number`) and compares them. Nothing is evaluated: there is
no ``eval`` and no arithmetic beyond reading a single number.

Text is normalised first: full-width ASCII (``０-９``, ``．``, ``／``, ``－``, ``，``, ``％``,
``：``, ``＼``) and the ideographic space become their ASCII forms, the minus-like dashes
(``−``, ``–``, ``‐``, ``﹣``) become ``-``, and vulgar fractions (``½``) become ``1/2``.

Answer extraction, in order of priority:

1. the content of the last ``\\boxed{...}`` (or ``\\fbox``; nested braces are balanced; an
   unclosed one, as in a truncated response, takes the rest of the text);
2. after the last final-answer marker (``答え：``, ``答えは``, ``解答：``, ``正解は``,
   ``【答え】``, ``Answer:``, ``the answer is``, GSM8K's ``####``), the first number of the
   marker's sentence (up to ``。``, a line end or ``. ``), or the first number after the
   sentence's last ``=`` if it has one (``答えは 3 + 4 = 7 です`` gives 7); when the marker's
   sentence has no number (``答えは次の通りです。``), the same from the next number on; when no
   number follows the last marker, the marker before it;
3. the last number in the text.

A number is an integer or decimal with an optional sign and ``,`` thousands separators
(``1,234``; a group of other than three digits separates numbers: ``1,2,3`` is three numbers), a
fraction ``a/b`` (TeX ``\\frac{a}{b}``, ``\\dfrac``, ``\\tfrac``, ``\\frac12``), a mixed number
``2 1/3`` or ``2\\frac{1}{3}`` (only when the fraction part is proper), Japanese ``4分の3``
(= 3/4) and ``万``/``億``/``兆``/``千`` multipliers (``3万`` = 30000, ``1億2000万``), or
scientific ``1.5e3``. Digits glued to an ASCII letter, ``^`` or ``_`` (``cm^2``, ``x2``, ``CO2``)
are not numbers, so units before or after a number (``12個``, ``3.5 cm``, ``¥1,000``) and words
around it (``答えは 42 です。``) do not get in the way.

Decisions worth knowing:

* The comparison is exact (:class:`fractions.Fraction`): ``0.5 == 1/2 == \\frac{1}{2} == ０．５``
  and ``42 == 42.0``, but ``0.333 != 1/3`` and ``3.14 != π``; rounded answers are wrong.
* ``%`` is dropped, not scaled: ``50%`` reads as 50, so it equals ``50`` and not ``0.5``.
* :func:`parse_number` accepts a text only when all the numbers in it have one value
  (``x = 3``, ``\\frac{3}{4} = 0.75``); ``1, 2, 3``, ``3時間20分``, ``2\\sqrt{3}``, ``2^{10}``, any
  TeX command other than formatting ones (``\\text``, ``\\mathrm``, ``\\left`` ...), and ``π``,
  ``√``, ``∞``, ``±`` give ``None``.
* :func:`verify` returns ``None`` when the reference cannot be read (the caller records the score
  as missing), and ``False`` when the response has no number or an unreadable final answer. A
  reference that is a whole solution (GSM8K ``... #### 72``, or a MATH solution with
  ``\\boxed{}``) is read through :func:`extract_answer`.
* A number raised to a power (``2^{10}``, ``10**10**10``) is an answer that cannot be read, not
  its base: it is never evaluated.

Bounds (hostile answers such as ``1e100000000`` are judged in milliseconds, never computed):

* A number is held as ``num/den * 2**a * 5**b`` in a canonical form, so powers of ten are
  exponents, never multiplied out: ``1e100000000`` equals ``10e99999999`` and nothing else, and
  the comparison costs the same as for ``12``.
* An integer or decimal has at most :data:`MAX_DIGITS` (1000) significant digits (leading and
  trailing zeros do not count: a 1 with a million zeros is read); a scientific exponent has at
  most :data:`MAX_EXPONENT_DIGITS` (18) digits. A longer one cannot be read.
* A sum (a mixed number ``2 1/3``, ``1億2000万``) of parts whose powers of 2 or 5 differ by more
  than :data:`MAX_SCALE` (10000) cannot be read; nor can :func:`parse_number` return a Fraction
  holding such a power (it returns None, while :func:`verify` still compares the value).
* An unreadable number is a wrong final answer, and an unreadable reference is a missing score.
  Reading is linear in the text's length, with no backtracking into digit runs: a 1 MB answer of
  one number takes about 0.2 s; a text made of many numbers about 6 µs per number.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import partial

__all__ = ["extract_answer", "parse_number", "verify"]

# --- normalisation -------------------------------------------------------------------------

_TRANSLATE: dict[int, int | str] = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_TRANSLATE[0x3000] = " "  # ideographic space
_TRANSLATE.update({ord(c): "-" for c in "\u2212\u2012\u2013\u2010\u2011\ufe63"})
_TRANSLATE.update({0x2044: "/", 0x2215: "/"})  # fraction slash, division slash
_VULGAR_RE = re.compile("[\u00bc-\u00be\u2150-\u215e]")


def _vulgar(m: re.Match[str]) -> str:
    text = unicodedata.normalize("NFKC", m.group()).replace("\u2044", "/")
    glued = m.start() > 0 and m.string[m.start() - 1] in _DIGITS
    return " " + text if glued else text  # 2½ is the mixed number 2 1/2


def _basic(text: str) -> str:
    """Full-width forms and dash variants to ASCII; vulgar fractions to ``a/b``."""
    return _VULGAR_RE.sub(_vulgar, text.translate(_TRANSLATE))


_DIGITS = "0123456789"
# An unsigned integer or decimal; atomic, so that a long run of digits is read once and never
# backtracked into digit by digit.
_U = r"(?>(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)"

_FRAC_TEX_RE = re.compile(
    rf"\\[dtc]?frac(?![A-Za-z])\s*(?:\{{\s*(?P<a>[-+]?{_U})\s*\}}|(?P<a1>[0-9]))"
    rf"\s*(?:\{{\s*(?P<b>[-+]?{_U})\s*\}}|(?P<b1>[0-9]))"
)
_FORMATTING_RE = re.compile(
    r"\\(?:text|textrm|textbf|textit|textnormal|mathrm|mathbf|mathit|mathnormal|mbox|hbox"
    r"|boxed|fbox|displaystyle|textstyle|left|right|bigl|bigr|Bigl|Bigr|big|Big|quad|qquad)"
    r"(?![A-Za-z])"
)
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\degree(?![A-Za-z])|°")
_TEX_THOUSANDS_RE = re.compile(r"(?<=[0-9])(?:\\[,;:!]|\{,\})(?=[0-9]{3}(?![0-9]))")


def _tex_frac(m: re.Match[str]) -> str:
    text = f"{m.group('a') or m.group('a1')}/{m.group('b') or m.group('b1')}"
    glued = m.start() > 0 and m.string[m.start() - 1] in _DIGITS
    return " " + text if glued else text  # 2\frac{1}{3} is the mixed number 2 1/3


def _simplify(text: str) -> str:
    """Simple TeX to plain text: math delimiters and formatting commands go, ``\\frac{a}{b}``
    becomes ``a/b``; other commands (``\\sqrt``, ``\\pi``) stay, braces go."""
    s = text.replace("\\$", "").replace("$", "").replace("\\%", "%")
    s = re.sub(r"\\[()\[\]]", " ", s)
    s = _TEX_THOUSANDS_RE.sub(",", s)
    s = _FRAC_TEX_RE.sub(_tex_frac, s)
    s = _DEGREE_RE.sub("", s)
    s = _FORMATTING_RE.sub("", s)
    s = re.sub(r"\\\\|\\[,;:! ]|~", " ", s)
    return s.replace("\\{", "").replace("\\}", "").replace("{", "").replace("}", "")


# --- numbers -------------------------------------------------------------------------------

MAX_DIGITS = 1000  # significant digits of one integer or decimal
MAX_EXPONENT_DIGITS = 18  # digits of a scientific exponent: |e| < 10**18
MAX_SCALE = 10_000  # largest power of 2 or 5 multiplied out (sums, parse_number's Fraction)

_MIXED_RE = re.compile(
    r"(?P<w>[0-9]++)[ \t]++(?P<n>[0-9]++)[ \t]*+/[ \t]*+(?P<d>[0-9]++)(?![0-9.])"
)
_BUNNO_RE = re.compile(rf"(?P<d>{_U})\s*分の\s*(?P<n>{_U})")  # 4分の3 = 3/4
_FRAC_RE = re.compile(
    rf"(?P<n>{_U})[ \t]*/[ \t]*(?P<s>[-+]?)(?P<d>{_U})(?![ \t]*/[ \t]*[0-9])"  # not 2024/1/2
)
_JP_RE = re.compile(rf"(?:(?P<t>{_U})兆)?(?:(?P<o>{_U})億)?(?:(?P<m>{_U})万)?(?:(?P<k>{_U})千)?")
_JP_TAIL_RE = re.compile(_U)
_PLAIN_RE = re.compile(rf"{_U}(?:[eE][-+]?+[0-9]++)?")
_U_RE = re.compile(_U)
# What may follow the digits of a number that is more than plain digits (each form above).
_CONTINUED_RE = re.compile(r"\s*+分|[ \t]*+(?:[/兆億万千]|[0-9]++[ \t]*+/)|[eE][-+]?[0-9]")
_POWER_RE = re.compile(r"(?:[ \t]*+(?:\^|\*\*)[ \t]*+[-+]?+[0-9]*+(?:\.[0-9]++)?+)++")
_PERCENT_RE = re.compile(r"[ \t]*%")
_START_RE = re.compile(r"[-+0-9]|\.(?=[0-9])")
_ASCII_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NOT_BEFORE_NUMBER = frozenset(_ASCII_LETTERS + _DIGITS + "._^\\")
_NOT_BEFORE_SIGN = frozenset(_ASCII_LETTERS + _DIGITS + "._^\\)]}")
_UNSUPPORTED_RE = re.compile(r"\\[A-Za-z]+|[π√∛∞±∓]")
_JP_UNITS = {"t": 12, "o": 8, "m": 4, "k": 3}  # powers of ten


@dataclass(frozen=True)
class _Value:
    """The exact value ``num/den * 2**twos * 5**fives`` in its one canonical form: ``num`` and
    ``den`` coprime, ``den > 0``, neither divisible by 2 or 5; zero is ``0/1``. Two values are
    equal exactly when these four integers are, however large the exponents (``1e100000000``
    is compared without being multiplied out)."""

    num: int
    den: int
    twos: int
    fives: int


_ZERO = _Value(0, 1, 0, 0)


def _strip_factor(n: int, p: int) -> tuple[int, int]:
    """``(k, n / p**k)`` for the largest k with p**k dividing n (n != 0)."""
    if p == 2:
        k = (n & -n).bit_length() - 1
        return k, n >> k
    k = 0
    while n % 5**16 == 0:
        n, k = n // 5**16, k + 16
    while n % 5 == 0:
        n, k = n // 5, k + 1
    return k, n


def _value(num: int, den: int, twos: int = 0, fives: int = 0) -> _Value | None:
    """``num/den * 2**twos * 5**fives`` in canonical form; None for a zero denominator."""
    if den == 0:
        return None
    if num == 0:
        return _ZERO
    if den < 0:
        num, den = -num, -den
    g = math.gcd(num, den)
    num, den = num // g, den // g
    twos_up, num = _strip_factor(num, 2)
    twos_down, den = _strip_factor(den, 2)
    fives_up, num = _strip_factor(num, 5)
    fives_down, den = _strip_factor(den, 5)
    return _Value(num, den, twos + twos_up - twos_down, fives + fives_up - fives_down)


def _decimal(text: str) -> _Value | None:
    """``1,234.50`` or ``1.5e-3``; None beyond :data:`MAX_DIGITS` significant digits or an
    exponent of more than :data:`MAX_EXPONENT_DIGITS` digits. Leading and trailing zeros are
    not significant: ``1`` followed by a million zeros is read (as 1 * 10**1000000)."""
    mantissa, _, exponent = text.replace(",", "").lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    significant = digits.rstrip("0")
    if len(significant) > MAX_DIGITS:
        return None
    if len(exponent.lstrip("+-").lstrip("0")) > MAX_EXPONENT_DIGITS:
        return None
    if not significant:
        return _ZERO
    shift = len(digits) - len(significant) - len(fraction) + (int(exponent) if exponent else 0)
    return _value(int(significant), 1, shift, shift)


def _fraction(v: _Value | None) -> Fraction | None:
    """As a Fraction; None when a power of 2 or 5 in it exceeds :data:`MAX_SCALE`."""
    if v is None or max(abs(v.twos), abs(v.fives)) > MAX_SCALE:
        return None
    num = v.num * 2 ** max(v.twos, 0) * 5 ** max(v.fives, 0)
    return Fraction(num, v.den * 2 ** max(-v.twos, 0) * 5 ** max(-v.fives, 0))


def _from_fraction(f: Fraction | None) -> _Value | None:
    return None if f is None else _value(f.numerator, f.denominator)


def _ratio(n: _Value | None, d: _Value | None) -> _Value | None:
    if n is None or d is None or d.num == 0:
        return None
    return _value(n.num * d.den, n.den * d.num, n.twos - d.twos, n.fives - d.fives)


def _negate(v: _Value | None) -> _Value | None:
    return None if v is None else _Value(-v.num, v.den, v.twos, v.fives)


def _add(a: _Value | None, b: _Value | None) -> _Value | None:
    """``a + b``; None when their powers of 2 or 5 differ by more than :data:`MAX_SCALE`."""
    if a is None or b is None:
        return None
    if a.num == 0 or b.num == 0:
        return b if a.num == 0 else a
    twos, fives = min(a.twos, b.twos), min(a.fives, b.fives)
    if max(a.twos, b.twos) - twos > MAX_SCALE or max(a.fives, b.fives) - fives > MAX_SCALE:
        return None
    a_num = a.num * 2 ** (a.twos - twos) * 5 ** (a.fives - fives)
    b_num = b.num * 2 ** (b.twos - twos) * 5 ** (b.fives - fives)
    return _value(a_num * b.den + b_num * a.den, a.den * b.den, twos, fives)


def _mixed(m: re.Match[str]) -> _Value | None:
    """``2 1/3``, only when the fraction is proper."""
    num, den = _fraction(_decimal(m["n"])), _fraction(_decimal(m["d"]))
    if num is None or den is None or not 0 < num < den:
        return None
    return _add(_decimal(m["w"]), _from_fraction(num / den))


def _times_ten_to(v: _Value | None, power: int) -> _Value | None:
    return v if v is None or v.num == 0 else replace(v, twos=v.twos + power, fives=v.fives + power)


def _japanese(m: re.Match[str], tail: str) -> _Value | None:
    """``1億2000万``, ``2万5千``, ``3万5``: each part times its unit, plus a plain tail."""
    total = _decimal(tail) if tail else _ZERO
    for group, power in _JP_UNITS.items():
        if m[group]:
            total = _add(total, _times_ten_to(_decimal(m[group]), power))
    return total


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int
    read: Callable[[], _Value | None]  # the value, read only when asked for; None: unreadable

    @property
    def value(self) -> _Value | None:
        return self.read()


def _quotient(num: str, den: str) -> _Value | None:
    """``num/den`` from their texts; ``den`` may carry a sign (``3 / -4``)."""
    d = _decimal(den.lstrip("+-"))
    return _ratio(_decimal(num), _negate(d) if den.startswith("-") else d)


def _number_at(s: str, pos: int) -> tuple[Callable[[], _Value | None], int] | None:
    """The unsigned number starting exactly at ``pos``: (how to read its value, end). Reading
    is deferred: answer extraction needs only where the numbers are."""
    m = _U_RE.match(s, pos)
    if m is None:
        return None
    if not _CONTINUED_RE.match(s, m.end()):  # a plain number: its digits are read only once
        return partial(_decimal, m.group()), m.end()
    m = _MIXED_RE.match(s, pos)
    if m and (value := _mixed(m)) is not None:
        return (lambda: value), m.end()
    if m := _BUNNO_RE.match(s, pos):
        return partial(_quotient, m["n"], m["d"]), m.end()
    if m := _FRAC_RE.match(s, pos):
        return partial(_quotient, m["n"], m["s"] + m["d"]), m.end()
    m = _JP_RE.match(s, pos)
    if m and any(m[g] for g in _JP_UNITS):
        tail = _JP_TAIL_RE.match(s, m.end())
        return partial(_japanese, m, tail.group() if tail else ""), tail.end() if tail else m.end()
    if m := _PLAIN_RE.match(s, pos):
        return partial(_decimal, m.group()), m.end()
    return None


def _unreadable() -> None:
    return None


def _scan(s: str) -> list[_Token]:
    """Every number in ``s`` (already normalised and simplified), left to right. A number raised
    to a power (``2^10``, ``10**10**10``) is one token that cannot be read."""
    tokens: list[_Token] = []
    i, n = 0, len(s)
    while (found := _START_RE.search(s, i)) is not None:
        i = found.start()
        c = s[i]
        before = s[i - 1] if i else ""
        if c in "+-":
            if before in _NOT_BEFORE_SIGN or i + 1 == n:
                i += 1
                continue
            start, digits = i, i + 1
        elif before in _NOT_BEFORE_NUMBER:
            i += 1
            continue
        else:
            start, digits = i, i
        number = _number_at(s, digits)
        if number is None:
            i += 1
            continue
        read, end = number
        if power := _POWER_RE.match(s, end):
            read, end = _unreadable, power.end()
        elif c == "-":
            read = _negated(read)
        if m := _PERCENT_RE.match(s, end):
            end = m.end()
        tokens.append(_Token(s[start:end], start, end, read))
        i = end
    return tokens


def _negated(read: Callable[[], _Value | None]) -> Callable[[], _Value | None]:
    return lambda: _negate(read())


def _read(text: str) -> _Value | None:
    """The one value of all the numbers in ``text`` (see :func:`parse_number`)."""
    s = _simplify(_basic(text))
    if _UNSUPPORTED_RE.search(s):
        return None
    tokens = _scan(s)
    if not tokens:
        return None
    values = {t.value for t in tokens}
    if len(values) != 1 or None in values:
        return None
    return tokens[0].value


def parse_number(text: str) -> Fraction | None:
    """The exact value of a numeric answer such as ``-1,234``, ``０．５``, ``\\frac{3}{4}``,
    ``\\boxed{12}``, ``12個``, ``x = 3`` or ``答えは 42 です。``.

    ``None`` when the text has no number, numbers of different values (``1, 2``), a power
    (``2^{10}``, ``10**3``), a zero denominator, a number beyond the bounds in the module text,
    or TeX/symbols this module does not read (``\\sqrt``, ``π``). ``%`` is ignored: ``50%`` is
    50. A value too large to hold as a Fraction (``1e100000``) is None here, but :func:`verify`
    still compares it exactly.
    """
    return _fraction(_read(text))


# --- extraction ----------------------------------------------------------------------------

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_MARKER_RE = re.compile(
    r"####"
    r"|(?:答え|解答|正解|答)\s*(?:は|[:=】\]])"
    r"|\banswer\b\s*(?:\*+\s*)?(?:is\b|[:=])",
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"\n|。|\.(?=\s|$)")
_BRACE_RE = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped character, or a brace


def _last_boxed(s: str) -> str | None:
    starts = [m.end() for m in _BOXED_RE.finditer(s)]
    if not starts:
        return None
    i = starts[-1]
    while i < len(s) and s[i] in " \t":
        i += 1
    if i == len(s) or s[i] != "{":  # \boxed 5
        return s[i:].split(maxsplit=1)[0] if s[i:].strip() else ""
    depth = 0
    for m in _BRACE_RE.finditer(s, i):
        if m.group() == "{":
            depth += 1
        elif m.group() == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : m.start()]
    return s[i + 1 :]  # unclosed (truncated): the rest


def _after_marker(s: str, tokens: list[_Token], pos: int) -> _Token:
    """The answer after a marker ending at ``pos``, which has a number after it."""
    after = [t for t in tokens if t.start >= pos]
    m = _SENTENCE_END_RE.search(s, pos)
    end = m.start() if m else len(s)
    if after[0].start >= end:  # 答えは次の通りです。: the sentence of the next number
        pos = after[0].start
        m = _SENTENCE_END_RE.search(s, pos)
        end = m.start() if m else len(s)
    sentence = [t for t in after if pos <= t.start < end]
    equals = s.rfind("=", pos, end)
    result = [t for t in sentence if t.start > equals] if equals >= 0 else []
    return (result or sentence)[0]


def extract_answer(text: str) -> str | None:
    """The final answer in a model response: the last ``\\boxed{}``'s content, else the number
    after the last final-answer marker (``答えは``, ``Answer:``, ``####`` ...), else the last
    number; ``None`` when there is none. The string is returned normalised (half-width; outside
    ``\\boxed{}``, TeX fractions as ``a/b``) and is meant for :func:`parse_number`."""
    s = _basic(text)
    boxed = _last_boxed(s)
    if boxed is not None:
        return boxed.strip()
    s = _simplify(s)
    tokens = _scan(s)
    if not tokens:
        return None
    # The last marker that has a number after it (a marker after the last number is ignored).
    last = tokens[-1].start
    markers = [m.end() for m in _MARKER_RE.finditer(s, 0, last + 1) if m.end() <= last]
    if markers:
        return _after_marker(s, tokens, markers[-1]).text
    return tokens[-1].text


def _reference_value(reference: str) -> _Value | None:
    value = _read(reference)
    if value is None:
        s = _basic(reference)
        if _BOXED_RE.search(s) or "####" in s:  # a whole solution
            answer = extract_answer(reference)
            value = None if answer is None else _read(answer)
    return value


def verify(response: str, reference: str) -> bool | None:
    """Whether the response's final answer equals the reference exactly (as rationals).

    ``None`` when the reference cannot be read as a number (record the score as missing);
    ``False`` when the response has no number or its final answer cannot be read.
    """
    if not isinstance(reference, str):  # a JSON number, passed as is
        reference = str(reference)
    expected = _reference_value(reference)
    if expected is None:
        return None
    answer = extract_answer(response)
    if answer is None:
        return False
    return _read(answer) == expected
