"""Ratios: sharing a quantity in a ratio (two or three parts) and solving a proportion."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from math import gcd
from random import Random

from plamo_fast.synth.numbers import frac, rint
from plamo_fast.synth.registry import Problem, Spec, generator

SPLIT_JA = (
    (
        "あめ {N} 個を{x}と{y}で {r} の比に分けます。{who}は何個もらえますか。",
        ("兄", "弟", "妹"),
        " 個",
    ),
    (
        "{N} 円を{x}と{y}で {r} の比に分けます。{who}の取り分は何円ですか。",
        ("姉", "妹", "弟"),
        " 円",
    ),
    (
        "長さ {N} cm のリボンを {r} の比に切り分けて、{x}と{y}が受け取ります。{who}のリボンは何 cm ですか。",
        ("Aさん", "Bさん", "Cさん"),
        " cm",
    ),  # fmt: skip
)
SPLIT_EN = (
    (
        "{N} sweets are shared between {x} and {y} in the ratio {r}. How many does {who} get?",
        ("Ann", "Ben", "Cy"),
        "",
    ),  # fmt: skip
    (
        "{N} yen is divided between {x} and {y} in the ratio {r}. How much does {who} receive?",
        ("Mia", "Leo", "Sam"),
        " yen",
    ),  # fmt: skip
    (
        "A {N} cm ribbon is cut in the ratio {r} for {x} and {y}. How long is {who}'s piece?",
        ("Kai", "Noa", "Eli"),
        " cm",
    ),  # fmt: skip
)
PARTS = {"easy": (2, 6, 80), "medium": (2, 12, 120), "hard": (3, 12, 150)}


@generator("ratios.split", "sharing a quantity in a given ratio")
def split(rng: Random, spec: Spec) -> Problem:
    count, hi, k_hi = PARTS[spec.difficulty]
    if spec.difficulty == "hard" and rng.random() < 0.5:
        count = 2
    while True:
        parts = [rint(rng, 1, hi) for _ in range(count)]
        g = 0
        for p in parts:
            g = gcd(g, p)
        if g == 1 and len(set(parts)) > 1:
            break
    k = rint(rng, 2, k_hi)
    who = int(rng.random() * count)
    total = sum(parts) * k
    ja = spec.ja
    kind = int(rng.random() * 3)
    text, names, unit = (SPLIT_JA if ja else SPLIT_EN)[kind]
    names = names[:count]
    ratio = " : ".join(map(str, parts))
    sep = "、" if ja else ", "
    x = sep.join(names[:-1])
    question = text.format(N=total, x=x, y=names[-1], r=ratio, who=names[who])
    s = " + ".join(map(str, parts))
    answer = parts[who] * k
    if ja:
        lines = [
            f"全体を {s} = {sum(parts)} とみます。",
            f"比の 1 にあたる量は {total} ÷ {sum(parts)} = {k}{unit}です。",
            f"{names[who]}の分は比の {parts[who]} なので、{k} × {parts[who]} = {answer}{unit}",
            f"よって、{names[who]}は {answer}{unit}です。",
        ]
    else:
        lines = [
            f"The whole is {s} = {sum(parts)} parts.",
            f"One part is {total} ÷ {sum(parts)} = {k}{unit}.",
            f"{names[who]} gets {parts[who]} parts: {k} × {parts[who]} = {answer}{unit}.",
            f"So {names[who]} gets {answer}{unit}.",
        ]
    params = {"parts": parts, "k": k, "who": who}
    return Problem(params, {"parts": count}, question, "\n".join(lines), str(answer))


PROP_JA = ("次の式の x の値を求めなさい。\n{e}", "比例式 {e} を解きなさい。", "{e} のとき、x はいくつですか。")  # fmt: skip
PROP_EN = ("Find x: {e}", "Solve the proportion {e}.", "If {e}, what is x?")
PROP_RANGE = {"easy": 12, "medium": 30, "hard": 40}


@generator("ratios.proportion", "solving a proportion a : b = c : x")
def proportion(rng: Random, spec: Spec) -> Problem:
    m = PROP_RANGE[spec.difficulty]
    while True:
        a, b, c = rint(rng, 1, m), rint(rng, 1, m), rint(rng, 1, m)
        if spec.difficulty == "hard" or (b * c) % a == 0:
            break
    position = int(rng.random() * 4)  # where x stands
    terms = [str(a), str(b), str(c), "x"]
    # a : b = c : x is the same as b : a = x : c, c : x = a : b and x : c = b : a
    order = ((0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0))[position]
    t = [terms[i] for i in order]
    expr = f"{t[0]} : {t[1]} = {t[2]} : {t[3]}"
    ja = spec.ja
    outer, inner = (t[0], t[3]), (t[1], t[2])
    known, x_with = (inner, outer[0] if outer[1] == "x" else outer[1]) if "x" in outer else (outer, inner[0] if inner[1] == "x" else inner[1])  # fmt: skip
    answer = frac(b * c, a)
    lines = [
        "比例式では、外側の項の積と内側の項の積が等しくなります。"
        if ja
        else "In a proportion, the product of the outer terms equals the product of the inner terms.",  # fmt: skip
        f"{x_with} × x = {known[0]} × {known[1]} = {b * c}",
        f"x = {b * c} ÷ {x_with} = {answer}",
        f"よって、x = {answer} です。" if ja else f"So x = {answer}.",
    ]
    templates = PROP_JA if ja else PROP_EN
    question = templates[int(rng.random() * len(templates))].format(e=expr)
    params = {"a": a, "b": b, "c": c, "position": position}
    features = {"whole": (b * c) % a == 0}
    return Problem(params, features, question, "\n".join(lines), answer)
