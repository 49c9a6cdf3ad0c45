"""Exact numbers as text, shared by the generators.

Answers are exact: integers, reduced fractions ``p/q``, mixed numbers ``w p/q`` and terminating
decimals, always computed with ints or :class:`fractions.Fraction` and never with floats. The
forms below are the ones :func:`plamo_fast.sample.verify_math.verify` reads.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd
from random import Random

__all__ = [
    "dec",
    "frac",
    "lcm",
    "linear",
    "mixed",
    "num",
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


def frac(n: int | Fraction, d: int = 1) -> str:
    """``n/d`` reduced: ``7/3``, ``-1/2``, or an integer ``5``."""
    if type(n) is int and d == 1:  # (type checks: isinstance against Fraction, an ABC, is slow)
        return str(n)
    q = n if type(n) is Fraction and d == 1 else Fraction(n, d)
    if q.denominator == 1:
        return str(q.numerator)
    return f"{q.numerator}/{q.denominator}"


def mixed(q: Fraction) -> str:
    """A mixed number ``2 1/3`` (``-2 1/3``) when ``|q| > 1`` is not an integer, else
    :func:`frac`."""
    if q.denominator == 1 or abs(q) < 1:
        return frac(q)
    w, r = divmod(abs(q.numerator), q.denominator)
    sign = "-" if q < 0 else ""
    return f"{sign}{w} {r}/{q.denominator}"


def dec(q: Fraction | int) -> str:
    """The exact decimal of a rational whose denominator has only the factors 2 and 5
    (``0.75``, ``-12.5``, ``3``); ValueError otherwise."""
    if type(q) is int:
        return str(q)
    d, places = q.denominator, 0
    while d % 10 == 0:
        d //= 10
        places += 1
    while d % 2 == 0:
        d //= 2
        places += 1
    while d % 5 == 0:
        d //= 5
        places += 1
    if d != 1:
        raise ValueError(f"{q} has no terminating decimal")
    return scaled(q.numerator * 10**places // q.denominator, places)


def scaled(value: int, places: int) -> str:
    """The decimal ``value / 10**places`` without trailing zeros: ``scaled(1250, 3) == '1.25'``."""
    if places <= 0:
        return str(value * 10**-places)
    sign = "-" if value < 0 else ""
    whole, part = divmod(abs(value), 10**places)
    part_text = str(part).rjust(places, "0").rstrip("0")
    return f"{sign}{whole}.{part_text}" if part_text else f"{sign}{whole}"


def num(q: Fraction | int) -> str:
    """An integer or a reduced fraction (the usual form of an intermediate value)."""
    return str(q) if type(q) is int else frac(q)


def paren(q: Fraction | int) -> str:
    """A value as a factor: negatives and fractions in parentheses (``(-3)``, ``(2/5)``)."""
    text = num(q)
    return f"({text})" if q < 0 or "/" in text else text


def signed(q: Fraction | int) -> str:
    """``+ 3`` or ``- 3`` (a term after the first)."""
    return f"- {num(-q)}" if q < 0 else f"+ {num(q)}"


def linear(coefs: tuple | list, names: tuple | list | str, const: int | Fraction = 0) -> str:
    """A linear expression: ``linear((3, -1), "xy", 2) == '3x - y + 2'``; zero terms left out;
    ``0`` when everything is zero."""
    text = ""
    for i, c in enumerate(coefs):
        if not c:
            continue
        magnitude = (
            ""
            if c == 1 or c == -1
            else (str(-c if c < 0 else c) if type(c) is int else num(abs(c)))
        )
        if text:
            text += (" - " if c < 0 else " + ") + magnitude + names[i]
        else:
            text = ("-" if c < 0 else "") + magnitude + names[i]
    if const or not text:
        text = f"{text} {signed(const)}" if text else num(const)
    return text
