"""Fractions: addition and subtraction (the result reduces or not), multiplication and division
(with or without cancelling), and mixed numbers."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from math import gcd
from random import Random

from plamo_fast.synth.numbers import frac, lcm, mixed, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

DENOMS = {"easy": (2, 30), "medium": (2, 24), "hard": (3, 36)}
OPS = ("add", "sub")
YES_NO = ("yes", "no")
SYMBOL = {"add": "+", "sub": "-", "mul": "×", "div": "÷"}

ADD_JA = ("{e} を計算しなさい。", "次の計算をして、答えを既約分数で答えなさい。\n{e}",
          "{e} はいくつですか。約分できるときは約分しなさい。")  # fmt: skip
ADD_EN = ("Compute {e}. Give the answer in lowest terms.", "What is {e}?",
          "Work out {e} and simplify the result.")  # fmt: skip


def _proper(rng: Random, den: int) -> int:
    """A numerator in lowest terms with ``den``: 1 <= a < den, gcd(a, den) == 1."""
    while True:
        a = rint(rng, 1, den - 1)
        if gcd(a, den) == 1:
            return a


def _reduce_lines(n: int, d: int, ja: bool) -> tuple[list[str], str]:
    """The lines that reduce ``n/d`` (positive) and the reduced text."""
    g = gcd(n, d)
    result = frac(n, d)
    if g == 1:
        return ([f"{n}/{d} はこれ以上約分できません。" if ja else f"{n}/{d} is already in lowest terms."], result)  # fmt: skip
    if ja:
        return [f"分子と分母を最大公約数 {g} で割って約分すると、{n}/{d} = {result}"], result
    return [f"Divide the numerator and denominator by their greatest common divisor {g}: {n}/{d} = {result}"], result  # fmt: skip


@generator("fractions.add", "adding or subtracting fractions; the result reduces or not", features={"op": OPS, "reduces": YES_NO})  # fmt: skip
def add(rng: Random, spec: Spec) -> Problem:
    op = pick(rng, spec, "op", OPS)
    reduces = pick(rng, spec, "reduces", YES_NO)
    lo, hi = DENOMS[spec.difficulty]
    while True:
        b, d = rint(rng, lo, hi), rint(rng, lo, hi)
        if spec.difficulty == "easy" and b % d and d % b:
            continue  # easy: one denominator divides the other
        a, c = _proper(rng, b), _proper(rng, d)
        if op == "sub" and a * d <= c * b:
            if a * d == c * b:
                continue
            a, b, c, d = c, d, a, b
        den = lcm(b, d)
        x, y = a * (den // b), c * (den // d)
        n = x + y if op == "add" else x - y
        if (gcd(n, den) > 1) == (reduces == "yes"):
            break
    ja, sym = spec.ja, SYMBOL[op]
    expr = f"{a}/{b} {sym} {c}/{d}"
    lines = []
    if b != d:
        lines.append(f"分母を最小公倍数 {den} にそろえます（通分）。" if ja else f"Use the least common denominator {den}.")  # fmt: skip
        changed = [f"{p}/{q} = {r}/{den}" for p, q, r in ((a, b, x), (c, d, y)) if q != den]
        lines.append(("、" if ja else " and ").join(changed))
    lines.append(f"{x}/{den} {sym} {y}/{den} = {n}/{den}")
    more, result = _reduce_lines(n, den, ja)
    lines += more
    lines.append(f"よって、{expr} = {result} です。" if ja else f"So {expr} = {result}.")
    templates = ADD_JA if ja else ADD_EN
    question = templates[int(rng.random() * len(templates))].format(e=expr)
    params = {"a": a, "b": b, "c": c, "d": d, "op": op}
    return Problem(params, {"op": op, "reduces": reduces, "same_denominator": b == d}, question, "\n".join(lines), result)  # fmt: skip


MUL_OPS = ("mul", "div")
MUL_RANGES = {"easy": (2, 15), "medium": (2, 20), "hard": (2, 30)}
MUL_JA = ("{e} を計算しなさい。", "次の計算をしてください。\n{e}", "{e} の答えを既約分数で求めなさい。")  # fmt: skip
MUL_EN = ("Compute {e}.", "What is {e}? Answer in lowest terms.", "Work out {e}.")


@generator("fractions.muldiv", "multiplying or dividing fractions; cancelling or not", features={"op": MUL_OPS, "reduces": YES_NO})  # fmt: skip
def muldiv(rng: Random, spec: Spec) -> Problem:
    op = pick(rng, spec, "op", MUL_OPS)
    reduces = pick(rng, spec, "reduces", YES_NO)
    lo, hi = MUL_RANGES[spec.difficulty]
    while True:
        b, d = rint(rng, lo, hi), rint(rng, lo, hi)
        a, c = _proper(rng, b), _proper(rng, d)
        if spec.difficulty == "hard" and rng.random() < 0.5:
            a += b * rint(rng, 1, 3)  # an improper fraction
        p, q = (c, d) if op == "mul" else (d, c)
        n, den = a * p, b * q
        if (gcd(n, den) > 1) == (reduces == "yes"):
            break
    ja, sym = spec.ja, SYMBOL[op]
    expr = f"{a}/{b} {sym} {c}/{d}"
    lines = []
    if op == "div":
        lines.append(f"割る数の逆数をかけます: {expr} = {a}/{b} × {d}/{c}" if ja else f"Multiply by the reciprocal: {expr} = {a}/{b} × {d}/{c}")  # fmt: skip
    lines.append(f"分子どうし、分母どうしをかけます: ({a} × {p})/({b} × {q}) = {n}/{den}" if ja else f"Multiply numerators and denominators: ({a} × {p})/({b} × {q}) = {n}/{den}")  # fmt: skip
    more, result = _reduce_lines(n, den, ja)
    lines += more
    lines.append(f"よって、{expr} = {result} です。" if ja else f"So {expr} = {result}.")
    templates = MUL_JA if ja else MUL_EN
    question = templates[int(rng.random() * len(templates))].format(e=expr)
    params = {"a": a, "b": b, "c": c, "d": d, "op": op}
    return Problem(params, {"op": op, "reduces": reduces}, question, "\n".join(lines), result)


MIXED_WHOLE = {"easy": (1, 3), "medium": (1, 6), "hard": (1, 12)}
MIXED_JA = ("{e} を計算し、帯分数で答えなさい。", "次の計算をして、答えを帯分数で表してください。\n{e}",
            "{e} はいくつですか。帯分数で答えなさい。")  # fmt: skip
MIXED_EN = ("Compute {e} and give the answer as a mixed number.",
            "What is {e}? Write the answer as a mixed number.")  # fmt: skip


@generator("fractions.mixed", "adding or subtracting mixed numbers, answer as a mixed number", features={"op": OPS})  # fmt: skip
def mixed_numbers(rng: Random, spec: Spec) -> Problem:
    op = pick(rng, spec, "op", OPS)
    w_lo, w_hi = MIXED_WHOLE[spec.difficulty]
    lo, hi = DENOMS[spec.difficulty]
    while True:
        b, d = rint(rng, lo, hi), rint(rng, lo, hi)
        u, v = rint(rng, w_lo, w_hi), rint(rng, w_lo, w_hi)
        a, c = _proper(rng, b), _proper(rng, d)
        if op == "sub" and (u * b + a) * d < (v * d + c) * b:  # the first is the smaller
            u, a, b, v, c, d = v, c, d, u, a, b
        den = lcm(b, d)
        x, y = (u * b + a) * (den // b), (v * d + c) * (den // d)
        n = x + y if op == "add" else x - y
        g = gcd(n, den)
        rn, rd = n // g, den // g  # the result in lowest terms
        if rn > rd and rd != 1:  # more than 1, not whole
            break
    ja, sym = spec.ja, SYMBOL[op]
    expr = f"{u} {a}/{b} {sym} {v} {c}/{d}"
    lines = [
        f"帯分数を仮分数に直します: {u} {a}/{b} = {u * b + a}/{b}、{v} {c}/{d} = {v * d + c}/{d}"
        if ja
        else f"Write the mixed numbers as improper fractions: {u} {a}/{b} = {u * b + a}/{b} and {v} {c}/{d} = {v * d + c}/{d}",  # fmt: skip
    ]
    if b != d:
        lines.append(f"分母を {den} にそろえると {x}/{den} {sym} {y}/{den}" if ja else f"With the common denominator {den}: {x}/{den} {sym} {y}/{den}")  # fmt: skip
    lines.append(f"{x}/{den} {sym} {y}/{den} = {n}/{den}")
    reduced = f"{rn}/{rd}"
    if g > 1:
        lines.append(f"約分して {reduced}" if ja else f"In lowest terms: {reduced}")
    whole, rest = divmod(rn, rd)
    answer = mixed(rn, rd)
    lines.append(f"{reduced} = {whole} + {rest}/{rd} = {answer}")
    lines.append(f"よって、答えは {answer} です。" if ja else f"So the answer is {answer}.")
    templates = MIXED_JA if ja else MIXED_EN
    question = templates[int(rng.random() * len(templates))].format(e=expr)
    params = {"u": u, "a": a, "b": b, "v": v, "c": c, "d": d, "op": op}
    return Problem(params, {"op": op}, question, "\n".join(lines), answer)
