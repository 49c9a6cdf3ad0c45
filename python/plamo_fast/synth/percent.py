"""Percentages: a percentage of a quantity, what percent one number is of another, and price
changes (a discount or a rise, asking the new or the original price). In Japanese, multiples of
10 % are also written as 割 (2割 = 20 %)."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from math import gcd
from random import Random

from plamo_fast.synth.numbers import dec, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick


def _rate(p: int) -> str:
    return dec(p, 100)


OF_JA = ("{b} の {p}% はいくつですか。", "{b} g の {p}% は何 g ですか。", "{b} 人の {p}% は何人ですか。")  # fmt: skip
OF_WARI_JA = "{b} 円の {w} 割は何円ですか。"
OF_EN = ("What is {p}% of {b}?", "How many grams is {p}% of {b} g?", "Find {p}% of {b}.")


@generator("percent.of", "a percentage of a quantity")
def of(rng: Random, spec: Spec) -> Problem:
    difficulty = spec.difficulty
    if difficulty == "easy":
        p, b = 10 * rint(rng, 1, 9), 10 * rint(rng, 1, 300)
    elif difficulty == "medium":
        p = rint(rng, 1, 99)
        b = 100 // gcd(p, 100) * rint(rng, 1, 200)  # the answer is whole
    else:
        p, b = rint(rng, 1, 250), rint(rng, 10, 2000)
    answer = dec(p * b, 100)
    ja = spec.ja
    k = int(rng.random() * 4)
    if k == 2 and "." in answer:
        k = 0  # not a fraction of a person
    if ja and k == 3 and p % 10 == 0 and p < 100:
        question = OF_WARI_JA.format(b=b, w=p // 10)
        lines = [f"{p // 10} 割は {_rate(p)} を表します。"]
    else:
        question = (OF_JA if ja else OF_EN)[k % 3].format(b=b, p=p)
        lines = [f"{p}% を小数で表すと {_rate(p)} です。" if ja else f"{p}% as a decimal is {_rate(p)}."]  # fmt: skip
    lines.append(f"{b} × {_rate(p)} = {answer}")
    lines.append(f"よって、答えは {answer} です。" if ja else f"So the answer is {answer}.")
    return Problem({"p": p, "b": b}, {}, question, "\n".join(lines), answer)


RATIO_JA = ("{a} は {b} の何 % ですか。", "{b} 人のうち {a} 人が参加しました。参加した人は全体の何 % ですか。",
            "定員 {b} 人のバスに {a} 人が乗っています。乗車率は何 % ですか。")  # fmt: skip
RATIO_EN = ("What percent of {b} is {a}?", "{a} of {b} people took part. What percent took part?",
            "A bus for {b} people carries {a}. What percent of the seats are taken?")  # fmt: skip


@generator("percent.ratio", "what percent one number is of another")
def ratio(rng: Random, spec: Spec) -> Problem:
    difficulty = spec.difficulty
    if difficulty == "easy":
        tenths = 10 * rint(rng, 1, 100)  # the percentage in tenths of a percent
        b = 100 * rint(rng, 1, 40)
    elif difficulty == "medium":
        p = rint(rng, 1, 150)
        tenths = 10 * p
        b = 100 // gcd(p, 100) * rint(rng, 1, 150)
    else:
        tenths = rint(rng, 1, 1500)  # e.g. 125: 12.5 %
        top = tenths // gcd(tenths, 10)  # the percentage's numerator in lowest terms
        b = 1000 // gcd(top, 1000) * rint(rng, 1, 20)
    a = b * tenths // 1000
    ja = spec.ja
    k = int(rng.random() * 3)
    if k and tenths > 1000:
        k = 0  # more than everyone only makes sense for plain numbers
    question = (RATIO_JA if ja else RATIO_EN)[k].format(a=a, b=b)
    share = dec(a, b)
    answer = dec(tenths, 10)
    lines = [
        f"{a} ÷ {b} = {share}" + ("（割合）" if ja else " (the proportion)"),
        f"百分率にするには 100 をかけます: {share} × 100 = {answer}"
        if ja
        else f"As a percentage, multiply by 100: {share} × 100 = {answer}",  # fmt: skip
        f"よって、{answer}% です。" if ja else f"So it is {answer}%.",
    ]
    return Problem({"a": a, "b": b}, {}, question, "\n".join(lines), answer)


DIRECTIONS = ("down", "up")
ASKS = ("new", "original")
CHANGE_NEW_JA = {"down": ("定価 {P} 円の品物を {p}% 引きで買いました。代金は何円ですか。", "{P} 円のシャツが {w} 割引きで売られています。いくらで買えますか。"),  # fmt: skip
                 "up": ("{P} 円だった商品が {p}% 値上がりしました。新しい値段は何円ですか。", "{P} 円の品物に {w} 割の利益を見込んで定価をつけました。定価は何円ですか。")}  # fmt: skip
CHANGE_NEW_EN = {"down": ("An item costs {P} yen and is sold at {p}% off. What is the sale price?",) * 2,  # fmt: skip
                 "up": ("A price of {P} yen rises by {p}%. What is the new price?",) * 2}  # fmt: skip
CHANGE_OLD_JA = {"down": "ある品物を定価の {p}% 引きで買ったところ、代金は {N} 円でした。定価は何円ですか。",  # fmt: skip
                 "up": "ある商品の値段が {p}% 上がって {N} 円になりました。元の値段は何円ですか。"}  # fmt: skip
CHANGE_OLD_EN = {"down": "After a {p}% discount an item costs {N} yen. What was the original price?",  # fmt: skip
                 "up": "After a {p}% rise a price is {N} yen. What was the price before?"}  # fmt: skip


@generator("percent.change", "a discount or a rise: the new or the original price", features={"direction": DIRECTIONS, "ask": ASKS})  # fmt: skip
def change(rng: Random, spec: Spec) -> Problem:
    direction = pick(rng, spec, "direction", DIRECTIONS)
    ask = pick(rng, spec, "ask", ASKS if spec.difficulty == "hard" else ASKS[:1])
    p = 10 * rint(rng, 1, 5) if spec.difficulty == "easy" else 5 * rint(rng, 1, 18)
    factor = 100 - p if direction == "down" else 100 + p
    unit = 100 // gcd(factor, 100)  # the new price is whole when the old is a multiple of this
    old = unit * rint(rng, 1, 60000 // unit // 10) * (10 if unit < 10 else 1)
    new = old * factor // 100
    ja = spec.ja
    rate = _rate(factor)
    k = int(rng.random() * 2)
    if ask == "new":
        if ja and k == 1 and p % 10 == 0:
            question = CHANGE_NEW_JA[direction][1].format(P=old, w=p // 10)
        else:
            question = (CHANGE_NEW_JA if ja else CHANGE_NEW_EN)[direction][0].format(P=old, p=p)
        sign = "-" if direction == "down" else "+"
        lines = [
            f"{'値引き後' if direction == 'down' else '値上げ後'}の値段は元の値段の 100% {sign} {p}% = {factor}% です。"
            if ja
            else f"The new price is 100% {sign} {p}% = {factor}% of the old one.",  # fmt: skip
            f"{old} × {rate} = {new}",
        ]
        answer = new
    else:
        question = (CHANGE_OLD_JA if ja else CHANGE_OLD_EN)[direction].format(p=p, N=new)
        lines = [
            f"{new} 円は元の値段の {factor}%（{rate} 倍）にあたります。"
            if ja
            else f"{new} yen is {factor}% ({rate} times) of the original price.",  # fmt: skip
            f"元の値段 = {new} ÷ {rate} = {old}"
            if ja
            else f"Original price = {new} ÷ {rate} = {old}",  # fmt: skip
        ]
        answer = old
    lines.append(f"よって、答えは {answer} 円です。" if ja else f"So the answer is {answer} yen.")
    params = {"old": old, "p": p, "direction": direction, "ask": ask}
    return Problem(params, {"direction": direction, "ask": ask}, question, "\n".join(lines), str(answer))  # fmt: skip
