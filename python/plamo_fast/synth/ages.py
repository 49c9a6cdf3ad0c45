"""Age problems: two ages from their sum and difference, when one age becomes a multiple of the
other, and a current age from a sum and a future multiple."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

SHAPES = ("sumdiff", "later", "sum")
BY_DIFFICULTY = {"easy": SHAPES[:2], "medium": SHAPES, "hard": SHAPES}
PEOPLE_JA = (("父", "子ども"), ("母", "娘"), ("祖父", "孫"))
PEOPLE_EN = (("the father", "the son"), ("the mother", "the daughter"), ("the grandfather", "the grandson"))  # fmt: skip


@generator("ages.problems", "age problems: sum and difference, a future multiple", features={"shape": SHAPES})  # fmt: skip
def problems(rng: Random, spec: Spec) -> Problem:
    shape = pick(rng, spec, "shape", BY_DIFFICULTY[spec.difficulty])
    who = int(rng.random() * 3)
    old, young = (PEOPLE_JA if spec.ja else PEOPLE_EN)[who]
    ja = spec.ja
    child = rint(rng, 1, 40 if who < 2 else 25)
    gap = rint(rng, 18, 50) + (25 if who == 2 else 0)
    parent = child + gap
    if shape == "sumdiff":
        s, d = parent + child, gap
        if ja:
            question = f"{old}と{young}の年齢の和は {s} 歳で、差は {d} 歳です。{old}は何歳ですか。"
            lines = [f"和と差を足すと{old}の年齢の 2 倍になります: {s} + {d} = {s + d}", f"{s + d} ÷ 2 = {parent}", f"よって、{old}は {parent} 歳です。"]  # fmt: skip
        else:
            question = f"The ages of {old} and {young} add up to {s}, and differ by {d}. How old is {old}?"  # fmt: skip
            lines = [f"Sum plus difference is twice the older age: {s} + {d} = {s + d}", f"{s + d} ÷ 2 = {parent}", f"So the answer is {parent}."]  # fmt: skip
        answer = parent
        params = {"parent": parent, "child": child, "shape": shape, "who": who}
        return Problem(params, {"shape": shape}, question, "\n".join(lines), str(answer))
    # parent + n = k (child + n): choose k and n, then the ages
    oldest = 85 if who < 2 else 105
    while True:  # a parent at least 18 years older than the child, and a believable age
        k = rint(rng, 2, {"easy": 3, "medium": 5, "hard": 7}[spec.difficulty])
        n = rint(rng, 1, 40)
        child = rint(rng, 1, 30)
        parent = k * (child + n) - n
        if parent - child >= (18 if who < 2 else 40) and parent <= oldest:
            break
    if shape == "later":
        if ja:
            question = f"今、{old}は {parent} 歳、{young}は {child} 歳です。{old}の年齢が{young}の年齢の {k} 倍になるのは何年後ですか。"  # fmt: skip
            lines = [f"□ 年後に {k} 倍になるとすると、{parent} + □ = {k} × ({child} + □)",
                     f"{parent} + □ = {k * child} + {k}□ なので、{k - 1}□ = {parent} - {k * child} = {parent - k * child}",  # fmt: skip
                     f"□ = {parent - k * child} ÷ {k - 1} = {n}", f"よって、{n} 年後です。"]  # fmt: skip
        else:
            question = f"Now {old} is {parent} and {young} is {child}. In how many years will {old} be {k} times as old as {young}?"  # fmt: skip
            lines = [f"In n years: {parent} + n = {k} × ({child} + n)",
                     f"{parent} + n = {k * child} + {k}n, so {k - 1}n = {parent} - {k * child} = {parent - k * child}",  # fmt: skip
                     f"n = {parent - k * child} ÷ {k - 1} = {n}", f"So in {n} years."]  # fmt: skip
        answer = n
    else:
        s = parent + child
        if ja:
            question = f"今、{old}と{young}の年齢の和は {s} 歳です。{n} 年後には、{old}の年齢は{young}の年齢のちょうど {k} 倍になります。今、{young}は何歳ですか。"  # fmt: skip
            lines = [f"今の{young}の年齢を x 歳とすると、{old}は ({s} - x) 歳です。",
                     f"{n} 年後について: {s} - x + {n} = {k}(x + {n})",
                     f"{s + n} - x = {k}x + {k * n} より、{k + 1}x = {s + n - k * n}",
                     f"x = {s + n - k * n} ÷ {k + 1} = {child}", f"よって、{young}は今 {child} 歳です。"]  # fmt: skip
        else:
            question = f"The ages of {old} and {young} now add up to {s}. In {n} years {old} will be exactly {k} times as old as {young}. How old is {young} now?"  # fmt: skip
            lines = [f"Let the younger age be x; the older is {s} - x.",
                     f"In {n} years: {s} - x + {n} = {k}(x + {n})",
                     f"{s + n} - x = {k}x + {k * n}, so {k + 1}x = {s + n - k * n}",
                     f"x = {s + n - k * n} ÷ {k + 1} = {child}", f"So the answer is {child}."]  # fmt: skip
        answer = child
    params = {"parent": parent, "child": child, "k": k, "n": n, "shape": shape, "who": who}
    return Problem(params, {"shape": shape}, question, "\n".join(lines), str(answer))
