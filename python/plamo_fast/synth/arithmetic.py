"""Integer arithmetic: column addition and subtraction (carries/borrows none, some or all),
multiplication by place value, exact long division, and the order of operations."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

PLACES_JA = ("一の位", "十の位", "百の位", "千の位", "一万の位", "十万の位", "百万の位", "千万の位")
PLACES_EN = (
    "ones",
    "tens",
    "hundreds",
    "thousands",
    "ten-thousands",
    "hundred-thousands",
    "millions",
    "ten-millions",
)
DIGITS = {"easy": (2, 2), "medium": (3, 4), "hard": (5, 7)}
LEVELS = ("none", "some", "all")

ADD_JA = (
    "{a} + {b} を計算しなさい。",
    "次の計算をしてください。\n{a} + {b}",
    "{a} に {b} を足すといくつになりますか。",
    "筆算で {a} + {b} を求めましょう。",
)
ADD_EN = (
    "Compute {a} + {b}.",
    "What is {a} + {b}?",
    "Add {b} to {a}. What do you get?",
    "Work out {a} + {b} in columns.",
)
SUB_JA = (
    "{a} - {b} を計算しなさい。",
    "次の計算をしてください。\n{a} - {b}",
    "{a} から {b} を引くといくつになりますか。",
    "筆算で {a} - {b} を求めましょう。",
)
SUB_EN = (
    "Compute {a} - {b}.",
    "What is {a} - {b}?",
    "Subtract {b} from {a}.",
    "Work out {a} - {b} in columns.",
)


def _pattern(rng: Random, level: str, n: int) -> list[bool]:
    """Which of ``n`` columns carry (or borrow): none, all, or some (at least one of each)."""
    if level != "some":
        return [level == "all"] * n
    while True:
        pattern = [rng.random() < 0.5 for _ in range(n)]
        if any(pattern) and not all(pattern):
            return pattern


def _digits_of(columns: list[int]) -> int:
    return int("".join(map(str, reversed(columns))))


@generator(
    "arithmetic.add", "column addition; carries none, some or all", features={"carries": LEVELS}
)
def add(rng: Random, spec: Spec) -> Problem:
    lo, hi = DIGITS[spec.difficulty]
    n = rint(rng, lo, hi)
    level = pick(rng, spec, "carries", LEVELS)
    pattern = _pattern(rng, level, n)
    xs, ys, carry = [], [], 0
    for i, want in enumerate(pattern):
        low = 1 if i == n - 1 else 0
        if want:
            x = rint(rng, max(low, 1 - carry), 9)
            y = rint(rng, max(low, 10 - carry - x), 9)
        else:
            x = rint(rng, low, 9 - carry - low)
            y = rint(rng, low, 9 - carry - x)
        xs.append(x)
        ys.append(y)
        carry = int(x + y + carry >= 10)
    a, b = _digits_of(xs), _digits_of(ys)
    total = a + b
    ja = spec.ja
    places = PLACES_JA if ja else PLACES_EN
    lines = ["筆算で、一の位から順に計算します。" if ja else "Add column by column, from the ones."]
    carry = 0
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        s = x + y + carry
        expr = f"{x} + {y} + 1" if carry else f"{x} + {y}"
        if s < 10 or i == n - 1:
            tail = f"{s} を書きます。" if ja else f"write {s}."
        elif ja:
            tail = f"{s - 10} を書き、1 を{places[i + 1]}に繰り上げます。"
        else:
            tail = f"write {s - 10} and carry 1 to the {places[i + 1]}."
        lines.append(
            f"{places[i]}: {expr} = {s} → {tail}" if ja else f"{places[i]}: {expr} = {s}; {tail}"
        )
        carry = int(s >= 10)
    lines.append(f"よって、{a} + {b} = {total} です。" if ja else f"So {a} + {b} = {total}.")
    templates = ADD_JA if ja else ADD_EN
    question = templates[int(rng.random() * len(templates))].format(a=a, b=b)
    return Problem(
        {"a": a, "b": b}, {"carries": level, "digits": n}, question, "\n".join(lines), str(total)
    )


@generator(
    "arithmetic.sub", "column subtraction; borrows none, some or all", features={"borrows": LEVELS}
)
def sub(rng: Random, spec: Spec) -> Problem:
    lo, hi = DIGITS[spec.difficulty]
    n = rint(rng, lo, hi)
    level = pick(rng, spec, "borrows", LEVELS)
    if level == "some":
        n = max(n, 3)  # two lower columns at least: one borrows, one does not
    while True:
        pattern = _pattern(rng, level, n - 1)  # the top column never borrows
        xs, ys, borrow = [], [], 0
        for want in pattern:
            if want:
                x = rint(rng, borrow, 8 + borrow)
                y = rint(rng, x - borrow + 1, 9)
            else:
                x = rint(rng, borrow, 9)
                y = rint(rng, 0, x - borrow)
            xs.append(x)
            ys.append(y)
            borrow = int(want)
        x = rint(rng, 1 + borrow, 9)
        xs.append(x)
        ys.append(rint(rng, 1, x - borrow))
        a, b = _digits_of(xs), _digits_of(ys)
        if a != b:
            break
    ja = spec.ja
    places = PLACES_JA if ja else PLACES_EN
    lines = [
        "筆算で、一の位から順に計算します。" if ja else "Subtract column by column, from the ones."
    ]
    borrow = 0
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        top = x - borrow
        if ja:
            head = f"{places[i]}: 1 貸したので {x} - 1 = {top}。" if borrow else f"{places[i]}: "
        else:
            head = f"{places[i]}: we lent 1, so {x} - 1 = {top}; " if borrow else f"{places[i]}: "
        if top < y:
            if ja:
                lines.append(
                    f"{head}{top} から {y} は引けないので、{places[i + 1]}から 1 借りて "
                    f"{top + 10} - {y} = {top + 10 - y}"
                )
            else:
                lines.append(
                    f"{head}{top} < {y}, so borrow 1 from the {places[i + 1]}: "
                    f"{top + 10} - {y} = {top + 10 - y}"
                )
            borrow = 1
        else:
            lines.append(f"{head}{top} - {y} = {top - y}")
            borrow = 0
    lines.append(f"よって、{a} - {b} = {a - b} です。" if ja else f"So {a} - {b} = {a - b}.")
    templates = SUB_JA if ja else SUB_EN
    question = templates[int(rng.random() * len(templates))].format(a=a, b=b)
    return Problem(
        {"a": a, "b": b}, {"borrows": level, "digits": n}, question, "\n".join(lines), str(a - b)
    )


MUL_SIZES = {
    "easy": ((2, 1), (2, 2)),
    "medium": ((3, 2), (2, 2), (3, 1)),
    "hard": ((4, 3), (3, 3), (4, 2)),
}
MUL_JA = (
    "{a} × {b} を計算しなさい。",
    "{a} × {b} はいくつですか。",
    "次のかけ算をしてください。\n{a} × {b}",
)
MUL_EN = ("Compute {a} × {b}.", "What is {a} × {b}?", "Multiply {a} by {b}.")


def _place_parts(x: int) -> list[int]:
    """Nonzero place values of ``x``, highest first: 305 -> [300, 5]."""
    text = str(x)
    return [int(c) * 10 ** (len(text) - 1 - i) for i, c in enumerate(text) if c != "0"]


@generator("arithmetic.mul", "multiplication by place values")
def mul(rng: Random, spec: Spec) -> Problem:
    sizes = MUL_SIZES[spec.difficulty]
    da, db = sizes[int(rng.random() * len(sizes))]
    a = rint(rng, 10 ** (da - 1), 10**da - 1)
    b = rint(rng, max(2, 10 ** (db - 1)), 10**db - 1)
    ja = spec.ja
    split, other = (a, b) if db == 1 else (b, a)
    parts = _place_parts(split)
    if len(parts) == 1:
        lines = [f"{a} × {b} = {a * b}"]
    else:
        joined = " + ".join(map(str, parts))
        if ja:
            lines = [f"{split} を位ごとに {joined} と分けて、{other} を掛けます。"]
        else:
            lines = [f"Split {split} by place value into {joined} and multiply each by {other}."]
        lines += [f"{p} × {other} = {p * other}" for p in parts]
        products = " + ".join(str(p * other) for p in parts)
        lines.append(
            f"これらを足して {products} = {a * b}" if ja else f"Add them: {products} = {a * b}"
        )
    lines.append(f"よって、{a} × {b} = {a * b} です。" if ja else f"So {a} × {b} = {a * b}.")
    templates = MUL_JA if ja else MUL_EN
    question = templates[int(rng.random() * len(templates))].format(a=a, b=b)
    return Problem(
        {"a": a, "b": b}, {"digits": f"{da}x{db}"}, question, "\n".join(lines), str(a * b)
    )


DIV_RANGES = {
    "easy": ((2, 12), (2, 299)),
    "medium": ((2, 29), (11, 999)),
    "hard": ((12, 99), (101, 9999)),
}
DIV_JA = (
    "{a} ÷ {b} を計算しなさい。",
    "{a} ÷ {b} はいくつですか。",
    "{a} 個のあめを {b} 人で同じ数ずつ分けると、1 人分は何個になりますか。",
)
DIV_EN = (
    "Compute {a} ÷ {b}.",
    "What is {a} ÷ {b}?",
    "{a} sweets are shared equally among {b} children. How many does each child get?",
)


@generator("arithmetic.div", "exact long division")
def div(rng: Random, spec: Spec) -> Problem:
    (b_lo, b_hi), (q_lo, q_hi) = DIV_RANGES[spec.difficulty]
    b, q = rint(rng, b_lo, b_hi), rint(rng, q_lo, q_hi)
    a = b * q
    ja = spec.ja
    lines = [
        "筆算で、上の位から順に割っていきます。" if ja else "Long division, from the highest digit."
    ]
    cur, started = 0, False
    for digit in str(a):
        cur = cur * 10 + int(digit)
        d = cur // b
        if not started and d == 0:
            continue
        started = True
        r = cur - d * b
        if ja:
            lines.append(f"{cur} ÷ {b} = {d} あまり {r}" if r else f"{cur} ÷ {b} = {d}")
        else:
            lines.append(f"{cur} ÷ {b} = {d} remainder {r}" if r else f"{cur} ÷ {b} = {d}")
        cur = r
    if ja:
        lines.append(f"商は {q} で、あまりはありません。確かめ: {b} × {q} = {a}")
    else:
        lines.append(f"The quotient is {q} with no remainder. Check: {b} × {q} = {a}")
    templates = DIV_JA if ja else DIV_EN
    question = templates[int(rng.random() * len(templates))].format(a=a, b=b)
    return Problem({"a": a, "b": b}, {}, question, "\n".join(lines), str(q))


SHAPES = ("a+b*c", "(a+b)*c", "a*b-c/d", "(a-b)*c+d/e", "a-(b+c*d)/e")
SHAPES_BY = {"easy": SHAPES[:2], "medium": SHAPES[:4], "hard": SHAPES}
LIMIT = {"easy": 12, "medium": 20, "hard": 50}
ORDER_JA = ("{e} を計算しなさい。", "次の式を計算してください。\n{e}", "{e} の値を求めなさい。")
ORDER_EN = ("Evaluate {e}.", "Compute {e}.", "What is the value of {e}?")


def _order_numbers(rng: Random, shape: str, m: int) -> tuple[dict, str, list[tuple[str, int]], int]:
    """(params, expression, [(step, value)], result) for one shape."""
    a, b, c = rint(rng, 1, m), rint(rng, 1, m), rint(rng, 2, m)
    if shape == "a+b*c":
        return (
            {"a": a, "b": b, "c": c},
            f"{a} + {b} × {c}",
            [(f"{b} × {c}", b * c), (f"{a} + {b * c}", a + b * c)],
            a + b * c,
        )
    if shape == "(a+b)*c":
        return (
            {"a": a, "b": b, "c": c},
            f"({a} + {b}) × {c}",
            [(f"{a} + {b}", a + b), (f"{a + b} × {c}", (a + b) * c)],
            (a + b) * c,
        )
    d = rint(rng, 2, max(2, m // 2))
    if shape == "a*b-c/d":
        c = c * d
        r = a * b - c // d
        return (
            {"a": a, "b": b, "c": c, "d": d},
            f"{a} × {b} - {c} ÷ {d}",
            [(f"{a} × {b}", a * b), (f"{c} ÷ {d}", c // d), (f"{a * b} - {c // d}", r)],
            r,
        )
    e = rint(rng, 2, max(2, m // 2))
    if shape == "(a-b)*c+d/e":
        a = a + b  # so that a - b is the drawn a, at least 1
        d = d * e
        r = (a - b) * c + d // e
        return (
            {"a": a, "b": b, "c": c, "d": d, "e": e},
            f"({a} - {b}) × {c} + {d} ÷ {e}",
            [
                (f"{a} - {b}", a - b),
                (f"{a - b} × {c}", (a - b) * c),
                (f"{d} ÷ {e}", d // e),
                (f"{(a - b) * c} + {d // e}", r),
            ],
            r,
        )
    s = b + c * d
    divisors = [x for x in range(2, min(s, 60) + 1) if s % x == 0] or [1]
    e = divisors[int(rng.random() * len(divisors))]
    r = a - s // e
    return (
        {"a": a, "b": b, "c": c, "d": d, "e": e},
        f"{a} - ({b} + {c} × {d}) ÷ {e}",
        [
            (f"{c} × {d}", c * d),
            (f"{b} + {c * d}", s),
            (f"{s} ÷ {e}", s // e),
            (f"{a} - {s // e}", r),
        ],
        r,
    )


@generator(
    "arithmetic.order",
    "order of operations (brackets, × and ÷ before + and -)",
    features={"shape": SHAPES},
)
def order(rng: Random, spec: Spec) -> Problem:
    shapes = SHAPES_BY[spec.difficulty]
    shape = pick(rng, spec, "shape", shapes)
    params, expr, steps, result = _order_numbers(rng, shape, LIMIT[spec.difficulty])
    ja = spec.ja
    if ja:
        lines = ["かっこの中、次にかけ算・わり算、最後にたし算・ひき算の順に計算します。"]
    else:
        lines = ["Brackets first, then × and ÷, then + and -."]
    lines += [f"{s} = {v}" for s, v in steps]
    lines.append(f"よって、{expr} = {result} です。" if ja else f"So {expr} = {result}.")
    templates = ORDER_JA if ja else ORDER_EN
    question = templates[int(rng.random() * len(templates))].format(e=expr)
    params["shape"] = shape
    return Problem(params, {"shape": shape}, question, "\n".join(lines), str(result))
