"""Units and rates: converting lengths, masses, volumes and times (answers may be decimals or
fractions of an hour, always exact), and unit rates (price per item, litres per minute)."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from math import gcd
from random import Random

from plamo_fast.synth.numbers import dec, frac, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

# (unit, its size in the smallest unit of the kind)
KINDS = {
    "length": (("mm", 1), ("cm", 10), ("m", 1000), ("km", 1000000)),
    "mass": (("mg", 1), ("g", 1000), ("kg", 1000000), ("t", 1000000000)),
    "volume": (("mL", 1), ("dL", 100), ("L", 1000)),
    "time": (("秒", 1), ("分", 60), ("時間", 3600)),
}
TIME_EN = {"秒": "seconds", "分": "minutes", "時間": "hours"}
CONVERT_JA = ("{v} {u}は何{w}ですか。", "{v} {u}を{w}で表しなさい。", "{v} {u} = □{w} の □ にあてはまる数を答えなさい。")  # fmt: skip
CONVERT_EN = ("How many {w} is {v} {u}?", "Express {v} {u} in {w}.", "Fill in the blank: {v} {u} = ___ {w}.")  # fmt: skip
KIND_NAMES = tuple(KINDS)


def _unit(name: str, ja: bool) -> str:
    return name if ja else TIME_EN.get(name, name)


@generator("units.convert", "unit conversions (length, mass, volume, time)", features={"kind": KIND_NAMES})  # fmt: skip
def convert(rng: Random, spec: Spec) -> Problem:
    kind = pick(rng, spec, "kind", KIND_NAMES)
    units = KINDS[kind]
    while True:
        i, j = int(rng.random() * len(units)), int(rng.random() * len(units))
        if i != j and abs(i - j) <= (1 if spec.difficulty == "easy" else 2):
            break
    (u, su), (w, sw) = units[i], units[j]
    places = {"easy": 0, "medium": 1, "hard": 2}[spec.difficulty]
    vn, vd = rint(rng, 1, 999), 10**places  # the value vn/vd
    if kind == "time" and su < sw:
        vn, vd = rint(rng, 1, 40) * (15 if spec.difficulty != "hard" else 1), 1
    ja = spec.ja
    v, shown = dec(vn, vd), _answer(vn * su, vd * sw)
    uu, ww = _unit(u, ja), _unit(w, ja)
    if su > sw:
        factor = su // sw
        rule = f"1 {uu} = {factor} {ww}"
        step = f"{v} × {factor} = {shown}"
    else:
        factor = sw // su
        rule = f"1 {ww} = {factor} {uu}"
        step = f"{v} ÷ {factor} = {shown}"
    lines = [
        f"{rule} なので、" if ja else f"Since {rule},",
        step,
        f"よって、{v} {uu} = {shown} {ww} です。" if ja else f"So {v} {uu} = {shown} {ww}.",
    ]
    templates = CONVERT_JA if ja else CONVERT_EN
    if ja and uu.isascii():
        uu = uu + " "  # 6.14 m を mm で; 768 分を秒で
    if ja and ww.isascii():
        ww = f" {ww} "
    question = templates[int(rng.random() * len(templates))].format(v=v, u=uu, w=ww)
    params = {"value": frac(vn, vd), "from": u, "to": w}
    return Problem(params, {"kind": kind}, question, "\n".join(lines), shown)


def _answer(n: int, d: int) -> str:
    """``n/d`` as a terminating decimal when there is one, else a reduced fraction (20 minutes
    = 1/3 hour)."""
    rest = d // gcd(n, d)  # the reduced denominator, then without its 2s and 5s
    while rest % 2 == 0:
        rest //= 2
    while rest % 5 == 0:
        rest //= 5
    return dec(n, d) if rest == 1 else frac(n, d)


RATE_SHAPES = ("price", "flow")
# (question, counter of n and m, unit of the amount)
RATE_JA = {
    "price": (("{n} 本で {p} 円のペンがあります。同じペンを {m} 本買うと何円ですか。", "本", " 円"),
              ("{n} 個で {p} 円のりんごがあります。{m} 個では何円になりますか。", "個", " 円")),
    "flow": (("{n} 分で {p} L の水を入れるポンプがあります。同じ割合で {m} 分間入れると何 L になりますか。", "分", " L"),  # fmt: skip
             ("ある機械は {n} 分で {p} 個の部品を作ります。{m} 分では何個作りますか。", "分", " 個")),  # fmt: skip
}  # fmt: skip
RATE_EN = {
    "price": (
        ("{n} pens cost {p} yen. How much do {m} of the same pens cost?", "pen", " yen"),
        ("{n} apples cost {p} yen. How much do {m} apples cost?", "apple", " yen"),
    ),
    "flow": (
        (
            "A pump fills {p} L in {n} minutes. At the same rate, how many litres does it fill in {m} minutes?",
            "minute",
            " L",
        ),  # fmt: skip
        (
            "A machine makes {p} parts in {n} minutes. How many parts does it make in {m} minutes?",
            "minute",
            " parts",
        ),
    ),  # fmt: skip
}
RATE_RANGE = {"easy": (2, 6, 20, 12), "medium": (2, 12, 50, 30), "hard": (3, 16, 250, 60)}
HARD_COUNTS = (2, 4, 5, 8, 10, 16, 20, 25)  # the rate per unit is a terminating decimal


@generator("units.rate", "unit rates: price per item, amount per minute", features={"shape": RATE_SHAPES})  # fmt: skip
def rate(rng: Random, spec: Spec) -> Problem:
    shape = pick(rng, spec, "shape", RATE_SHAPES)
    n_lo, n_hi, u_hi, m_hi = RATE_RANGE[spec.difficulty]
    k = int(rng.random() * 2)
    whole = shape == "price" or k == 1  # yen and parts come whole
    if spec.difficulty == "hard":
        n = HARD_COUNTS[int(rng.random() * len(HARD_COUNTS))]
        p = rint(rng, n, u_hi * n)
        step = n // gcd(p, n) if whole else 1
        m = step * rint(rng, 1, max(1, m_hi // step))
    else:
        n = rint(rng, n_lo, n_hi)
        p = n * rint(rng, 1, u_hi) * (10 if shape == "price" else 1)
        m = rint(rng, 1, m_hi)
    if m == n:
        m += n if spec.difficulty == "hard" else 1
    ja = spec.ja
    text, counter, amount_unit = (RATE_JA if ja else RATE_EN)[shape][k]
    question = text.format(n=n, p=p, m=m)
    amount, per = dec(p * m, n), dec(p, n)
    if ja:
        lines = [
            f"1 {counter}あたり {p} ÷ {n} = {per}{amount_unit}です。",
            f"{m} {counter}では {per} × {m} = {amount}{amount_unit}です。",
            f"よって、答えは {amount}{amount_unit}です。",
        ]
    else:
        lines = [
            f"Per {counter}: {p} ÷ {n} = {per}{amount_unit}.",
            f"For {m}: {per} × {m} = {amount}{amount_unit}.",
            f"So the answer is {amount}{amount_unit}.",
        ]
    params = {"n": n, "p": p, "m": m, "shape": shape, "k": k}
    return Problem(params, {"shape": shape}, question, "\n".join(lines), amount)
