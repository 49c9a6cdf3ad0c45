"""Quadratic equations with integer roots, solved by factoring: ``x² + bx + c = 0`` (easy and
medium), a common factor or terms on both sides first (hard); two distinct roots or a double
root; the question asks for the larger or smaller root, their sum or their product."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import linear, paren, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

ROOTS = ("distinct", "double")
ROOT_DRAWS = ("distinct",) * 9 + ("double",)  # a double root one time in ten
ASKS = ("larger", "smaller", "sum", "product")
RANGE = {"easy": (1, 40), "medium": (-30, 30), "hard": (-30, 30)}
ASK_JA = {"root": "解", "larger": "大きい方の解", "smaller": "小さい方の解", "sum": "すべての解の和", "product": "すべての解の積"}  # fmt: skip
ASK_EN = {"root": "the root", "larger": "the larger root", "smaller": "the smaller root", "sum": "the sum of all roots",
          "product": "the product of all roots"}  # fmt: skip
QUESTION_JA = ("2 次方程式 {e} を解き、{a}を答えなさい。", "次の方程式の{a}を求めなさい。\n{e}",
               "{e} を因数分解を使って解き、{a}を答えてください。")  # fmt: skip
QUESTION_EN = ("Solve {e} and give {a}.", "Find {a} of the equation\n{e}",
               "Solve {e} by factoring. What is {a}?")  # fmt: skip


def _factor(root: int) -> str:
    return f"(x {'-' if root > 0 else '+'} {abs(root)})" if root else "x"


@generator("quadratics.roots", "quadratic equations with integer roots, by factoring", features={"roots": ROOTS, "ask": ASKS})  # fmt: skip
def roots(rng: Random, spec: Spec) -> Problem:
    lo, hi = RANGE[spec.difficulty]
    kind = pick(rng, spec, "roots", ROOT_DRAWS)
    ask = pick(rng, spec, "ask", ASKS)
    if kind == "double":
        ask = "root"  # "the larger root" or "the sum of the roots" would be ambiguous
    r = rint(rng, lo, hi)
    while True:
        s = r if kind == "double" else rint(rng, lo, hi)
        if kind == "double" or s != r:
            break
    r, s = max(r, s), min(r, s)
    b, c = -(r + s), r * s
    hard = spec.difficulty == "hard"
    k = rint(rng, 2, 5) * (1 if rng.random() < 0.7 else -1) if hard else 1
    if spec.difficulty == "medium":
        k = rint(rng, 1, 3)  # a common factor to divide out first
    shift = (rint(rng, -9, 9), rint(rng, -20, 20)) if hard else (0, 0)  # moved to the right side
    ja = spec.ja
    right = linear((shift[0],), "x", shift[1]) if shift != (0, 0) else "0"
    expr = f"{_plain(k, k * b + shift[0], k * c + shift[1])} = {right}"
    lines = []
    if shift != (0, 0):
        lines.append(f"右辺を左辺に移項して整理すると: {_plain(k, k * b, k * c)} = 0" if ja else f"Bring everything to the left: {_plain(k, k * b, k * c)} = 0")  # fmt: skip
    if k != 1:
        lines.append(f"両辺を {k} で割ると: {_plain(1, b, c)} = 0" if ja else f"Divide both sides by {k}: {_plain(1, b, c)} = 0")  # fmt: skip
    if kind == "double":
        lines.append(f"{paren(-r)} + {paren(-r)} = {b}、{paren(-r)} × {paren(-r)} = {c} なので、{_factor(r)}² = 0" if ja else f"{paren(-r)} + {paren(-r)} = {b} and {paren(-r)} × {paren(-r)} = {c}, so {_factor(r)}² = 0")  # fmt: skip
        lines.append(f"解は x = {r}（重解）です。" if ja else f"The only root is x = {r} (a double root).")  # fmt: skip
    else:
        lines.append(f"足して {b}、かけて {c} になる 2 数は {-r} と {-s} なので、{_factor(r)}{_factor(s)} = 0" if ja else f"Two numbers with sum {b} and product {c} are {-r} and {-s}, so {_factor(r)}{_factor(s)} = 0")  # fmt: skip
        lines.append(f"解は x = {r}, {s} です。" if ja else f"The roots are x = {r} and x = {s}.")
    if kind == "double":
        answer = r
    else:
        answer = {"larger": r, "smaller": s, "sum": r + s, "product": r * s}[ask]
        if ask == "sum":
            lines.append(f"{r} + {paren(s)} = {answer}")
        elif ask == "product":
            lines.append(f"{r} × {paren(s)} = {answer}")
    lines.append(f"よって、{ASK_JA[ask]}は {answer} です。" if ja else f"So {ASK_EN[ask]} is {answer}.")  # fmt: skip
    templates = QUESTION_JA if ja else QUESTION_EN
    asked = ASK_JA[ask] if ja else ASK_EN[ask]
    question = templates[int(rng.random() * len(templates))].format(e=expr, a=asked)
    params = {"r": r, "s": s, "k": k, "shift": list(shift), "ask": ask}
    return Problem(params, {"roots": kind, "ask": ask}, question, "\n".join(lines), str(answer))


def _plain(k: int, b: int, c: int) -> str:
    """``k x² + b x + c``."""
    lead = "x²" if k == 1 else ("-x²" if k == -1 else f"{k}x²")
    rest = linear((b,), "x", c) if b or c else ""
    if not rest:
        return lead
    return f"{lead} - {rest[1:]}" if rest.startswith("-") else f"{lead} + {rest}"
