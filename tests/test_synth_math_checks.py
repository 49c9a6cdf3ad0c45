"""Independent checks of ``plamo-fast synth math`` answers, with sympy.

Each check recomputes a record's answer without the generator's code: equations are read back
from the problem text the user sees (linear equations, systems, quadratics, proportions) and
solved with sympy; the other problems are modelled from their ``params`` as equations or exact
sympy Rational arithmetic, written here from the problem statement rather than from the
generator's steps. :func:`expected` returns the sympy value; :func:`answer_value` reads the
record's ``answer`` (integers, decimals, ``p/q`` and mixed ``w p/q``)."""

from __future__ import annotations

import re

import pytest

sp = pytest.importorskip("sympy")

from sympy.parsing.sympy_parser import (  # noqa: E402
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

X, Y, Z, T = sp.symbols("x y z t")
sympify = sp.sympify
_TRANSFORMS = (*standard_transformations, implicit_multiplication_application)
_EQUATION = re.compile(r"([-0-9x²()+ ]+)=([-0-9x²()+ ]+)")
_ROW = re.compile(r"^(.+) = (-?\d+)  …", re.MULTILINE)


def R(value) -> sp.Rational:
    return sp.Rational(str(value))


def answer_value(text: str) -> sp.Rational:
    m = re.fullmatch(r"(-?)(\d+) (\d+)/(\d+)", text)
    if m:
        whole = int(m[2]) + sp.Rational(int(m[3]), int(m[4]))
        return -whole if m[1] else whole
    return sp.Rational(text)


def _parse(side: str) -> sp.Expr:
    return parse_expr(
        side.strip().replace("x²", "x**2"),
        transformations=_TRANSFORMS,
        local_dict={"x": X, "y": Y, "z": Z},
    )


def _equation(question: str) -> sp.Eq:
    m = _EQUATION.search(question)
    assert m, question
    return sp.Eq(_parse(m[1]), _parse(m[2]))


def _system(question: str) -> list[sp.Eq]:
    return [sp.Eq(_parse(lhs), int(rhs)) for lhs, rhs in _ROW.findall(question)]


def _carries(a: int, b: int) -> list[bool]:
    out, carry = [], 0
    while a or b:
        s = a % 10 + b % 10 + carry
        carry = int(s >= 10)
        out.append(bool(carry))
        a, b = a // 10, b // 10
    return out


def _borrows(a: int, b: int) -> list[bool]:
    out, borrow = [], 0
    while a:
        d = a % 10 - borrow - b % 10
        borrow = int(d < 0)
        out.append(bool(borrow))
        a, b = a // 10, b // 10
    return out


def _level(flags: list[bool]) -> str:
    return "all" if all(flags) else ("none" if not any(flags) else "some")


def expected(record: dict):  # noqa: C901 - one branch per generator
    """The answer of ``record`` as sympy computes it (and checks of its features)."""
    g, p, f, q = (
        record["generator"],
        record["params"],
        record["features"],
        record["messages"][0]["content"],
    )
    if g == "arithmetic.add":
        assert f["carries"] == _level(_carries(p["a"], p["b"])[: f["digits"]])
        return sp.Integer(p["a"]) + p["b"]
    if g == "arithmetic.sub":
        assert f["borrows"] == _level(_borrows(p["a"], p["b"])[: f["digits"] - 1])
        return sp.Integer(p["a"]) - p["b"]
    if g == "arithmetic.mul":
        return sp.Integer(p["a"]) * p["b"]
    if g == "arithmetic.div":
        value = sp.Rational(p["a"], p["b"])
        assert value.q == 1
        return value
    if g == "arithmetic.order":
        expr = p["shape"]
        for k in "abcde":
            if k in p:
                expr = expr.replace(k, f"({p[k]})")
        return sp.sympify(expr, rational=True)
    if g in ("fractions.add", "fractions.muldiv"):
        a, b = sp.Rational(p["a"], p["b"]), sp.Rational(p["c"], p["d"])
        value = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[p["op"]]
        if g == "fractions.add":
            den = sp.ilcm(p["b"], p["d"])
            assert (sp.gcd(value * den, den) > 1) == (f["reduces"] == "yes")
        else:
            top = p["a"] * (p["c"] if p["op"] == "mul" else p["d"])
            bottom = p["b"] * (p["d"] if p["op"] == "mul" else p["c"])
            assert (sp.gcd(top, bottom) > 1) == (f["reduces"] == "yes")
        return value
    if g == "fractions.mixed":
        a = p["u"] + sp.Rational(p["a"], p["b"])
        b = p["v"] + sp.Rational(p["c"], p["d"])
        value = a + b if p["op"] == "add" else a - b
        assert re.fullmatch(r"\d+ \d+/\d+", record["answer"])
        return value
    if g == "decimals.arith":
        x, y = sp.Rational(p["x"], 10 ** p["p"]), sp.Rational(p["y"], 10 ** p["q"])
        if p["op"] == "div":  # x is the quotient: the question shows (x*y) ÷ y
            return (x * y) / y
        return {"add": x + y, "sub": x - y, "mul": x * y}[p["op"]]
    if g == "percent.of":
        return sp.Rational(p["p"], 100) * p["b"]
    if g == "percent.ratio":
        return sp.Rational(p["a"], p["b"]) * 100
    if g == "percent.change":
        old = sp.Symbol("old")
        rate = 1 + (1 if p["direction"] == "up" else -1) * sp.Rational(p["p"], 100)
        if p["ask"] == "new":
            return p["old"] * rate
        new = p["old"] * rate
        return sp.solve(sp.Eq(old * rate, new), old)[0]
    if g == "ratios.split":
        total = sum(p["parts"]) * p["k"]
        share = sp.solve(sp.Eq(sum(c * T for c in p["parts"]), total), T)[0]
        return share * p["parts"][p["who"]]
    if g == "ratios.proportion":
        m = re.search(r"(\d+|x) : (\d+|x) = (\d+|x) : (\d+|x)", q)
        t = [_parse(s) for s in m.groups()]
        return sp.solve(sp.Eq(t[0] * t[3], t[1] * t[2]), X)[0]
    if g.startswith("linear."):
        (value,) = sp.solve(_equation(q), X)
        return value
    if g.startswith("systems."):
        rows = _system(q)
        names = (X, Y) if g == "systems.two" else (X, Y, Z)
        assert len(rows) == len(names)
        (sol,) = sp.linsolve(rows, *names)
        values = dict(zip("xyz", sol, strict=False))
        if p["ask"] in values:
            return values[p["ask"]]
        return sum(sol)
    if g == "quadratics.roots":
        roots = sp.solve(_equation(q), X)
        assert all(r.is_integer for r in roots)
        ask = p["ask"]
        if f["roots"] == "double":
            assert len(roots) == 1 and ask == "root"
            return roots[0]
        assert len(roots) == 2
        return {
            "larger": max(roots),
            "smaller": min(roots),
            "sum": roots[0] + roots[1],
            "product": roots[0] * roots[1],
        }[ask]
    if g == "sequences.arithmetic":
        terms = [p["a"] + i * p["d"] for i in range(p["n"])]
        return sp.Integer(terms[-1] if p["ask"] == "term" else sum(terms))
    if g == "sequences.geometric":
        terms = [p["a"] * sp.Integer(p["r"]) ** i for i in range(p["n"])]
        return terms[-1] if p["ask"] == "term" else sum(terms)
    if g == "units.convert":
        size = {
            "mm": 1,
            "cm": 10,
            "m": 1000,
            "km": 10**6,
            "mg": 1,
            "g": 1000,
            "kg": 10**6,
            "t": 10**9,
            "mL": 1,
            "dL": 100,
            "L": 1000,
            "秒": 1,
            "分": 60,
            "時間": 3600,
        }
        return sp.Rational(p["value"]) * size[p["from"]] / size[p["to"]]
    if g == "units.rate":
        return sp.Rational(p["p"], p["n"]) * p["m"]
    if g == "shopping.change":
        return p["bill"] - sum(a * b for a, b in zip(p["prices"], p["counts"], strict=True))
    if g == "shopping.budget":
        return sp.floor(sp.Rational(p["money"], p["price"]))
    if g == "speed.basic":
        hours = sp.Rational(p["minutes"], 60)
        if p["ask"] == "distance":
            return p["v"] * hours
        if p["ask"] == "speed":
            return sp.solve(sp.Eq(X * hours, p["v"] * hours), X)[0]
        time = sp.solve(sp.Eq(p["v"] * T, p["v"] * hours), T)[0]
        return time * 60 if "分" in q or "minutes" in q else time
    if g == "speed.meet":
        gap = (p["v1"] + p["v2"] if p["kind"] == "meet" else p["v1"] - p["v2"]) * p["t"]
        sign = 1 if p["kind"] == "meet" else -1
        return sp.solve(sp.Eq(p["v1"] * T + sign * p["v2"] * T, gap), T)[0]
    if g == "work.together":
        a, b = p["a"], p["b"]
        if p["shape"] == "rest":
            return sp.solve(sp.Eq(sp.Rational(p["k"], a) + T / b, 1), T)[0]
        days = sp.solve(sp.Eq(T / a + T / b, 1), T)[0]
        return days if p["shape"] == "together" else sp.ceiling(days)
    if g == "ages.problems":
        parent, child = p["parent"], p["child"]
        if p["shape"] == "sumdiff":
            big, small = sp.symbols("big small")
            return sp.solve(
                [big + small - (parent + child), big - small - (parent - child)], [big, small]
            )[big]
        if p["shape"] == "later":
            return sp.solve(sp.Eq(parent + T, p["k"] * (child + T)), T)[0]
        return sp.solve(sp.Eq(parent + child - X + p["n"], p["k"] * (X + p["n"])), X)[0]
    if g == "mixtures.salt":
        if p["shape"] == "dissolve":
            return sp.Rational(100 * p["s"], p["s"] + p["water"])
        if p["shape"] == "mix":
            salt = p["a"] * sp.Rational(p["p"], 100) + p["b"] * sp.Rational(p["q"], 100)
            return 100 * salt / (p["a"] + p["b"])
        salt = p["a"] * sp.Rational(p["p"], 100)
        return sp.solve(sp.Eq(salt / (p["a"] + X), sp.Rational(p["q"], 100)), X)[0]
    if g == "classic.crane_turtle":
        per = ((2, 4), (2, 3), (50, 100), (1, 4))[p["kind"]]
        n, total = p["small"] + p["big"], p["small"] * per[0] + p["big"] * per[1]
        s, b = sp.symbols("s b")
        sol = sp.solve([s + b - n, per[0] * s + per[1] * b - total], [s, b])
        return sol[b] if p["ask"] == "big" else sol[s]
    if g == "classic.trees":
        gaps = sp.Integer(p["d"] * p["gaps"]) / p["d"]
        return gaps + {"both": 1, "none": -1, "circle": 0}[p["ends"]]
    raise AssertionError(f"no independent check for {g}")
