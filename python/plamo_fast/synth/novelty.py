"""The novelty filter of ``synth instruct``: ROUGE-L F1 against every kept instruction, as in
Self-Instruct (a text is rejected when its best score is above the threshold, 0.7 there), but
scoring Japanese too.

Scores equal rouge-score's ``rougeL`` fmeasure (``RougeScorer(["rougeL"])``) for the same
tokens. Units:

- ``"char"``: every character that is not whitespace (Unicode ``White_Space``) is a token; the
  unit for Japanese.
- ``"word"``: rouge-score's default tokenizer without stemmer: lowercase, keep the runs of
  ``[a-z0-9]``. It **drops every non-ASCII character**, so two Japanese texts always score 0
  (why Self-Instruct's reference code never rejects Japanese), hence ``"char"`` for Japanese.
- ``"auto"`` (default): per pair, ``"char"`` when either text holds Hiragana, Katakana or a CJK
  ideograph, else ``"word"``.

The kernel is Rust (``rust/core/src/rouge.rs``): tokens interned to ids, bit-parallel LCS, exact
upper bounds that skip pool texts which cannot beat the best score so far, the pool scanned in
parallel without the GIL. Every returned score is exact (for novel texts too), and the index
is the first pool text reaching it (-1 when the pool is empty or no pool text shares a token
with the text, score 0). The readable specification is ``plamo_fast.reference.rouge``.
"""

from __future__ import annotations

from plamo_fast import _native

__all__ = ["NoveltyFilter", "rouge_l", "tokens"]

Verdict = tuple[bool, float, int]
"""``(novel, best ROUGE-L F1 against the pool, index of the most similar pool text or -1)``."""


def rouge_l(a: str, b: str, unit: str = "auto") -> float:
    """ROUGE-L F1 of two texts (symmetric)."""
    return _native.rouge_l(a, b, unit)


def tokens(text: str, unit: str = "auto") -> list[str]:
    """The ROUGE-L tokens of ``text``; ``"auto"`` decides from this text alone."""
    return _native.rouge_tokens(text, unit)


class NoveltyFilter:
    """A growing pool of texts; a text is novel when its best ROUGE-L F1 against the pool is
    at most ``threshold``."""

    def __init__(self, threshold: float = 0.7, unit: str = "auto") -> None:
        self._native = _native.RougeFilter(threshold, unit)
        self._texts: list[str] = []
        self.unit = unit

    @property
    def threshold(self) -> float:
        return self._native.threshold

    @property
    def texts(self) -> list[str]:
        """The pool, in the order added (a copy)."""
        return list(self._texts)

    def text(self, index: int) -> str:
        """The pool's text number ``index`` (as ``check`` names the nearest), without copying
        the pool as :attr:`texts` does."""
        return self._texts[index]

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, text: str) -> None:
        """Put ``text`` in the pool unconditionally (seed tasks)."""
        self._native.add(text)
        self._texts.append(text)

    def check(self, text: str) -> Verdict:
        """Score ``text`` against the pool without adding it."""
        return self._native.check(text)

    def add_if_novel(self, text: str) -> Verdict:
        """Check ``text`` and add it when novel."""
        verdict = self._native.add_if_novel(text)
        if verdict[0]:
            self._texts.append(text)
        return verdict

    def filter(self, texts: list[str]) -> list[Verdict]:
        """``add_if_novel`` over ``texts`` in order (a later text meets the earlier accepted
        ones), in one native call without the GIL."""
        texts = list(texts)
        verdicts = self._native.filter(texts)
        self._texts.extend(t for t, v in zip(texts, verdicts, strict=True) if v[0])
        return verdicts
