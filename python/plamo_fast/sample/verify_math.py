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
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

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
_U = r"(?:(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)"  # unsigned

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

_MIXED_RE = re.compile(r"(?P<w>[0-9]+)[ \t]+(?P<n>[0-9]+)[ \t]*/[ \t]*(?P<d>[0-9]+)(?![0-9.])")
_BUNNO_RE = re.compile(rf"(?P<d>{_U})\s*分の\s*(?P<n>{_U})")  # 4分の3 = 3/4
_FRAC_RE = re.compile(
    rf"(?P<n>{_U})[ \t]*/[ \t]*(?P<s>[-+]?)(?P<d>{_U})(?![ \t]*/[ \t]*[0-9])"  # not 2024/1/2
)
_JP_RE = re.compile(rf"(?:(?P<t>{_U})兆)?(?:(?P<o>{_U})億)?(?:(?P<m>{_U})万)?(?:(?P<k>{_U})千)?")
_JP_TAIL_RE = re.compile(_U)
_PLAIN_RE = re.compile(rf"{_U}(?:[eE][-+]?[0-9]+)?")
_PERCENT_RE = re.compile(r"[ \t]*%")
_ASCII_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NOT_BEFORE_NUMBER = frozenset(_ASCII_LETTERS + _DIGITS + "._^\\")
_NOT_BEFORE_SIGN = frozenset(_ASCII_LETTERS + _DIGITS + "._^\\)]}")
_UNSUPPORTED_RE = re.compile(r"\\[A-Za-z]+|[π√∛∞±∓]")
_JP_UNITS = {"t": 10**12, "o": 10**8, "m": 10**4, "k": 10**3}


@dataclass(frozen=True)
class _Token:
    text: str
    value: Fraction | None  # None: a zero denominator
    start: int
    end: int


def _u(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def _ratio(n: Fraction, d: Fraction) -> Fraction | None:
    return None if d == 0 else n / d


def _number_at(s: str, pos: int) -> tuple[Fraction | None, int] | None:
    """The unsigned number starting exactly at ``pos``: (value, end)."""
    m = _MIXED_RE.match(s, pos)
    if m and 0 < int(m["n"]) < int(m["d"]):
        return int(m["w"]) + Fraction(int(m["n"]), int(m["d"])), m.end()
    if m := _BUNNO_RE.match(s, pos):
        return _ratio(_u(m["n"]), _u(m["d"])), m.end()
    if m := _FRAC_RE.match(s, pos):
        d = -_u(m["d"]) if m["s"] == "-" else _u(m["d"])
        return _ratio(_u(m["n"]), d), m.end()
    m = _JP_RE.match(s, pos)
    if m and any(m[g] for g in _JP_UNITS):
        value = sum((_u(m[g]) * mult for g, mult in _JP_UNITS.items() if m[g]), Fraction(0))
        end = m.end()
        if tail := _JP_TAIL_RE.match(s, end):
            value, end = value + _u(tail.group()), tail.end()
        return value, end
    if m := _PLAIN_RE.match(s, pos):
        return Fraction(m.group().replace(",", "")), m.end()
    return None


def _scan(s: str) -> list[_Token]:
    """Every number in ``s`` (already normalised and simplified), left to right."""
    tokens: list[_Token] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        before = s[i - 1] if i else ""
        if c in "+-" and before not in _NOT_BEFORE_SIGN:
            start, digits = i, i + 1
        elif c in _DIGITS or (c == "." and i + 1 < n and s[i + 1] in _DIGITS):
            if before in _NOT_BEFORE_NUMBER:
                i += 1
                continue
            start, digits = i, i
        else:
            i += 1
            continue
        found = _number_at(s, digits) if digits < n else None
        if found is None:
            i += 1
            continue
        value, end = found
        if value is not None and c == "-":
            value = -value
        if m := _PERCENT_RE.match(s, end):
            end = m.end()
        tokens.append(_Token(s[start:end], value, start, end))
        i = end
    return tokens


def parse_number(text: str) -> Fraction | None:
    """The exact value of a numeric answer such as ``-1,234``, ``０．５``, ``\\frac{3}{4}``,
    ``\\boxed{12}``, ``12個``, ``x = 3`` or ``答えは 42 です。``.

    ``None`` when the text has no number, numbers of different values (``1, 2``), a power
    (``2^{10}``), a zero denominator, or TeX/symbols this module does not read (``\\sqrt``,
    ``π``). ``%`` is ignored: ``50%`` is 50.
    """
    s = _simplify(_basic(text))
    if _UNSUPPORTED_RE.search(s):
        return None
    tokens = _scan(s)
    if not tokens:
        return None
    values = {t.value for t in tokens}
    if len(values) != 1 or None in values:
        return None
    if any(re.match(r"[ \t]*\^", s[t.end :]) for t in tokens):
        return None
    return tokens[0].value


# --- extraction ----------------------------------------------------------------------------

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_MARKER_RE = re.compile(
    r"####"
    r"|(?:答え|解答|正解|答)\s*(?:は|[:=】\]])"
    r"|\banswer\b\s*(?:\*+\s*)?(?:is\b|[:=])",
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"\n|。|\.(?=\s|$)")


def _last_boxed(s: str) -> str | None:
    starts = [m.end() for m in _BOXED_RE.finditer(s)]
    if not starts:
        return None
    i = starts[-1]
    while i < len(s) and s[i] in " \t":
        i += 1
    if i == len(s) or s[i] != "{":  # \boxed 5
        return s[i:].split(maxsplit=1)[0] if s[i:].strip() else ""
    depth, j = 0, i
    while j < len(s):
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j]
        j += 1
    return s[i + 1 :]  # unclosed (truncated): the rest


def _after_marker(s: str, tokens: list[_Token], pos: int) -> _Token | None:
    after = [t for t in tokens if t.start >= pos]
    if not after:
        return None
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
    for marker in reversed(list(_MARKER_RE.finditer(s))):
        token = _after_marker(s, tokens, marker.end())
        if token is not None:
            return token.text
    return tokens[-1].text


def _reference_value(reference: str) -> Fraction | None:
    value = parse_number(reference)
    if value is None:
        s = _basic(reference)
        if _BOXED_RE.search(s) or "####" in s:  # a whole solution
            answer = extract_answer(reference)
            value = None if answer is None else parse_number(answer)
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
    return parse_number(answer) == expected
