"""Arithmetic and geometric sequences: the n-th term or the sum of the first n terms."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import paren, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

ASKS = ("term", "sum")
ARITH = {"easy": (1, 20, 1, 9, 5, 15), "medium": (-30, 30, -9, 12, 8, 40), "hard": (-99, 99, -25, 25, 20, 120)}  # fmt: skip
ARITH_JA = {"term": ("初項 {a}、公差 {d} の等差数列の第 {n} 項を求めなさい。",
                     "等差数列 {list}, … の第 {n} 項はいくつですか。"),
            "sum": ("初項 {a}、公差 {d} の等差数列の初項から第 {n} 項までの和を求めなさい。",
                    "等差数列 {list}, … の初項から第 {n} 項までの和はいくつですか。")}  # fmt: skip
ARITH_EN = {"term": ("An arithmetic sequence has first term {a} and common difference {d}. Find term {n}.",  # fmt: skip
                     "What is term {n} of the arithmetic sequence {list}, …?"),
            "sum": ("An arithmetic sequence has first term {a} and common difference {d}. Find the sum of its first {n} terms.",  # fmt: skip
                    "What is the sum of the first {n} terms of the arithmetic sequence {list}, …?")}  # fmt: skip


@generator("sequences.arithmetic", "arithmetic sequences: a term or a partial sum", features={"ask": ASKS})  # fmt: skip
def arithmetic(rng: Random, spec: Spec) -> Problem:
    a_lo, a_hi, d_lo, d_hi, n_lo, n_hi = ARITH[spec.difficulty]
    ask = pick(rng, spec, "ask", ASKS)
    a, n = rint(rng, a_lo, a_hi), rint(rng, n_lo, n_hi)
    while True:
        d = rint(rng, d_lo, d_hi)
        if d:
            break
    last = a + (n - 1) * d
    ja = spec.ja
    listed = int(rng.random() * 2)
    terms = ", ".join(str(a + i * d) for i in range(4))
    question = (ARITH_JA if ja else ARITH_EN)[ask][listed].format(a=a, d=d, n=n, list=terms)
    lines = []
    if listed:
        lines.append(f"初項は {a}、公差は {a + d} - {paren(a)} = {d} です。" if ja else f"The first term is {a} and the common difference is {a + d} - {paren(a)} = {d}.")  # fmt: skip
    lines.append(f"第 {n} 項は a + (n - 1)d = {a} + ({n} - 1) × {paren(d)} = {last}" if ja else f"Term {n} is a + (n - 1)d = {a} + ({n} - 1) × {paren(d)} = {last}")  # fmt: skip
    answer = last
    if ask == "sum":
        answer = n * (a + last) // 2
        lines.append(f"和は n(初項 + 末項)/2 = {n} × ({a} + {paren(last)}) ÷ 2 = {answer}" if ja else f"The sum is n(first + last)/2 = {n} × ({a} + {paren(last)}) ÷ 2 = {answer}")  # fmt: skip
    lines.append(f"よって、答えは {answer} です。" if ja else f"So the answer is {answer}.")
    params = {"a": a, "d": d, "n": n, "ask": ask}
    return Problem(params, {"ask": ask}, question, "\n".join(lines), str(answer))


GEO = {"easy": (1, 50, 2, 6, 3, 7), "medium": (-60, 60, -5, 6, 4, 10), "hard": (-90, 90, -7, 7, 5, 12)}  # fmt: skip
GEO_JA = {"term": ("初項 {a}、公比 {r} の等比数列の第 {n} 項を求めなさい。",
                   "等比数列 {list}, … の第 {n} 項はいくつですか。"),
          "sum": ("初項 {a}、公比 {r} の等比数列の初項から第 {n} 項までの和を求めなさい。",
                  "等比数列 {list}, … の初項から第 {n} 項までの和はいくつですか。")}  # fmt: skip
GEO_EN = {"term": ("A geometric sequence has first term {a} and common ratio {r}. Find term {n}.",
                   "What is term {n} of the geometric sequence {list}, …?"),
          "sum": ("A geometric sequence has first term {a} and common ratio {r}. Find the sum of its first {n} terms.",  # fmt: skip
                  "What is the sum of the first {n} terms of the geometric sequence {list}, …?")}  # fmt: skip


@generator("sequences.geometric", "geometric sequences: a term or a partial sum", features={"ask": ASKS})  # fmt: skip
def geometric(rng: Random, spec: Spec) -> Problem:
    a_lo, a_hi, r_lo, r_hi, n_lo, n_hi = GEO[spec.difficulty]
    ask = pick(rng, spec, "ask", ASKS)
    n = rint(rng, n_lo, n_hi)
    while True:
        a, r = rint(rng, a_lo, a_hi), rint(rng, r_lo, r_hi)
        if a and r not in (0, 1, -1):
            break
    last = a * r ** (n - 1)
    ja = spec.ja
    listed = int(rng.random() * 2)
    terms = ", ".join(str(a * r**i) for i in range(4))
    question = (GEO_JA if ja else GEO_EN)[ask][listed].format(a=a, r=r, n=n, list=terms)
    lines = []
    if listed:
        lines.append(f"初項は {a}、公比は {a * r} ÷ {paren(a)} = {r} です。" if ja else f"The first term is {a} and the common ratio is {a * r} ÷ {paren(a)} = {r}.")  # fmt: skip
    answer = last
    if ask == "term":
        lines.append(f"第 {n} 項は a × r^(n - 1) = {a} × {paren(r)}^{n - 1} = {a} × {paren(r ** (n - 1))} = {last}" if ja else f"Term {n} is a × r^(n - 1) = {a} × {paren(r)}^{n - 1} = {a} × {paren(r ** (n - 1))} = {last}")  # fmt: skip
    else:
        power = r**n
        answer = a * (power - 1) // (r - 1)
        lines.append(f"{paren(r)}^{n} = {power}")
        lines.append(f"和は a(r^n - 1)/(r - 1) = {a} × ({power} - 1) ÷ ({r} - 1) = {a} × {power - 1} ÷ {r - 1} = {answer}" if ja else f"The sum is a(r^n - 1)/(r - 1) = {a} × ({power} - 1) ÷ ({r} - 1) = {a} × {power - 1} ÷ {r - 1} = {answer}")  # fmt: skip
    lines.append(f"よって、答えは {answer} です。" if ja else f"So the answer is {answer}.")
    params = {"a": a, "r": r, "n": n, "ask": ask}
    return Problem(params, {"ask": ask}, question, "\n".join(lines), str(answer))
