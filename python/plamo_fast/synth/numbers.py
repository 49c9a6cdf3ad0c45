"""Exact numbers as text, shared by the generators.

Answers are exact: integers, reduced fractions ``p/q``, mixed numbers ``w p/q`` and terminating
decimals, always computed with integers (a rational as its numerator and denominator) and never
with floats. Plain int arithmetic gives what :class:`fractions.Fraction` would, several times
faster (building one Fraction costs more than the whole reduction). The forms below are the
ones :func:`plamo_fast.sample.verify_math.verify` reads.
"""

from __future__ import annotations

from math import gcd
from random import Random

__all__ = [
    "dec",
    "frac",
    "lcm",
    "linear",
    "mixed",
    "paren",
    "rint",
    "scaled",
    "signed",
]


def rint(rng: Random, lo: int, hi: int) -> int:
    """A uniform integer in ``[lo, hi]`` (faster than ``Random.randint``)."""
    return lo + int(rng.random() * (hi - lo + 1))


def lcm(a: int, b: int) -> int:
    return a // gcd(a, b) * b


def _lowest(n: int, d: int) -> tuple[int, int]:
    """``n/d`` in lowest terms with a positive denominator (as :class:`Fraction` keeps it)."""
    if not d:
        raise ZeroDivisionError(f"{n}/0")
    g = gcd(n, d)
    if d < 0:
        g = -g
    return n // g, d // g


def frac(n: int, d: int = 1) -> str:
    """``n/d`` reduced: ``7/3``, ``-1/2``, or an integer ``5``."""
    if d == 1:
        return str(n)
    n, d = _lowest(n, d)
    return str(n) if d == 1 else f"{n}/{d}"


def mixed(n: int, d: int) -> str:
    """``n/d`` as a mixed number ``2 1/3`` (``-2 1/3``) when ``|n/d| > 1`` is not an integer,
    else :func:`frac`."""
    n, d = _lowest(n, d)
    if d == 1 or abs(n) < d:
        return frac(n, d)
    w, r = divmod(abs(n), d)
    sign = "-" if n < 0 else ""
    return f"{sign}{w} {r}/{d}"


def dec(n: int, d: int = 1) -> str:
    """The exact decimal of ``n/d`` when its reduced denominator has only the factors 2 and 5
    (``0.75``, ``-12.5``, ``3``); ValueError otherwise."""
    if d == 1:
        return str(n)
    if d < 0:
        n, d = -n, -d
    # The fewest places that make n × 10**places a multiple of d are the decimals needed; a
    # terminating n/d needs fewer than d.bit_length() (10**places must hold d's 2s and 5s).
    for places in range(d.bit_length()):
        value, rest = divmod(n * 10**places, d)
        if not rest:
            return scaled(value, places)
    raise ValueError(f"{n}/{d} has no terminating decimal")


def scaled(value: int, places: int) -> str:
    """The decimal ``value / 10**places`` without trailing zeros: ``scaled(1250, 3) == '1.25'``."""
    if places <= 0:
        return str(value * 10**-places)
    sign = "-" if value < 0 else ""
    whole, part = divmod(abs(value), 10**places)
    part_text = str(part).rjust(places, "0").rstrip("0")
    return f"{sign}{whole}.{part_text}" if part_text else f"{sign}{whole}"


def paren(q: int) -> str:
    """A value as a factor: negatives in parentheses (``(-3)``)."""
    return f"({q})" if q < 0 else str(q)


def signed(q: int) -> str:
    """``+ 3`` or ``- 3`` (a term after the first)."""
    return f"- {-q}" if q < 0 else f"+ {q}"


def linear(coefs: tuple | list, names: tuple | list | str, const: int = 0) -> str:
    """A linear expression: ``linear((3, -1), "xy", 2) == '3x - y + 2'``; zero terms left out;
    ``0`` when everything is zero."""
    text = ""
    for i, c in enumerate(coefs):
        if not c:
            continue
        magnitude = "" if c == 1 or c == -1 else str(-c if c < 0 else c)
        if text:
            text += (" - " if c < 0 else " + ") + magnitude + names[i]
        else:
            text = ("-" if c < 0 else "") + magnitude + names[i]
    if const or not text:
        text = f"{text} {signed(const)}" if text else str(const)
    return text
