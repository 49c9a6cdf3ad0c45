"""llm-jp-eval's post-processing and metrics, reproduced (our code, their definitions).

Upstream version matched: llm-jp-eval v1.x as of its evaluator at commit ``52ff89fa`` and the
v1.x releases after it (the Alpaca-style ``### 指示:`` prompt, ``get_few_shot_samples`` reading
``train/NAME.json``, ``get_evaluation_result`` in ``src/llm_jp_eval/utils.py``); v1.0.0 used
another prompt header (``以下はタスクを説明する指示と、追加の背景情報を…``, ``### 指示``) and v2
another pipeline. llm-jp/llm-jp-eval itself could not be read here (no stored copy): the
definitions below were checked against public copies of its code, named in :data:`REFERENCE`
with repository, path and commit; the one point no copy shows is marked *(unverified)*.

- Post-processing of a generation: the text before the first blank line (``"\\n\\n"``), NFKC
  normalised, then stripped *(the strip: unverified, from llm-jp-eval v1.3/v1.4's
  ``normalize(output.split("\\n\\n")[0]).strip()`` as remembered; the W&B copy splits and
  normalises the same way)*. The gold answer is NFKC normalised only.
- ``exact_match``: the share of items whose processed prediction equals the gold answer
  (scikit-learn's ``accuracy_score``).
- ``exact_match_figure`` (not an llm-jp-eval v1.x metric: W&B Nejumi's jaster metric for
  MAWPS/MGSM, read so that its dataset files are accepted): per item 1 when
  ``float(pred) == float(gold)``, 0 when either is not a number for Python's ``float``; the
  mean over items.
- ``char_f1``: the mean of fuzzywuzzy 0.18's ``token_sort_ratio(pred, gold) / 100`` with
  python-Levenshtein installed (llm-jp-eval depends on both). That function first *processes*
  each string (drops U+0080–U+00FF, which is what ``force_ascii`` does on Python 3; turns every
  non-word character into a space; lowercases; strips), sorts the whitespace tokens and joins
  them with single spaces, then scores the two results with the Indel (LCS) similarity and
  rounds ``100 * similarity`` to an integer with Python's ``round`` (half to even). Two strings
  equal after processing score 100 (even when both are empty); one empty string scores 0.
- ``set_f1``: per item, the lines of prediction and gold (each stripped; the prediction's lines
  as a set) give precision and recall, and F1 (0 when both are 0); the mean over items. As in
  llm-jp-eval, recall's numerator counts the predicted lines found in the gold lines.
- ``pearson`` / ``spearman``: scipy's ``pearsonr`` / ``spearmanr`` of the gold numbers and the
  predictions read by ``parse_float`` (every character but digits and ``.`` removed; -2.0 when
  what is left is not a number); an undefined coefficient (NaN: a constant side) counts as 0.0
  (scipy raises on fewer than two items where llm-jp-eval would crash; here that is 0.0 too).
- Not reproduced: bleu, bert_score, comet_wmt22, rouge, code_exec, pylint_check (MT, SUM and
  CG datasets); a file naming them is refused before any request.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np

REFERENCE = {
    "project": "llm-jp-eval (https://github.com/llm-jp/llm-jp-eval)",
    "matched": "v1.x from evaluator commit 52ff89fa on: get_evaluation_prompt (Alpaca-style "
    "layout, few-shots from train/NAME.json samples[:n]), get_evaluation_result "
    "(post-processing and metrics); v1.0.0 had another prompt header, v2 another pipeline",
    "char_f1": "fuzzywuzzy 0.18.0 token_sort_ratio with python-Levenshtein",
    "commit": None,
    "upstream_commit_cited": "52ff89fa26c288074622cd052cedb48328f14032 (llm-jp-eval "
    "src/llm_jp_eval/evaluator.py, as adapted and cited by wandb/llm-leaderboard "
    "scripts/mmlu_eval.py @6e5cb557f44207c88df191a8688a3e6c86e85a0f)",
    "sources": [
        "wandb/llm-leaderboard scripts/mmlu_eval.py @6e5cb557f44207c88df191a8688a3e6c86e85a0f "
        "(evaluator flow: get_few_shot_samples, get_evaluation_prompt, max_new_tokens = "
        "output_length, max_num_samples)",
        "wandb/llm-leaderboard scripts/evaluator/evaluate_utils/to_be_deprecated.py "
        "@06c718a3d78d04560dfb11a5435c5580c7cefce1 (get_few_shot_samples, few-shot blocks)",
        "wandb/llm-leaderboard scripts/evaluator/evaluate_utils/metrics.py "
        "@6c7402bac725bd2ad4a76e59409f446b4cab853d (char_f1, set_f1, parse_float)",
        "wandb/llm-leaderboard scripts/evaluator/jaster.py "
        "@0172aa9e1986d1c24077daab8690d4958be43313 (split at the first blank line, NFKC)",
        "github.223886.xyz/llm-jp/llm-jp-eval/pull/91.diff (PROMPTS.md: the default layout)",
        "exact_match_figure: wandb/llm-leaderboard-korean scripts/evaluator/evaluate_utils/"
        "metrics.py @554a37ccd88f6058de1c6fc3bb37f84d66816865 (W&B Nejumi, not llm-jp-eval)",
    ],
    "note": "llm-jp/llm-jp-eval has no stored copy here; the definitions come from the copies "
    "above and were checked against fuzzywuzzy 0.18.0 and scipy themselves "
    "(tests/test_eval_jaster_metrics.py); the strip of the prediction is unverified",
}


def normalize(text: str) -> str:
    """llm-jp-eval's ``normalize``: Unicode NFKC."""
    return unicodedata.normalize("NFKC", text)


