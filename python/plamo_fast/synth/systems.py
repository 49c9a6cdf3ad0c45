"""Systems of two or three linear equations with integer solutions, solved by elimination. The
variable eliminated first is a feature (``eliminate``), and so is how much scaling the
elimination needs (``scaling``: none when its coefficients are equal or opposite, one equation
or both)."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from math import gcd
from random import Random

from plamo_fast.synth.numbers import linear, paren, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

NAMES = "①②③④⑤⑥⑦"
SCALINGS = ("none", "one", "both")
DEFAULT_SCALING = {"easy": "none", "medium": "one", "hard": "both"}
SOLUTION = {"easy": (1, 9), "medium": (-9, 9), "hard": (-15, 15)}

Eq = tuple[tuple[int, ...], int]


def _fmt(eq: Eq, names: str) -> str:
    return f"{linear(eq[0], names)} = {eq[1]}"


def _scale(eq: Eq, m: int) -> Eq:
    return tuple(c * m for c in eq[0]), eq[1] * m


def _combine(e1: Eq, e2: Eq, v: int) -> tuple[int, int, bool, Eq, int]:
    """``(m1, m2, subtract, new, k)``: ``e1 × m1 ∓ e2 × m2`` cancels variable ``v``; ``new`` is
    that equation divided by ``k`` (the gcd of its numbers, negative when its first coefficient
    is, so that the first coefficient becomes positive)."""
    (p, p_const), (q, q_const) = e1, e2
    a, b = p[v], q[v]
    g = gcd(a, b)
    m1, m2 = abs(b) // g, abs(a) // g
    subtract = a * b > 0
    signed_m2 = -m2 if subtract else m2
    coefs = [x * m1 + y * signed_m2 for x, y in zip(p, q, strict=True)]
    const = p_const * m1 + q_const * signed_m2
    k = gcd(*coefs, const)
    for c in coefs:
        if c:
            if c < 0:
                k = -k
            break
    return m1, m2, subtract, (tuple([c // k for c in coefs]), const // k), k


def eliminate(e1: Eq, e2: Eq, v: int, n1: str, n2: str, names: str, ja: bool) -> tuple[Eq, list[str]]:  # fmt: skip
    """``e1`` and ``e2`` scaled and added or subtracted so that variable ``v`` cancels, then
    divided by the gcd of its numbers (:func:`_combine`). Returns it and the lines that show it."""
    m1, m2, subtract, new, k = _combine(e1, e2, v)
    lines = []
    for name, m, eq in ((n1, m1, e1), (n2, m2, e2)):
        if m != 1:
            lines.append(f"{name} × {m}: {_fmt(_scale(eq, m), names)}")
    left = f"{n1} × {m1}" if m1 != 1 else n1
    right = f"{n2} × {m2}" if m2 != 1 else n2
    how = f"{left} - {right}" if subtract else f"{left} + {right}"
    raw = (tuple(c * k for c in new[0]), new[1] * k)
    lines.append(f"{how} で {names[v]} を消去すると: {_fmt(raw, names)}" if ja else f"{how} eliminates {names[v]}: {_fmt(raw, names)}")  # fmt: skip
    if k != 1:
        lines.append(f"両辺を {k} で割って: {_fmt(new, names)}" if ja else f"Divide by {k}: {_fmt(new, names)}")  # fmt: skip
    return new, lines


def substitute(eq: Eq, known: dict[int, int], v: int, name: str, names: str, ja: bool) -> tuple[int, list[str]]:  # fmt: skip
    """Variable ``v`` from ``eq`` with the ``known`` values put in (exact by construction)."""
    coefs, const = eq
    parts = "".join(
        f" {'-' if c < 0 else '+'} {abs(c)} × {paren(known[i])}"
        for i, c in enumerate(coefs)
        if i in known and c
    )
    rest = sum(c * known[i] for i, c in enumerate(coefs) if i in known)
    value, remainder = divmod(const - rest, coefs[v])
    if remainder:
        raise AssertionError("substitution is not exact")
    lhs = linear((coefs[v],), names[v])
    set_known = "、".join(f"{names[i]} = {known[i]}" for i in sorted(known)) if ja else ", ".join(f"{names[i]} = {known[i]}" for i in sorted(known))  # fmt: skip
    lines = [
        f"{set_known} を{name}に代入すると: {lhs}{parts} = {const}"
        if ja
        else f"Put {set_known} into {name}: {lhs}{parts} = {const}",  # fmt: skip
    ]
    if coefs[v] == 1:
        lines.append(f"{names[v]} = {value}")
    else:
        lines.append(f"{lhs} = {const - rest}、{names[v]} = {value}" if ja else f"{lhs} = {const - rest}, so {names[v]} = {value}")  # fmt: skip
    return value, lines


def _coef_pair(rng: Random, scaling: str, hi: int) -> tuple[int, int]:
    """Coefficients of the eliminated variable in two equations."""
    sign = 1 if rng.random() < 0.5 else -1
    if scaling == "none":
        a = rint(rng, 1, hi)
        return a, sign * a
    if scaling == "one":
        a = rint(rng, 1, max(1, hi // 2))
        k = rint(rng, 2, 4)
        return (a, sign * a * k) if rng.random() < 0.5 else (a * k, sign * a)
    while True:
        a, b = rint(rng, 2, hi), rint(rng, 2, hi)
        if gcd(a, b) == 1:
            return a, sign * b


TWO_JA = ("次の連立方程式を解き、{a}を答えなさい。\n{e}", "連立方程式\n{e}\nを解いて、{a}を求めてください。",
          "次の連立方程式を、加減法で {v} を消去して解きなさい。答えは{a}とします。\n{e}")  # fmt: skip
TWO_EN = ("Solve the system and give {a}:\n{e}", "Solve\n{e}\nWhat is {a}?",
          "Solve the system by eliminating {v} first, and give {a}:\n{e}")  # fmt: skip


@generator("systems.two", "two linear equations; eliminate x or y; scaling none, one or both", features={"eliminate": ("x", "y"), "scaling": SCALINGS})  # fmt: skip
def two(rng: Random, spec: Spec) -> Problem:
    d = spec.difficulty
    v = "xy".index(pick(rng, spec, "eliminate", ("x", "y")))
    scaling = spec.want.get("scaling", DEFAULT_SCALING[d])
    lo, hi = SOLUTION[d]
    u = 1 - v
    while True:
        sol = (rint(rng, lo, hi), rint(rng, lo, hi))
        cv = _coef_pair(rng, scaling, 6 if d != "hard" else 9)
        cu = (rint(rng, -7, 7), rint(rng, -7, 7))
        if not cu[0] or not cu[1]:
            continue
        rows = []
        for i in range(2):
            coefs = [0, 0]
            coefs[v], coefs[u] = cv[i], cu[i]
            rows.append((tuple(coefs), coefs[0] * sol[0] + coefs[1] * sol[1]))
        det = rows[0][0][0] * rows[1][0][1] - rows[0][0][1] * rows[1][0][0]
        if det:
            break
    ask = ("x", "y", "x+y")[int(rng.random() * 3)]
    ja = spec.ja
    system = "\n".join(f"{_fmt(r, 'xy')}  …{NAMES[i]}" for i, r in enumerate(rows))
    new, lines = eliminate(rows[0], rows[1], v, NAMES[0], NAMES[1], "xy", ja)
    value_u = new[1] // new[0][u]
    if new[0][u] != 1:  # (after dividing by the gcd it is 1)
        lines.append(f"{'xy'[u]} = {new[1]} ÷ {paren(new[0][u])} = {value_u}")
    value_v, more = substitute(rows[0], {u: value_u}, v, NAMES[0], "xy", ja)
    lines += more
    x, y = (value_v, value_u) if v == 0 else (value_u, value_v)
    lines.append(f"解は x = {x}、y = {y} です。" if ja else f"The solution is x = {x}, y = {y}.")
    answer = {"x": x, "y": y, "x+y": x + y}[ask]
    if ask == "x+y":
        lines.append(f"x + y = {x} + {paren(y)} = {answer}")
    asked = f"{'x + y' if ask == 'x+y' else ask} の値" if ja else f"the value of {'x + y' if ask == 'x+y' else ask}"  # fmt: skip
    templates = TWO_JA if ja else TWO_EN
    question = templates[int(rng.random() * len(templates))].format(e=system, a=asked, v="xy"[v])
    params = {"rows": [[*r[0], r[1]] for r in rows], "ask": ask}
    features = {"eliminate": "xy"[v], "scaling": scaling}
    return Problem(params, features, question, "\n".join(lines), str(answer))


THREE_JA = ("次の連立方程式を解き、{a}を答えなさい。\n{e}", "連立方程式\n{e}\nを解いて、{a}を求めてください。",
            "次の連立方程式を、まず {v} を消去して解きなさい。答えは{a}とします。\n{e}")  # fmt: skip
THREE_EN = ("Solve the system and give {a}:\n{e}", "Solve\n{e}\nWhat is {a}?",
            "Solve the system, eliminating {v} first, and give {a}:\n{e}")  # fmt: skip
THREE_RANGE = {"easy": (1, 5, 3), "medium": (-6, 6, 4), "hard": (-9, 9, 6)}


@generator("systems.three", "three linear equations; the variable eliminated first", features={"eliminate": ("x", "y", "z")})  # fmt: skip
def three(rng: Random, spec: Spec) -> Problem:
    lo, hi, c_hi = THREE_RANGE[spec.difficulty]
    v = "xyz".index(pick(rng, spec, "eliminate", ("x", "y", "z")))
    others = [i for i in range(3) if i != v]
    u = others[int(rng.random() * 2)]  # eliminated second
    w = others[0] + others[1] - u
    names, ja = "xyz", spec.ja
    easy = spec.difficulty == "easy"
    while True:  # the coefficients first: every check depends on them only
        m = []
        for _ in range(3):
            coefs = [rint(rng, -c_hi, c_hi) for _ in range(3)]
            if easy:
                coefs = [abs(c) or 1 for c in coefs]
            elif not coefs[v]:
                coefs[v] = rint(rng, 1, c_hi) * (1 if rng.random() < 0.5 else -1)
            m.append(tuple(coefs))
        det = (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
               - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
               + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))  # fmt: skip
        # Eliminating v from rows 0 and i leaves u and w iff their 2×2 minors with v are nonzero.
        if det and all(m[0][j] * m[i][v] != m[i][j] * m[0][v] for i in (1, 2) for j in (u, w)):
            break
    sol = [rint(rng, lo, hi) for _ in range(3)]
    rows = [(c, c[0] * sol[0] + c[1] * sol[1] + c[2] * sol[2]) for c in m]
    e4, more4 = eliminate(rows[0], rows[1], v, NAMES[0], NAMES[1], names, ja)
    e5, more5 = eliminate(rows[0], rows[2], v, NAMES[0], NAMES[2], names, ja)
    lines = [f"まず {names[v]} を消去します。" if ja else f"First eliminate {names[v]}."]
    lines += more4 + [f"これを{NAMES[3]}とします。" if ja else f"Call this {NAMES[3]}."]
    lines += more5 + [f"これを{NAMES[4]}とします。" if ja else f"Call this {NAMES[4]}."]
    lines.append(f"次に、{NAMES[3]}と{NAMES[4]}から {names[u]} を消去します。" if ja else f"Next, eliminate {names[u]} from {NAMES[3]} and {NAMES[4]}.")  # fmt: skip
    e6, more6 = eliminate(e4, e5, u, NAMES[3], NAMES[4], names, ja)
    lines += more6
    value_w = e6[1] // e6[0][w]
    if e6[0][w] != 1:
        lines.append(f"{names[w]} = {e6[1]} ÷ {paren(e6[0][w])} = {value_w}")
    value_u, more = substitute(e4, {w: value_w}, u, NAMES[3], names, ja)
    lines += more
    value_v, more = substitute(rows[0], {w: value_w, u: value_u}, v, NAMES[0], names, ja)
    lines += more
    values = {v: value_v, u: value_u, w: value_w}
    x, y, z = values[0], values[1], values[2]
    lines.append(f"解は x = {x}、y = {y}、z = {z} です。" if ja else f"The solution is x = {x}, y = {y}, z = {z}.")  # fmt: skip
    ask = ("x", "y", "z", "x+y+z")[int(rng.random() * 4)]
    answer = {"x": x, "y": y, "z": z, "x+y+z": x + y + z}[ask]
    if ask == "x+y+z":
        lines.append(f"x + y + z = {x} + {paren(y)} + {paren(z)} = {answer}")
    shown = "x + y + z" if ask == "x+y+z" else ask
    asked = f"{shown} の値" if ja else f"the value of {shown}"
    system = "\n".join(f"{_fmt(r, names)}  …{NAMES[i]}" for i, r in enumerate(rows))
    templates = THREE_JA if ja else THREE_EN
    question = templates[int(rng.random() * len(templates))].format(e=system, a=asked, v=names[v])
    params = {"rows": [[*r[0], r[1]] for r in rows], "ask": ask, "second": names[u]}
    return Problem(params, {"eliminate": names[v]}, question, "\n".join(lines), str(answer))
