"""Decimal arithmetic: addition, subtraction, multiplication and exact division, computed on
scaled integers (``1.25`` is ``125`` with 2 places), never on floats."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import rint, scaled
from plamo_fast.synth.registry import Problem, Spec, generator, pick

OPS = ("add", "sub", "mul", "div")
SYMBOL = {"add": "+", "sub": "-", "mul": "×", "div": "÷"}
PLACES = {"easy": (1, 1), "medium": (1, 2), "hard": (1, 3)}
SIZE = {"easy": 99, "medium": 999, "hard": 9999}
QUESTION_JA = ("{e} を計算しなさい。", "次の計算をしてください。\n{e}", "{e} はいくつですか。")
QUESTION_EN = ("Compute {e}.", "What is {e}?", "Work out {e}.")


def _decimal(rng: Random, spec: Spec) -> tuple[int, int]:
    """A positive decimal (value, places) whose last decimal digit is not 0."""
    lo, hi = PLACES[spec.difficulty]
    places = rint(rng, lo, hi)
    while True:
        value = rint(rng, 1, SIZE[spec.difficulty])
        if value % 10:
            return value, places


@generator("decimals.arith", "decimal addition, subtraction, multiplication, division", features={"op": OPS})  # fmt: skip
def arith(rng: Random, spec: Spec) -> Problem:
    op = pick(rng, spec, "op", OPS)
    ja = spec.ja
    while True:
        (x, p), (y, q) = _decimal(rng, spec), _decimal(rng, spec)
        top = max(p, q)
        xs, ys = x * 10 ** (top - p), y * 10 ** (top - q)
        if op != "sub" or xs != ys:
            break
    if op in ("add", "sub"):
        if op == "sub" and xs < ys:
            x, p, y, q, xs, ys = y, q, x, p, ys, xs
        n = xs + ys if op == "add" else xs - ys
        result = scaled(n, top)
        a, b = scaled(x, p), scaled(y, q)
        scale = 10**top
        lines = [
            f"小数点の位置をそろえて計算します。{a} と {b} はそれぞれ {xs} と {ys} を {scale} で割った数です。"
            if ja
            else f"Line up the decimal points: {a} and {b} are {xs} and {ys} divided by {scale}.",  # fmt: skip
            f"{xs} {SYMBOL[op]} {ys} = {n}",
            f"{n} ÷ {scale} = {result}",
        ]
    elif op == "mul":
        n = x * y
        result = scaled(n, p + q)
        a, b = scaled(x, p), scaled(y, q)
        lines = [
            f"小数点を考えずに整数どうしをかけます: {x} × {y} = {n}"
            if ja
            else f"Multiply as whole numbers: {x} × {y} = {n}",  # fmt: skip
            f"小数点以下の桁数は {p} + {q} = {p + q} 桁なので、{n} ÷ {10 ** (p + q)} = {result}"
            if ja
            else f"There are {p} + {q} = {p + q} decimal places in all, so {n} ÷ {10 ** (p + q)} = {result}",  # fmt: skip
        ]
    else:  # x is the quotient: dividend = divisor × quotient
        n = x * y
        a, b, result = scaled(n, p + q), scaled(y, q), scaled(x, p)
        shifted = scaled(n, p)
        lines = [
            f"割る数 {b} が整数になるように、割られる数と割る数を両方 {10**q} 倍します: {shifted} ÷ {y}"
            if ja
            else f"Multiply both numbers by {10**q} so that the divisor {b} is a whole number: {shifted} ÷ {y}",  # fmt: skip
            f"{shifted} ÷ {y} = {result}",
            f"確かめ: {b} × {result} = {a}" if ja else f"Check: {b} × {result} = {a}",
        ]
    expr = f"{a} {SYMBOL[op]} {b}"
    lines.append(f"よって、{expr} = {result} です。" if ja else f"So {expr} = {result}.")
    templates = QUESTION_JA if ja else QUESTION_EN
    question = templates[int(rng.random() * len(templates))].format(e=expr)
    params = {"x": x, "p": p, "y": y, "q": q, "op": op}
    return Problem(params, {"op": op}, question, "\n".join(lines), result)
