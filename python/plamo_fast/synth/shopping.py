"""Shopping: the change from a purchase of several items, and how many items a budget buys."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import rint
from plamo_fast.synth.registry import Problem, Spec, generator

# (Japanese name, counter, English name, lowest price, highest price), prices in units of 10 yen
ITEMS = (
    ("ノート", "冊", "notebook", 8, 30), ("鉛筆", "本", "pencil", 5, 15),
    ("消しゴム", "個", "eraser", 6, 12), ("りんご", "個", "apple", 10, 30),
    ("牛乳", "本", "carton of milk", 15, 28), ("パン", "個", "bread roll", 10, 25),
    ("ジュース", "本", "bottle of juice", 12, 20), ("ボールペン", "本", "ballpoint pen", 10, 25),
)  # fmt: skip
BILLS = {"easy": (500, 1000, 2000, 5000), "medium": (1000, 2000, 5000), "hard": (5000, 10000)}
KINDS = {"easy": 1, "medium": 2, "hard": 3}
CHANGE_JA = ("{list}買って、{M} 円を出しました。おつりは何円ですか。",
             "{list}買い、{M} 円で支払いました。おつりはいくらですか。")  # fmt: skip
CHANGE_EN = ("You buy {list} and pay with {M} yen. How much change do you get?",
             "Buying {list}, you hand over {M} yen. What is the change?")  # fmt: skip


def _plural(name: str, n: int) -> str:
    if n == 1:
        return name
    if name.startswith("carton of") or name.startswith("bottle of"):
        head, _, rest = name.partition(" of ")
        return f"{head}s of {rest}"
    return name + "s"


@generator("shopping.change", "the change after buying several items")
def change(rng: Random, spec: Spec) -> Problem:
    kinds = KINDS[spec.difficulty]
    chosen: list[int] = []
    while len(chosen) < kinds:
        i = int(rng.random() * len(ITEMS))
        if i not in chosen:
            chosen.append(i)
    counts = [rint(rng, 1, 25 if spec.difficulty != "hard" else 20) for _ in chosen]
    prices = [10 * rint(rng, ITEMS[i][3], ITEMS[i][4]) for i in chosen]
    if spec.difficulty == "hard":
        prices = [p + 10 * rint(rng, 0, 9) - rint(rng, 0, 1) * 2 for p in prices]  # 198 yen
    bills = BILLS[spec.difficulty]
    total = sum(p * c for p, c in zip(prices, counts, strict=True))
    bill = next((b for b in bills if b > total), None)
    if bill is None:
        bill = (total // bills[-1] + 1) * bills[-1]
    ja = spec.ja
    if ja:
        items = [f"{p} 円の{ITEMS[i][0]}を {c} {ITEMS[i][1]}" for i, p, c in zip(chosen, prices, counts, strict=True)]  # fmt: skip
        listed = "と、".join(items)
    else:
        items = [f"{c} {_plural(ITEMS[i][2], c)} at {p} yen each" for i, p, c in zip(chosen, prices, counts, strict=True)]  # fmt: skip
        listed = ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]
    lines = []
    for i, p, c in zip(chosen, prices, counts, strict=True):
        name = ITEMS[i][0] if ja else _plural(ITEMS[i][2], 2)
        lines.append(
            f"{name}: {p} × {c} = {p * c} 円" if ja else f"{name}: {p} × {c} = {p * c} yen"
        )
    if kinds > 1:
        parts = " + ".join(str(p * c) for p, c in zip(prices, counts, strict=True))
        lines.append(f"合計: {parts} = {total} 円" if ja else f"Total: {parts} = {total} yen")
    lines.append(f"おつり: {bill} - {total} = {bill - total} 円" if ja else f"Change: {bill} - {total} = {bill - total} yen")  # fmt: skip
    lines.append(f"よって、おつりは {bill - total} 円です。" if ja else f"So the change is {bill - total} yen.")  # fmt: skip
    templates = CHANGE_JA if ja else CHANGE_EN
    question = templates[int(rng.random() * len(templates))].format(list=listed, M=bill)
    params = {"items": chosen, "prices": prices, "counts": counts, "bill": bill}
    return Problem(params, {"items": kinds}, question, "\n".join(lines), str(bill - total))


BUDGET_JA = ("{M} 円で 1 {c} {p} 円の{n}をできるだけ多く買います。何{c}買えますか。",
             "{M} 円持っています。{p} 円の{n}は最大で何{c}買えますか。")  # fmt: skip
BUDGET_EN = ("You have {M} yen. A {n} costs {p} yen. How many can you buy at most?",
             "With {M} yen, what is the largest number of {ns} at {p} yen each you can buy?")  # fmt: skip


@generator("shopping.budget", "how many items a budget buys (a division with remainder)")
def budget(rng: Random, spec: Spec) -> Problem:
    i = int(rng.random() * len(ITEMS))
    name, counter, name_en, lo, hi = ITEMS[i]
    price = 10 * rint(rng, lo, hi)
    if spec.difficulty == "hard":
        price += rint(rng, 1, 9)
    money = {"easy": 100, "medium": 10, "hard": 1}[spec.difficulty] * rint(rng, 5, 300) * (10 if spec.difficulty == "hard" else 1)  # fmt: skip
    while money < price:
        money += price
    count, rest = divmod(money, price)
    ja = spec.ja
    templates = BUDGET_JA if ja else BUDGET_EN
    question = templates[int(rng.random() * len(templates))].format(M=money, p=price, n=name if ja else name_en, c=counter, ns=_plural(name_en, 2))  # fmt: skip
    if ja:
        lines = [f"{money} ÷ {price} = {count} あまり {rest}" if rest else f"{money} ÷ {price} = {count}"]  # fmt: skip
        if rest:
            lines.append(f"あまりの {rest} 円では {price} 円の{name}は買えません。")
        lines.append(f"よって、{count} {counter}買えます。")
    else:
        lines = [f"{money} ÷ {price} = {count} remainder {rest}" if rest else f"{money} ÷ {price} = {count}"]  # fmt: skip
        if rest:
            lines.append(f"The remaining {rest} yen is not enough for another one.")
        lines.append(f"So you can buy {count}.")
    params = {"item": i, "price": price, "money": money}
    return Problem(params, {"remainder": rest > 0}, question, "\n".join(lines), str(count))
