"""Classic Japanese word problems: つるかめ算 (two kinds of things, total count and total legs,
wheels or value) and 植木算 (trees along a road: both ends, neither end, or around a pond)."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

# (small kind, big kind, per small, per big, what is counted, counter) in Japanese and English
KINDS_JA = (("つる", "かめ", 2, 4, "足", "本", "匹"), ("自転車", "三輪車", 2, 3, "車輪", "個", "台"),
            ("50 円玉", "100 円玉", 50, 100, "金額", "円", "枚"), ("1 人用のいす", "4 人用のいす", 1, 4, "座れる人数", "人", "脚"))  # fmt: skip
KINDS_EN = (("cranes", "turtles", 2, 4, "legs", ""), ("bicycles", "tricycles", 2, 3, "wheels", ""),
            ("50-yen coins", "100-yen coins", 50, 100, "yen in value", ""), ("one-seat chairs", "four-seat chairs", 1, 4, "seats", ""))  # fmt: skip
ASKS = ("big", "small")


@generator("classic.crane_turtle", "つるかめ算: two kinds from a total count and total", features={"ask": ASKS})  # fmt: skip
def crane_turtle(rng: Random, spec: Spec) -> Problem:
    ask = pick(rng, spec, "ask", ASKS)
    kind = int(rng.random() * len(KINDS_JA))
    hi = {"easy": 20, "medium": 50, "hard": 80}[spec.difficulty]
    small, big = rint(rng, 1, hi), rint(rng, 1, hi)
    ja = spec.ja
    n = small + big
    s_name, b_name, ps, pb = KINDS_JA[kind][:4] if ja else KINDS_EN[kind][:4]
    what, unit = (KINDS_JA[kind][4], KINDS_JA[kind][5]) if ja else (KINDS_EN[kind][4], "")
    counter = KINDS_JA[kind][6]
    total = small * ps + big * pb
    all_small = n * ps
    answer = big if ask == "big" else small
    asked = b_name if ask == "big" else s_name
    if ja:
        question = f"{s_name}と{b_name}が合わせて {n} {counter}あり、{what}は合計 {total} {unit}です。{asked}は何{counter}ありますか。"  # fmt: skip
        lines = [f"全部が{s_name}だとすると、{what}は {ps} × {n} = {all_small} {unit}です。",
                 f"実際との差は {total} - {all_small} = {total - all_small} {unit}です。",
                 f"{s_name}を{b_name}に 1 {counter}かえるごとに {pb} - {ps} = {pb - ps} {unit}増えるので、{b_name}は {total - all_small} ÷ {pb - ps} = {big} {counter}です。"]  # fmt: skip
        if ask == "small":
            lines.append(f"{s_name}は {n} - {big} = {small} {counter}です。")
        lines.append(f"よって、{asked}は {answer} {counter}です。")
    else:
        question = f"A mix of {s_name} and {b_name} numbers {n} in all, with {total} {what} altogether. How many {asked} are there?"  # fmt: skip
        lines = [f"If all were {s_name}, there would be {ps} × {n} = {all_small} {what}.",
                 f"The difference is {total} - {all_small} = {total - all_small}.",
                 f"Each swap of one of the {s_name} for one of the {b_name} adds {pb} - {ps} = {pb - ps}, so there are {total - all_small} ÷ {pb - ps} = {big} {b_name}."]  # fmt: skip
        if ask == "small":
            lines.append(f"{s_name.capitalize()}: {n} - {big} = {small}.")
        lines.append(f"So there are {answer} {asked}.")
    params = {"kind": kind, "small": small, "big": big, "ask": ask}
    return Problem(params, {"ask": ask}, question, "\n".join(lines), str(answer))


ENDS = ("both", "none", "circle")
TREES_JA = {
    "both": "長さ {L} m のまっすぐな道の片側に、端から端まで {d} m おきに木を植えます。両端にも植えるとき、木は何本必要ですか。",  # fmt: skip
    "none": "長さ {L} m のまっすぐな道の片側に、{d} m おきに木を植えます。両端には植えないとき、木は何本必要ですか。",  # fmt: skip
    "circle": "周りの長さが {L} m の池の周りに、{d} m おきに木を植えます。木は何本必要ですか。",
}
TREES_EN = {
    "both": "Trees are planted every {d} m along one side of a straight {L} m road, including both ends. How many trees are needed?",  # fmt: skip
    "none": "Trees are planted every {d} m along one side of a straight {L} m road, but not at the ends. How many trees are needed?",  # fmt: skip
    "circle": "Trees are planted every {d} m around a pond whose edge is {L} m long. How many trees are needed?",  # fmt: skip
}


@generator("classic.trees", "植木算: trees along a road or around a pond", features={"ends": ENDS})
def trees(rng: Random, spec: Spec) -> Problem:
    ends = pick(rng, spec, "ends", ENDS)
    d = rint(rng, 2, {"easy": 10, "medium": 40, "hard": 60}[spec.difficulty])
    gaps = rint(rng, 2, {"easy": 100, "medium": 300, "hard": 400}[spec.difficulty])
    length = d * gaps
    answer = {"both": gaps + 1, "none": gaps - 1, "circle": gaps}[ends]
    ja = spec.ja
    question = (TREES_JA if ja else TREES_EN)[ends].format(L=length, d=d)
    lines = [f"間の数は {length} ÷ {d} = {gaps} です。" if ja else f"There are {length} ÷ {d} = {gaps} gaps."]  # fmt: skip
    if ends == "both":
        lines.append(f"両端に植えるので、木の数は間の数より 1 多く {gaps} + 1 = {answer} 本です。" if ja else f"With both ends planted there is one more tree than gaps: {gaps} + 1 = {answer}.")  # fmt: skip
    elif ends == "none":
        lines.append(f"両端に植えないので、木の数は間の数より 1 少なく {gaps} - 1 = {answer} 本です。" if ja else f"Without the ends there is one tree fewer than gaps: {gaps} - 1 = {answer}.")  # fmt: skip
    else:
        lines.append(f"池の周りは輪になっているので、木の数は間の数と同じ {answer} 本です。" if ja else f"Around a closed loop there are as many trees as gaps: {answer}.")  # fmt: skip
    lines.append(f"よって、{answer} 本です。" if ja else f"So {answer} trees are needed.")
    params = {"d": d, "gaps": gaps, "ends": ends}
    return Problem(params, {"ends": ends}, question, "\n".join(lines), str(answer))
