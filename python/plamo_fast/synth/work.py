"""Work problems (仕事算), solved the Japanese way: the whole job is the least common multiple of
the days, so every rate is a whole number. Two people together (how many days, or on which day
the job is finished when the days do not come out even), or one starting and the other
finishing."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import lcm, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

SHAPES = ("together", "finish_day", "rest")
# (the whole-day "together" problems are few: drawn less often, so that they last)
BY_DIFFICULTY = {"easy": ("together", "finish_day", "finish_day"), "medium": SHAPES, "hard": SHAPES}
DAY_JA = "ある仕事を A さん 1 人ですると {a} 日、B さん 1 人ですると {b} 日かかります。2 人で一緒にすると、仕事が終わるのは何日目ですか。"  # fmt: skip
DAY_EN = "A job takes A alone {a} days and B alone {b} days. Working together, on which day do they finish (day 1, day 2, ...)?"  # fmt: skip
TOGETHER_JA = ("ある仕事を A さん 1 人ですると {a} 日、B さん 1 人ですると {b} 日かかります。2 人で一緒にすると何日で終わりますか。",  # fmt: skip
               "水そうをいっぱいにするのに、管 A だけでは {a} 分、管 B だけでは {b} 分かかります。A と B の両方を使うと何分でいっぱいになりますか。")  # fmt: skip
TOGETHER_EN = ("A job takes A alone {a} days and B alone {b} days. How many days does it take them working together?",  # fmt: skip
               "Pipe A fills a tank in {a} minutes and pipe B in {b} minutes. How many minutes do both pipes take together?")  # fmt: skip
REST_JA = "ある仕事を A さん 1 人ですると {a} 日、B さん 1 人ですると {b} 日かかります。この仕事を A さんが {k} 日した後、残りを B さんが 1 人でしました。B さんは何日働きましたか。"  # fmt: skip
REST_EN = "A job takes A alone {a} days and B alone {b} days. A works for {k} days, then B finishes the rest alone. How many days does B work?"  # fmt: skip


def _together(rng: Random, spec: Spec) -> tuple[int, int, int]:
    """``(a, b, t)`` with ``1/a + 1/b = 1/t``, i.e. ``(a - t)(b - t) = t²``."""
    t = rint(rng, 2, {"easy": 12, "medium": 30, "hard": 60}[spec.difficulty])
    square = t * t
    divisors = [d for d in range(1, t) if square % d == 0]  # d = t: a = b
    d = divisors[int(rng.random() * len(divisors))]
    a, b = t + d, t + square // d
    return (a, b, t) if rng.random() < 0.5 else (b, a, t)


@generator("work.together", "work problems: together, or one starts and the other finishes", features={"shape": SHAPES})  # fmt: skip
def together(rng: Random, spec: Spec) -> Problem:
    shape = pick(rng, spec, "shape", BY_DIFFICULTY[spec.difficulty])
    ja = spec.ja
    if shape == "together":
        a, b, t = _together(rng, spec)
        k = 0
        pipes = int(rng.random() * 2)
        question = (TOGETHER_JA if ja else TOGETHER_EN)[pipes].format(a=a, b=b)
        unit = ("分" if pipes else "日") if ja else ("minutes" if pipes else "days")
    elif shape == "finish_day":
        hi = {"easy": 60, "medium": 120, "hard": 150}[spec.difficulty]
        while True:
            a, b = rint(rng, 2, hi), rint(rng, 2, hi)
            if (a * b) % (a + b):  # the days do not come out even
                break
        k = 0
        t = -(-a * b // (a + b))
        question = (DAY_JA if ja else DAY_EN).format(a=a, b=b)
        unit = "日" if ja else "days"
    else:
        while True:
            a, b = rint(rng, 4, 60), rint(rng, 4, 60)
            k = rint(rng, 1, a - 1)
            if (b * (a - k)) % a == 0:
                break
        t = b * (a - k) // a
        question = (REST_JA if ja else REST_EN).format(a=a, b=b, k=k)
        unit = "日" if ja else "days"
    whole = lcm(a, b)
    ra, rb = whole // a, whole // b
    lines = [
        f"仕事全体の量を {a} と {b} の最小公倍数の {whole} とします。"
        if ja
        else f"Take the whole job as {whole}, the least common multiple of {a} and {b}.",  # fmt: skip
        f"1 {unit}あたり、A は {whole} ÷ {a} = {ra}、B は {whole} ÷ {b} = {rb} の仕事をします。"
        if ja
        else f"Per {unit[:-1]}, A does {whole} ÷ {a} = {ra} and B does {whole} ÷ {b} = {rb}.",  # fmt: skip
    ]
    if shape == "finish_day":
        q, r = divmod(whole, ra + rb)
        lines.append(f"2 人合わせると 1 日に {ra} + {rb} = {ra + rb}" if ja else f"Together: {ra} + {rb} = {ra + rb} per day")  # fmt: skip
        lines.append(f"{whole} ÷ {ra + rb} = {q} あまり {r} なので、{q} 日では終わらず、{t} 日目に終わります。" if ja else f"{whole} ÷ {ra + rb} = {q} remainder {r}: not done after {q} days, so they finish on day {t}.")  # fmt: skip
        lines.append(f"よって、{t} 日目です。" if ja else f"So they finish on day {t}.")
        params = {"a": a, "b": b, "k": k, "shape": shape}
        return Problem(params, {"shape": shape}, question, "\n".join(lines), str(t))
    if shape == "together":
        lines.append(f"2 つ合わせると 1 {unit}に {ra} + {rb} = {ra + rb}" if ja else f"Together: {ra} + {rb} = {ra + rb} per {unit[:-1]}")  # fmt: skip
        lines.append(f"{whole} ÷ {ra + rb} = {t}")
    else:
        done = ra * k
        lines.append(f"A が {k} 日でした仕事は {ra} × {k} = {done}、残りは {whole} - {done} = {whole - done}" if ja else f"In {k} days A does {ra} × {k} = {done}; {whole} - {done} = {whole - done} is left.")  # fmt: skip
        lines.append(f"{whole - done} ÷ {rb} = {t}")
    lines.append(f"よって、{t} {unit}です。" if ja else f"So the answer is {t} {unit}.")
    params = {"a": a, "b": b, "k": k, "shape": shape}
    return Problem(params, {"shape": shape}, question, "\n".join(lines), str(t))
