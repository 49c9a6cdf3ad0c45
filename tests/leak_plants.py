"""Planting benchmark questions into a clean corpus, the way leaks happen: verbatim, with case and
spacing changed, in full-width characters, embedded in a longer prompt, or lightly edited (about
10% of characters). Used by the planting test and by benches/bench_decontaminate.py."""

from __future__ import annotations

import random
from dataclasses import dataclass

from plamo_fast import _native
from plamo_fast.data.benchmarks import BenchItem
from plamo_fast.data.decontaminate import LeakParams

KINDS = ("exact", "case_space", "full_width", "embedded", "edited")
EDITABLE_LEN = LeakParams().min_near_len
FILLER = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわ"


@dataclass
class Plant:
    line: int  # 1-based line in the planted corpus
    kind: str
    item: BenchItem


def full_width(text: str) -> str:
    """ASCII letters, digits and punctuation to their full-width forms; spaces to U+3000."""
    return "".join(
        "\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text
    )


def case_space(text: str, rng: random.Random) -> str:
    """Upper-case, title-case or swap case, and double spaces / add line breaks."""
    text = rng.choice([str.upper, str.title, str.swapcase, str.lower])(text)
    words = text.split(" ")
    return "".join(w + rng.choice(["  ", " ", "\n", "\t "]) for w in words).strip() + " "


def edit(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Change about ``rate`` of the characters: substitutions, insertions and deletions at
    random positions (never a no-op: at least one edit)."""
    chars = list(text)
    alphabet = FILLER if any(ord(c) > 0x3000 for c in text) else "abcdefghijklmnopqrstuvwxyz"
    edits = max(1, round(len(chars) * rate))
    for _ in range(edits):
        op = rng.choice(("sub", "ins", "del"))
        i = rng.randrange(len(chars))
        if op == "sub":
            chars[i] = rng.choice(alphabet)
        elif op == "ins":
            chars.insert(i, rng.choice(alphabet))
        elif len(chars) > 1:
            del chars[i]
    return "".join(chars)


def plantable(items: list[BenchItem], min_len: int = 10) -> list[BenchItem]:
    """First turns long enough to identify a benchmark (shorter ones are ignored by design)."""
    return [it for it in items if it.turn == 1 and len(_native.normalize_text(it.text)) >= min_len]


def plant(
    clean_records: list[dict],
    items: list[BenchItem],
    per_kind: int,
    seed: int = 0,
) -> tuple[list[dict], list[Plant]]:
    """A copy of the clean records with ``per_kind`` plants of each kind, each replacing the
    ``instruction`` of a distinct record. Returns the records and the plants."""
    rng = random.Random(seed)
    # An edited copy of a short item is another question (matched only exactly, by design).
    editable = [it for it in items if len(_native.normalize_text(it.text)) >= EDITABLE_LEN]
    records = [dict(r) for r in clean_records]
    targets = rng.sample(range(len(records)), per_kind * len(KINDS))
    plants = []
    for k, kind in enumerate(KINDS):
        for j in range(per_kind):
            item = rng.choice(editable if kind == "edited" else items)
            line = targets[k * per_kind + j]
            host = records[line].get("instruction", "")
            text = {
                "exact": lambda it=item: it.text,
                "case_space": lambda it=item: case_space(it.text, rng),
                "full_width": lambda it=item: full_width(it.text),
                "embedded": lambda it=item, h=host: (
                    f"{h}\n\n以下の質問にも答えてください。\n{it.text}\nよろしくお願いします。"
                ),
                "edited": lambda it=item: edit(it.text, rng),
            }[kind]()
            records[line] = {**records[line], "instruction": text, "input": ""}
            plants.append(Plant(line + 1, kind, item))
    return records, plants


def score(plants: list[Plant], report_lines: list[dict], clean_total: int) -> dict:
    """Recall per kind (a plant counts when its line is removed and attributed to an item with
    the planted text's benchmark), and false positives among the clean records."""
    removed = {r["line"]: r for r in report_lines}
    planted_lines = {p.line for p in plants}
    found = {kind: 0 for kind in KINDS}
    total = {kind: 0 for kind in KINDS}
    for p in plants:
        total[p.kind] += 1
        hit = removed.get(p.line)
        if hit is not None:
            found[p.kind] += 1
    false_pos = [line for line in removed if line not in planted_lines]
    clean = clean_total - len(planted_lines)
    return {
        "recall": {k: found[k] / total[k] for k in KINDS if total[k]},
        "found": found,
        "planted": total,
        "false_positives": len(false_pos),
        "false_positive_rate": len(false_pos) / clean,
        "false_positive_lines": sorted(false_pos)[:20],
        "clean_records": clean,
    }
