"""Reference versions of the curation kernels (rust/core/src/{text,leak,dedup}.rs): the matching
form of a text, the leak matcher and Jaccard near-duplicate clustering (over every pair, where
the kernel uses LSH), written for clarity."""

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


def max_edits(
    length: int, edit_free_len: int = 5, edit_rate: float = 0.2, min_near_len: int = 30
) -> int:
    """Edits allowed for an item of ``length`` characters: none below ``min_near_len`` (a short
    question with one word changed is another question)."""
    if length < min_near_len:
        return 0
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
    min_near_len: int = 30,
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
        bound = max_edits(len(b), edit_free_len, edit_rate, min_near_len)
        edits = best_substring_edits(b, t)
        if edits == 0:
            found[k] = ("containment", 0)
        elif edits <= bound:
            found[k] = ("near", edits)
    return found


def dedup_form(text: str) -> str:
    """The key form of dedup: the matching form with one space where removed characters stood
    between two numbers ("12 + 3" -> "12 3", so it stays apart from "1 + 23")."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    out: list[str] = []
    removed = False
    for c in folded:
        if unicodedata.category(c) in REMOVED:
            removed = bool(out)
            continue
        if removed and _is_number(c) and _is_number(out[-1]):
            out.append(" ")
        out.append(c)
        removed = False
    return "".join(out)


def _is_number(c: str) -> bool:
    return unicodedata.category(c)[0] == "N"


def near_duplicates(
    keys: list[str],
    questions: list[str | None],
    threshold: float,
    n: int = 5,
    answers: list[str | None] | None = None,
) -> list[tuple[int, int]]:
    """Every pair (i < j) of duplicates by the dedup rule, over all pairs: equal key forms, or
    the key forms' n-gram Jaccard at or above ``threshold`` and either no question on either
    side or questions on both sides that are the same (:func:`same_question`; an empty key never
    matches; a question whose form is empty is none, an answer counts only with a question)."""
    forms = [dedup_form(k) for k in keys]
    qforms = [dedup_form(q) if q is not None else "" for q in questions]
    answers = answers if answers is not None else [None] * len(keys)
    aforms = [
        dedup_form(a) if a is not None and q else "" for a, q in zip(answers, qforms, strict=True)
    ]
    pairs = []
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            if not forms[i] or not forms[j]:
                continue
            if forms[i] != forms[j] and jaccard(forms[i], forms[j], n) < threshold:
                continue
            if forms[i] != forms[j] and (qforms[i] or qforms[j]):
                both = qforms[i] and qforms[j]
                q_i, q_j = (qforms[i], aforms[i]), (qforms[j], aforms[j])
                if not (both and same_question(q_i, q_j, threshold, n)):
                    continue
            pairs.append((i, j))
    return pairs


def same_question(a: tuple[str, str], b: tuple[str, str], threshold: float, n: int = 5) -> bool:
    """Whether two (question form, answer form) pairs ask the same question: the questions'
    n-gram Jaccard is at or above ``threshold``, or their edit similarity (1 - Levenshtein
    distance / longer length) is and so is the answers' Jaccard (non-empty answers): a typo
    leaves the answer alone, a question one word away on the same passage has another."""
    if jaccard(a[0], b[0], n) >= threshold:
        return True
    if not (a[1] and b[1]) or jaccard(a[1], b[1], n) < threshold:
        return False
    return 1 - edit_distance(a[0], b[0]) / max(len(a[0]), len(b[0])) >= threshold


def edit_distance(a: str, b: str) -> int:
    """The Levenshtein distance (insertions, deletions, substitutions): the plain programme."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            current[j] = min(previous[j - 1] + (x != y), previous[j] + 1, current[j - 1] + 1)
        previous = current
    return previous[-1]


def clusters(n_records: int, pairs: list[tuple[int, int]]) -> list[int]:
    """Per record, the first record of its connected component under ``pairs``."""
    root = list(range(n_records))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for i, j in pairs:
        a, b = find(i), find(j)
        root[max(a, b)] = min(a, b)
    return [find(i) for i in range(n_records)]


def jaccard(a: str, b: str, n: int = 5) -> float:
    """True Jaccard similarity of the character n-gram sets of two matching forms (a text
    shorter than n is its own single n-gram)."""
    sa = ngrams(a, min(n, len(a))) if a else set()
    sb = ngrams(b, min(n, len(b))) if b else set()
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)
