"""The quality filters of ``plamo-fast translate``. A record is rejected for the first failing
check of its first failing field, in this order, and counted under that reason:

Per chunk (what one request returned):

- ``truncated``: ``finish_reason`` is ``length`` (cut at ``--max-new-tokens``).
- ``masked_spans``: a sentinel (a masked code block, URL, formula or placeholder) missing,
  repeated, or unknown in the output; the details name them.
- ``line_breaks``: the output has another number of line breaks than the chunk (the
  structure of lists, tables and paragraphs inside a chunk would be lost).

Per field (all chunks of one text, masked spans left out):

- ``script``: the share of the target language's script among the letters of the
  translation (kana and kanji for ``ja``, Latin letters for ``en``) is below
  ``--min-script-share``; fields whose source has fewer than :data:`MIN_LETTERS` letters are
  not checked (a name or "OK" stays as it is).
- ``length_ratio``: characters of the translation over those of the source outside
  ``[--min-length-ratio, --max-length-ratio]``; sources shorter than :data:`MIN_CHARS`
  characters are not checked.
- ``back_translation`` (with ``--back-translate``): the translation translated back into the
  source language, compared with the source by character ROUGE-L F1 (whitespace ignored;
  :func:`plamo_fast.synth.novelty.rouge_l`), is below ``--min-back-similarity``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from plamo_fast.data.scripts import script_share
from plamo_fast.errors import UsageError
from plamo_fast.synth.novelty import rouge_l
from plamo_fast.translate.masking import SENTINEL, problems, without_sentinels

REASONS = ("truncated", "masked_spans", "line_breaks", "script", "length_ratio",
           "back_translation")  # fmt: skip
MIN_LETTERS = 10
MIN_CHARS = 10

Rejection = tuple[str, dict]


@dataclass(frozen=True)
class FilterConfig:
    min_script_share: float = 0.5
    min_length_ratio: float = 0.2
    max_length_ratio: float = 5.0
    back_translate: bool = False
    min_back_similarity: float = 0.5

    def check(self) -> FilterConfig:
        if not 0 <= self.min_script_share <= 1 or not 0 <= self.min_back_similarity <= 1:
            raise UsageError("--min-script-share and --min-back-similarity lie in [0, 1]")
        if not 0 <= self.min_length_ratio <= self.max_length_ratio:
            raise UsageError("need 0 <= --min-length-ratio <= --max-length-ratio")
        return self


def check_chunk(masked: str, span_count: int, output: str, finish_reason: str) -> Rejection | None:
    """The per-chunk checks of a model ``output`` for the chunk ``masked``."""
    if finish_reason == "length":
        return "truncated", {}
    wrong = problems(output, span_count)
    if wrong:
        return "masked_spans", wrong
    if output.count("\n") != masked.count("\n"):
        return "line_breaks", {"source": masked.count("\n"), "translation": output.count("\n")}
    return None


def _letters(text: str) -> int:
    return sum(1 for c in text if unicodedata.category(c)[0] == "L")


def check_field(source: str, translation: str, target: str, config: FilterConfig):
    """The per-field checks; ``source`` and ``translation`` are the masked texts."""
    source, translation = without_sentinels(source), without_sentinels(translation)
    if _letters(source) >= MIN_LETTERS:
        share = script_share(translation, target)[0]
        if share < config.min_script_share:
            return "script", {"share": round(share, 3), "min": config.min_script_share}
    size = len(source.strip())
    if size >= MIN_CHARS:
        ratio = len(translation.strip()) / size
        if not config.min_length_ratio <= ratio <= config.max_length_ratio:
            bounds = [config.min_length_ratio, config.max_length_ratio]
            return "length_ratio", {"ratio": round(ratio, 3), "bounds": bounds}
    return None


def back_similarity(source: str, back: str) -> float:
    """Character ROUGE-L F1 of a source text and its back-translation, sentinels left out."""
    return rouge_l(SENTINEL.sub("", source), SENTINEL.sub("", back), "char")


def check_back(source: str, back: str, config: FilterConfig) -> Rejection | None:
    score = back_similarity(source, back)
    if score < config.min_back_similarity:
        return "back_translation", {"similarity": round(score, 3),
                                    "min": config.min_back_similarity}  # fmt: skip
    return None
