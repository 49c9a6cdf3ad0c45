"""Reference ROUGE-L and novelty filter (rust/core/src/rouge.rs), written for clarity: the
tokenization rules spelled out, the textbook LCS table, every pool text compared."""

from __future__ import annotations

# The Unicode White_Space property (PropList.txt); not str.isspace, which also counts the
# information separators U+001C..U+001F.
WHITE_SPACE = {chr(c) for c in [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680]}
WHITE_SPACE |= {chr(c) for c in [*range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]}

JAPANESE_RANGES = [
    (0x3040, 0x309F),  # Hiragana
    (0x30A0, 0x30FF),  # Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # supplementary and tertiary ideographic planes
]

ASCII_WORD = set("abcdefghijklmnopqrstuvwxyz0123456789")


def is_japanese(text: str) -> bool:
    return any(lo <= ord(c) <= hi for c in text for lo, hi in JAPANESE_RANGES)


def char_tokens(text: str) -> list[str]:
    return [c for c in text if c not in WHITE_SPACE]


def word_tokens(text: str) -> list[str]:
    """rouge-score's default tokenizer without stemmer: lowercase, then every run of
    ``[a-z0-9]`` is a word and everything else separates (non-ASCII included)."""
    words, current = [], ""
    for c in text.lower():
        if c in ASCII_WORD:
            current += c
        elif current:
            words.append(current)
            current = ""
    return words + [current] if current else words


def pair_unit(a: str, b: str, unit: str) -> str:
    if unit == "auto":
        return "char" if is_japanese(a) or is_japanese(b) else "word"
    return unit


def tokens(text: str, unit: str = "auto") -> list[str]:
    if pair_unit(text, "", unit) == "char":
        return char_tokens(text)
    return word_tokens(text)


def lcs_length(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, start=1):
        for j, y in enumerate(b, start=1):
            if x == y:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def f1(lcs: int, len_a: int, len_b: int) -> float:
    """rouge-score's fmeasure, in its floating-point order."""
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len_b, lcs / len_a
    return 2 * precision * recall / (precision + recall)


def rouge_l(a: str, b: str, unit: str = "auto") -> float:
    unit = pair_unit(a, b, unit)
    ta, tb = tokens(a, unit), tokens(b, unit)
    return f1(lcs_length(ta, tb), len(ta), len(tb))


def check(pool: list[str], text: str, threshold: float = 0.7, unit: str = "auto"):
    """``(novel, best score, first index with it or -1 when the best is 0)`` against every
    pool text."""
    best, index = 0.0, -1
    for k, other in enumerate(pool):
        score = rouge_l(text, other, unit)
        if score > best:
            best, index = score, k
    return best <= threshold, best, index


def novelty_filter(texts: list[str], threshold: float = 0.7, unit: str = "auto", seeds=()):
    """Verdicts of adding each text in order to a pool that starts with ``seeds``."""
    pool, verdicts = list(seeds), []
    for text in texts:
        verdict = check(pool, text, threshold, unit)
        if verdict[0]:
            pool.append(text)
        verdicts.append(verdict)
    return verdicts
