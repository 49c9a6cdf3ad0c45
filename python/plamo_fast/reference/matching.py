"""Reference versions of the curation kernels (rust/core/src/{text,leak,dedup}.rs): the matching
form of a text, the leak matcher and Jaccard near-duplicate clustering, written for clarity."""

from __future__ import annotations

import unicodedata

# General categories removed from the matching form: separators, controls, format characters,
# punctuation and symbols. Letters, numbers and combining marks (M*) stay.
REMOVED = {"Zs", "Zl", "Zp", "Cc", "Cf", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"}
REMOVED |= {"Sm", "Sc", "Sk", "So"}


def normalize(text: str) -> str:
    """NFKC, case-fold, NFKC again, then drop the removed categories."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in folded if unicodedata.category(c) not in REMOVED)


def max_edits(length: int, edit_free_len: int = 5, edit_rate: float = 0.2) -> int:
    return int(max(0, length - edit_free_len) * edit_rate)


def best_substring_edits(pattern: str, text: str) -> int:
    """The fewest edits turning ``pattern`` into some substring of ``text`` (any start, any
    end): the plain dynamic programme."""
    previous = [0] * (len(text) + 1)  # an empty pattern matches anywhere for free
    for i, p in enumerate(pattern, start=1):
        current = [i] + [0] * len(text)
        for j, t in enumerate(text, start=1):
            current[j] = min(previous[j - 1] + (p != t), previous[j] + 1, current[j - 1] + 1)
        previous = current
    return min(previous)


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j - 1] + (x != y), previous[j] + 1, current[j - 1] + 1))
        previous = current
    return previous[-1]


def ngrams(chars: str, n: int) -> set[str]:
    return {chars[i : i + n] for i in range(len(chars) - n + 1)}


def scan(
    items: list[str],
    text: str,
    *,
    ngram: int = 5,
    candidate_containment: float = 0.3,
    min_item_len: int = 10,
    min_contained_len: int = 10,
    min_near_contained_len: int = 20,
    edit_rate: float = 0.2,
    edit_free_len: int = 5,
) -> dict[int, tuple[str, int]]:
    """``{item: (kind, edits)}`` for every item found in ``text``."""
    t = normalize(text)
    found: dict[int, tuple[str, int]] = {}
    if not t:
        return found
    text_grams = ngrams(t, ngram)
    for k, item in enumerate(items):
        b = normalize(item)
        if len(b) < max(min_item_len, 1):
            continue
        if b == t:
            found[k] = ("exact", 0)
            continue
        if len(b) < max(min_contained_len, ngram):
            continue
        grams = ngrams(b, ngram)
        if len(grams & text_grams) / len(grams) < candidate_containment:
            continue
        bound = max_edits(len(b), edit_free_len, edit_rate)
        edits = best_substring_edits(b, t)
        if edits == 0:
            found[k] = ("containment", 0)
        elif len(b) < min_near_contained_len:
            whole = levenshtein(b, t)  # short items match with edits only as the whole text
            if 0 < whole <= bound:
                found[k] = ("near", whole)
        elif edits <= bound:
            found[k] = ("near", edits)
    return found


def jaccard(a: str, b: str, n: int = 5) -> float:
    """True Jaccard similarity of the character n-gram sets of two matching forms (a text
    shorter than n is its own single n-gram)."""
    sa = ngrams(a, min(n, len(a))) if a else set()
    sb = ngrams(b, min(n, len(b))) if b else set()
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)