def postprocess(generated: str) -> str:
    """A generation as llm-jp-eval scores it: up to the first blank line, NFKC, stripped."""
    return normalize(generated.split("\n\n")[0]).strip()


# -- char_f1: fuzzywuzzy's token_sort_ratio -------------------------------------------------

_NON_WORD = re.compile(r"(?ui)\W")
_LATIN1 = dict.fromkeys(range(128, 256))


def _sorted_tokens(text: str) -> str:
    text = text.translate(_LATIN1)
    text = _NON_WORD.sub(" ", text).lower().strip()
    return " ".join(sorted(text.split())).strip()


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence (bit-parallel, Allison–Dix)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, ch in enumerate(a):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for ch in b:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def _ratio(a: str, b: str) -> int:
    if a == b:
        return 100
    if not a or not b:
        return 0
    total = len(a) + len(b)
    distance = total - 2 * lcs_length(a, b)
    return int(round(100 * (1.0 - distance / total)))


def token_sort_ratio(a: str, b: str) -> int:
    """fuzzywuzzy 0.18's ``fuzz.token_sort_ratio(a, b)`` (python-Levenshtein installed)."""
    return _ratio(_sorted_tokens(a), _sorted_tokens(b))


# -- the metrics ----------------------------------------------------------------------------


def parse_float(text: str) -> float:
    """llm-jp-eval's ``parse_float``."""
    cleaned = re.sub(r"[^0-9.]", "", str(text))
    try:
        return float(cleaned)
    except ValueError:
        return -2.0


def exact_match_figure_item(pred: str, gold: str) -> float:
    """1.0 when both sides read as the same number with Python's ``float``, else 0.0 (one that
    does not read as a number counts 0)."""
    try:
        return float(float(pred) == float(gold))
    except ValueError:
        return 0.0


def set_f1_item(pred: str, gold: str) -> float:
    gold_lines = [x.strip() for x in gold.split("\n")]
    pred_lines = {x.strip() for x in pred.split("\n")}
    hits = sum(1 for y in pred_lines if y in gold_lines)
    precision = hits / len(pred_lines)
    recall = hits / len(gold_lines)
    return 2 * precision * recall / (precision + recall) if precision + recall != 0 else 0.0


def exact_match(preds: Sequence[str], golds: Sequence[str]) -> float:
    return sum(p == g for p, g in zip(preds, golds, strict=True)) / len(golds)


def exact_match_figure(preds: Sequence[str], golds: Sequence[str]) -> float:
    return float(
        np.mean([exact_match_figure_item(p, g) for p, g in zip(preds, golds, strict=True)])
    )


def char_f1(preds: Sequence[str], golds: Sequence[str]) -> float:
    return float(
        np.mean([token_sort_ratio(p, g) / 100.0 for p, g in zip(preds, golds, strict=True)])
    )


def set_f1(preds: Sequence[str], golds: Sequence[str]) -> float:
    return float(np.mean([set_f1_item(p, g) for p, g in zip(preds, golds, strict=True)]))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy's ``rankdata(method="average")``)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, or 0.0 where it is undefined (fewer than two items, a constant side)."""
    if len(x) < 2:
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
    if denominator == 0.0 or not math.isfinite(denominator):
        return 0.0
    r = float(np.dot(dx, dy)) / denominator
    return max(-1.0, min(1.0, r))


def _numbers(preds: Sequence[str], golds: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    gold = np.array([float(g) for g in golds], dtype=np.float64)
    pred = np.array([parse_float(p) for p in preds], dtype=np.float64)
    return gold, pred


def pearson(preds: Sequence[str], golds: Sequence[str]) -> float:
    gold, pred = _numbers(preds, golds)
    return _correlation(gold, pred)


def spearman(preds: Sequence[str], golds: Sequence[str]) -> float:
    gold, pred = _numbers(preds, golds)
    return _correlation(_ranks(gold), _ranks(pred))


METRICS: dict[str, Callable[[Sequence[str], Sequence[str]], float]] = {
    "exact_match": exact_match,
    "exact_match_figure": exact_match_figure,
    "char_f1": char_f1,
    "set_f1": set_f1,
    "pearson": pearson,
    "spearman": spearman,
}


def item_scores(metric: str, pred: str, gold: str) -> float | None:
    """The item's own score for the per-item predictions file (None for the correlations,
    which exist only over a dataset)."""
    if metric == "exact_match":
        return float(pred == gold)
    if metric == "exact_match_figure":
        return exact_match_figure_item(pred, gold)
    if metric == "char_f1":
        return token_sort_ratio(pred, gold) / 100.0
    if metric == "set_f1":
        return set_f1_item(pred, gold)
    return None


def score(metric: str, preds: Sequence[str], golds: Sequence[str]) -> float:
    """The dataset score of ``metric`` over processed predictions and normalised golds."""
    if not golds:
        raise ValueError("no items to score")
    return METRICS[metric](preds, golds)
