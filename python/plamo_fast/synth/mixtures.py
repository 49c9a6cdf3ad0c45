"""Salt-water mixtures (食塩水): the concentration after dissolving salt, after mixing two
solutions, and the water to add for a weaker solution. Concentrations are exact decimals."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import dec, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

SHAPES = ("dissolve", "mix", "dilute")
BY_DIFFICULTY = {"easy": SHAPES[:1], "medium": SHAPES[:2], "hard": SHAPES}
TOTALS = (20, 25, 32, 40, 50, 64, 80, 100, 125, 128, 160, 200, 250, 256, 320, 400, 500, 512,
          625, 640, 800, 1000, 1024, 1250, 1280, 1600, 2000)  # fmt: skip  # a denominator of 2s and 5s: exact decimals


@generator("mixtures.salt", "salt-water concentration: dissolve, mix, dilute", features={"shape": SHAPES})  # fmt: skip
def salt(rng: Random, spec: Spec) -> Problem:
    shape = pick(rng, spec, "shape", BY_DIFFICULTY[spec.difficulty])
    ja = spec.ja
    if shape == "dissolve":  # larger totals, which have more amounts of salt, more often
        total = TOTALS[int(rng.random() ** 0.5 * len(TOTALS))]
        s = rint(rng, 1, total // 4)
        water = total - s
        answer = dec(100 * s, total)
        if ja:
            question = f"水 {water} g に食塩 {s} g を溶かしました。この食塩水の濃度は何 % ですか。"
            lines = [f"食塩水の重さは {water} + {s} = {total} g です。", f"濃度 = 食塩 ÷ 食塩水 × 100 = {s} ÷ {total} × 100 = {answer}", f"よって、{answer}% です。"]  # fmt: skip
        else:
            question = f"{s} g of salt is dissolved in {water} g of water. What is the concentration in percent?"  # fmt: skip
            lines = [f"The solution weighs {water} + {s} = {total} g.", f"concentration = salt ÷ solution × 100 = {s} ÷ {total} × 100 = {answer}", f"So it is {answer}%."]  # fmt: skip
        params = {"s": s, "water": water, "shape": shape}
    elif shape == "mix":
        total = TOTALS[int(rng.random() * len(TOTALS))]
        a = 10 * rint(rng, 1, total // 10 - 1)
        b = total - a
        p, q = rint(rng, 1, 20), rint(rng, 1, 19)
        q += q >= p  # q != p
        sa, sb, salt = dec(a * p, 100), dec(b * q, 100), dec(a * p + b * q, 100)  # grams
        answer = dec(a * p + b * q, total)
        if ja:
            question = f"{p}% の食塩水 {a} g と {q}% の食塩水 {b} g を混ぜると、何 % の食塩水になりますか。"  # fmt: skip
            lines = [f"食塩の重さ: {a} × {dec(p, 100)} = {sa} g、{b} × {dec(q, 100)} = {sb} g",  # fmt: skip
                     f"食塩の合計は {sa} + {sb} = {salt} g、食塩水は {a} + {b} = {total} g",  # fmt: skip
                     f"{salt} ÷ {total} × 100 = {answer}", f"よって、{answer}% です。"]  # fmt: skip
        else:
            question = f"Mix {a} g of a {p}% salt solution with {b} g of a {q}% solution. What is the concentration of the mixture?"  # fmt: skip
            lines = [f"Salt: {a} × {dec(p, 100)} = {sa} g and {b} × {dec(q, 100)} = {sb} g",  # fmt: skip
                     f"In all {sa} + {sb} = {salt} g of salt in {a} + {b} = {total} g",  # fmt: skip
                     f"{salt} ÷ {total} × 100 = {answer}", f"So it is {answer}%."]  # fmt: skip
        params = {"a": a, "p": p, "b": b, "q": q, "shape": shape}
    else:
        while True:
            a = 50 * rint(rng, 2, 20)
            p = rint(rng, 4, 20)
            q = rint(rng, 1, p - 1)
            if (a * p) % q == 0:
                break
        s = dec(a * p, 100)  # grams of salt
        new_total = a * p // q
        water = new_total - a
        answer = str(water)
        if ja:
            question = f"{p}% の食塩水が {a} g あります。水を何 g 加えると {q}% の食塩水になりますか。"  # fmt: skip
            lines = [f"含まれる食塩は {a} × {dec(p, 100)} = {s} g で、水を加えても変わりません。",  # fmt: skip
                     f"{q}% にするには、食塩水全体が {s} ÷ {dec(q, 100)} = {new_total} g になればよいです。",  # fmt: skip
                     f"加える水は {new_total} - {a} = {water} g", f"よって、{water} g です。"]  # fmt: skip
        else:
            question = f"You have {a} g of a {p}% salt solution. How many grams of water must be added to make it {q}%?"  # fmt: skip
            lines = [f"It holds {a} × {dec(p, 100)} = {s} g of salt, which water does not change.",  # fmt: skip
                     f"At {q}% the solution must weigh {s} ÷ {dec(q, 100)} = {new_total} g.",  # fmt: skip
                     f"Water to add: {new_total} - {a} = {water} g", f"So add {water} g."]  # fmt: skip
        params = {"a": a, "p": p, "q": q, "shape": shape}
    return Problem(params, {"shape": shape}, question, "\n".join(lines), answer)
