"""Speed, distance and time: find one from the other two (with unit changes when harder), and
two movers meeting head-on or one catching up with the other."""

# ruff: noqa: E501  (problem templates and solution lines are prose: one per line)

from __future__ import annotations

from random import Random

from plamo_fast.synth.numbers import dec, rint
from plamo_fast.synth.registry import Problem, Spec, generator, pick

ASKS = ("distance", "time", "speed")
BASIC_JA = {
    "distance": "時速 {v} km で {t}走ると、何 km 進みますか。",
    "time": "{d} km の道のりを時速 {v} km で進むと、何{tu}かかりますか。",
    "speed": "{d} km の道のりを {t}で進みました。速さは時速何 km ですか。",
}
BASIC_EN = {
    "distance": "A car travels at {v} km/h for {t}. How many kilometres does it cover?",
    "time": "How many {tu} does it take to travel {d} km at {v} km/h?",
    "speed": "A cyclist covers {d} km in {t}. What is the speed in km/h?",
}


def _duration(minutes: int, ja: bool) -> str:
    h, m = divmod(minutes, 60)
    if ja:
        return f"{h} 時間 {m} 分" if h and m else (f"{h} 時間" if h else f"{m} 分")
    if h and m:
        return f"{h} h {m} min"
    return f"{h} hours" if h else f"{m} minutes"


@generator("speed.basic", "speed, distance and time: find one from the other two", features={"ask": ASKS})  # fmt: skip
def basic(rng: Random, spec: Spec) -> Problem:
    ask = pick(rng, spec, "ask", ASKS)
    v = rint(rng, 3, {"easy": 80, "medium": 120, "hard": 150}[spec.difficulty])
    if spec.difficulty == "easy":
        minutes = 60 * rint(rng, 1, 10)
    elif spec.difficulty == "medium":
        minutes = 15 * rint(rng, 1, 40)
    else:
        minutes = 6 * rint(rng, 1, 100)  # tenths of an hour: the distance stays a decimal
    d = dec(v * minutes, 60)  # km
    ja = spec.ja
    in_minutes = minutes % 60 != 0 and spec.difficulty == "hard"
    tu = ("分" if ja else "minutes") if in_minutes else ("時間" if ja else "hours")
    t_text = _duration(minutes, ja)
    h_text = dec(minutes, 60)
    lines = [f"{t_text} = {h_text} 時間" if ja else f"{t_text} = {h_text} hours"] if minutes % 60 else []  # fmt: skip
    if ask == "distance":
        answer = d
        lines.append(f"道のり = 速さ × 時間 = {v} × {h_text} = {answer} km" if ja else f"distance = speed × time = {v} × {h_text} = {answer} km")  # fmt: skip
    elif ask == "speed":
        answer = str(v)
        lines.append(f"速さ = 道のり ÷ 時間 = {d} ÷ {h_text} = {v}（時速 km）" if ja else f"speed = distance ÷ time = {d} ÷ {h_text} = {v} km/h")  # fmt: skip
    else:
        lines = [f"時間 = 道のり ÷ 速さ = {d} ÷ {v} = {h_text} 時間" if ja else f"time = distance ÷ speed = {d} ÷ {v} = {h_text} hours"]  # fmt: skip
        if in_minutes:
            answer = str(minutes)
            lines.append(f"{h_text} 時間 = {h_text} × 60 = {minutes} 分" if ja else f"{h_text} hours = {h_text} × 60 = {minutes} minutes")  # fmt: skip
        else:
            answer = h_text
    unit = {"distance": " km", "speed": " km/h" if not ja else "", "time": f" {tu}"}[ask]
    lines.append(f"よって、答えは {answer}{unit if ask != 'speed' else ''} です。" if ja else f"So the answer is {answer}{unit}.")  # fmt: skip
    question = (BASIC_JA if ja else BASIC_EN)[ask].format(v=v, t=t_text, d=d, tu=tu)
    params = {"v": v, "minutes": minutes, "ask": ask}
    return Problem(params, {"ask": ask}, question, "\n".join(lines), answer)


KINDS = ("meet", "chase")
MEET_JA = {
    "meet": "{d} m 離れた A さんと B さんが、向かい合って同時に出発しました。A さんは分速 {v1} m、B さんは分速 {v2} m で歩きます。2 人が出会うのは出発してから何分後ですか。",  # fmt: skip
    "chase": "弟が家を出て、分速 {v2} m で歩いています。弟が家から {d} m 進んだとき、兄が家を出て分速 {v1} m で追いかけました。兄が弟に追いつくのは、兄が家を出てから何分後ですか。",  # fmt: skip
}
MEET_EN = {
    "meet": "A and B are {d} m apart and walk toward each other, A at {v1} m/min and B at {v2} m/min. After how many minutes do they meet?",  # fmt: skip
    "chase": "A younger brother walks at {v2} m/min and is {d} m ahead when his sister starts after him at {v1} m/min. After how many minutes does she catch up?",  # fmt: skip
}


@generator("speed.meet", "two movers meeting head-on or catching up", features={"kind": KINDS})
def meet(rng: Random, spec: Spec) -> Problem:
    kind = pick(rng, spec, "kind", KINDS)
    scale = {"easy": 5, "medium": 2, "hard": 1}[spec.difficulty]
    v2 = scale * rint(rng, 40 // scale + 1, 100 // scale)
    v1 = v2 + scale * rint(rng, 1, 60 // scale) if kind == "chase" else scale * rint(rng, 40 // scale, 120 // scale)  # fmt: skip
    rel = v1 + v2 if kind == "meet" else v1 - v2
    t = rint(rng, 2, {"easy": 20, "medium": 60, "hard": 90}[spec.difficulty])
    d = rel * t
    ja = spec.ja
    question = (MEET_JA if ja else MEET_EN)[kind].format(d=d, v1=v1, v2=v2)
    if kind == "meet":
        lines = [f"2 人の間は 1 分に {v1} + {v2} = {rel} m ずつ縮まります。" if ja else f"The gap shrinks by {v1} + {v2} = {rel} m each minute."]  # fmt: skip
    else:
        lines = [f"2 人の間は 1 分に {v1} - {v2} = {rel} m ずつ縮まります。" if ja else f"The gap shrinks by {v1} - {v2} = {rel} m each minute."]  # fmt: skip
    lines.append(f"{d} ÷ {rel} = {t}")
    lines.append(f"よって、{t} 分後です。" if ja else f"So after {t} minutes.")
    params = {"v1": v1, "v2": v2, "t": t, "kind": kind}
    return Problem(params, {"kind": kind}, question, "\n".join(lines), str(t))
