"""Linear equations in one unknown: ``ax + b = c``, unknowns on both sides, and brackets; the
solution is an integer or (when asked, or at random for hard ones) a fraction."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import frac, linear, paren, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

SOLUTIONS = ("integer", "fraction")
QUESTION_JA = ("方程式 {e} を解きなさい。", "次の方程式を解いて、x の値を求めなさい。\n{e}",
               "{e} を満たす x の値を求めてください。")  # fmt: skip
QUESTION_EN = ("Solve {e}.", "Solve the equation for x:\n{e}", "Find the value of x that satisfies {e}.")  # fmt: skip


def _nonzero(rng: Random, lo: int, hi: int) -> int:
    while True:
        v = rint(rng, lo, hi)
        if v:
            return v


def _term(k: int) -> str:
    return linear((k,), "x")


def _solve_lines(p: int, q: int, r: int, s: int, ja: bool) -> tuple[list[str], str]:
    """Steps from ``p x + q = r x + s`` (p != r) to x, and x (a reduced fraction or integer)."""
    lines = []
    left, right = linear((p,), "x", q), linear((r,), "x", s)
    if r or q:
        moved_left = f"{_term(p)} - ({_term(r)})" if r < 0 else f"{_term(p)} - {_term(r)}"
        moved = f"{moved_left} = {s} - ({q})" if q < 0 else f"{moved_left} = {s} - {q}"
        if not r:
            moved = f"{_term(p)} = {s} - ({q})" if q < 0 else f"{_term(p)} = {s} - {q}"
        lines.append(f"{left} = {right} の x の項を左辺に、数の項を右辺に移項します: {moved}" if ja else f"Move the x terms of {left} = {right} to the left and the numbers to the right: {moved}")  # fmt: skip
    k, v = p - r, s - q
    lines.append(f"{linear((k,), 'x')} = {v}")
    x = frac(v, k)
    if k != 1:
        shown = f"x = {v} ÷ {paren(k)} = {x}"
        lines.append(f"両辺を {k} で割ると、{shown}" if ja else f"Divide both sides by {k}: {shown}")  # fmt: skip
    return lines, x


def _finish(rng: Random, spec: Spec, expr: str, lines: list[str], answer: str, params: dict, features: dict) -> Problem:  # fmt: skip
    ja = spec.ja
    lines.append(f"よって、x = {answer} です。" if ja else f"So x = {answer}.")
    templates = QUESTION_JA if ja else QUESTION_EN
    question = templates[int(rng.random() * len(templates))].format(e=expr)
    return Problem(params, features, question, "\n".join(lines), answer)


ONE_SIDE = {"easy": (2, 9, 15, 40), "medium": (2, 12, 15, 40), "hard": (2, 20, 30, 100)}


@generator("linear.one_side", "ax + b = c", features={"solution": SOLUTIONS})
def one_side(rng: Random, spec: Spec) -> Problem:
    a_hi_lo, a_hi, x_hi, b_hi = ONE_SIDE[spec.difficulty]
    solution = pick(rng, spec, "solution", SOLUTIONS if spec.difficulty == "hard" else SOLUTIONS[:1])  # fmt: skip
    negative = spec.difficulty != "easy"
    while True:
        a = rint(rng, a_hi_lo, a_hi) * (-1 if negative and rng.random() < 0.3 else 1)
        b = _nonzero(rng, -b_hi if negative else 1, b_hi)
        if solution == "integer":
            x = rint(rng, -x_hi if negative else 1, x_hi)
            c = a * x + b
            break
        c = rint(rng, -b_hi, b_hi)
        if (c - b) % a:
            break
    expr = f"{linear((a,), 'x', b)} = {c}"
    lines, x = _solve_lines(a, b, 0, c, spec.ja)
    return _finish(rng, spec, expr, lines, x, {"a": a, "b": b, "c": c}, {"solution": solution})


BOTH = {"easy": (6, 10, 20), "medium": (9, 12, 30), "hard": (12, 15, 40)}


@generator("linear.both_sides", "unknowns on both sides (brackets when hard)", features={"solution": SOLUTIONS})  # fmt: skip
def both_sides(rng: Random, spec: Spec) -> Problem:
    c_hi, x_hi, k_hi = BOTH[spec.difficulty]
    solution = pick(rng, spec, "solution", SOLUTIONS if spec.difficulty == "hard" else SOLUTIONS[:1])  # fmt: skip
    easy = spec.difficulty == "easy"
    brackets = spec.difficulty == "hard"
    while True:
        a = _nonzero(rng, 1 if easy else -c_hi, c_hi)
        c = _nonzero(rng, 1 if easy else -c_hi, c_hi)
        if a == c:
            continue
        b, d = _nonzero(rng, -k_hi, k_hi), _nonzero(rng, -k_hi, k_hi)
        e = _nonzero(rng, -k_hi, k_hi) if brackets else 0
        p, q, r = a, (a * b if brackets else b), c
        if solution == "integer":
            x = rint(rng, 1 if easy else -x_hi, x_hi)
            s = p * x + q - r * x  # r x + s must equal p x + q
            if brackets:
                e = s - c * d
            else:
                d = s
            if easy and (p < r or q <= 0 or s <= 0):
                continue
            if e or not brackets:
                break
        else:
            s = c * d + e if brackets else d
            if (s - q) % (p - r):
                break
    if brackets:
        left = f"{a if abs(a) != 1 else ('-' if a < 0 else '')}({linear((1,), 'x', b)})"
        right = f"{c if abs(c) != 1 else ('-' if c < 0 else '')}({linear((1,), 'x', d)}) {'+' if e > 0 else '-'} {abs(e)}"  # fmt: skip
        expr = f"{left} = {right}"
        lines = [f"かっこを外すと、{linear((p,), 'x', q)} = {linear((r,), 'x', s)}" if spec.ja else f"Expand the brackets: {linear((p,), 'x', q)} = {linear((r,), 'x', s)}"]  # fmt: skip
        params = {"a": a, "b": b, "c": c, "d": d, "e": e}
    else:
        expr = f"{linear((p,), 'x', q)} = {linear((r,), 'x', s)}"
        lines = []
        params = {"a": a, "b": b, "c": c, "d": d}
    more, x = _solve_lines(p, q, r, s, spec.ja)
    return _finish(rng, spec, expr, lines + more, x, params, {"solution": solution, "brackets": brackets})  # fmt: skip
