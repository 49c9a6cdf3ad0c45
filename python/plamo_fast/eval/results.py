"""Benchmark results: category averages and the ``results.json`` / ``results.md`` files.

Jaster categories are llm-jp-eval's (v1.x ``post_process_score_results``): each category is
the mean of the listed ``DATASET_METRIC`` scores that were evaluated. Two averages are given,
each named by its convention:

- ``average``: the mean over the categories evaluated (a category with no evaluated dataset is
  left out), what plamo-fast reports;
- ``average_llm_jp_eval``: llm-jp-eval's ``AVG``, the mean over *all* of its categories with a
  category that has no evaluated dataset counted as 0.

A dataset whose score is in no category (JSTS's pearson/spearman in llm-jp-eval v1.x) is
reported per dataset only.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

JASTER_CATEGORIES: dict[str, tuple[str, ...]] = {
    "NLI": (
        "jamp_exact_match",
        "janli_exact_match",
        "jnli_exact_match",
        "jsem_exact_match",
        "jsick_exact_match",
    ),
    "QA": ("jemhopqa_char_f1", "niilc_char_f1", "aio_char_f1"),
    "RC": ("jsquad_char_f1",),
    "MC": ("jcommonsenseqa_exact_match", "commonsensemoralja_exact_match", "kuci_exact_match"),
    "HE": ("mmlu_en_exact_match", "jmmlu_exact_match"),
    "EL": ("chabsa_set_f1",),
    "FA": (
        "wiki_reading_char_f1",
        "wiki_ner_set_f1",
        "wiki_dependency_set_f1",
        "wiki_pas_set_f1",
        "wiki_coreference_set_f1",
    ),
    "MR": ("mawps_exact_match", "mgsm_exact_match"),
    "MT": (
        "alt-e-to-j_comet_wmt22",
        "alt-j-to-e_comet_wmt22",
        "wikicorpus-e-to-j_comet_wmt22",
        "wikicorpus-j-to-e_comet_wmt22",
    ),
    "CG": ("mbpp_code_exec",),
    "SUM": ("xlsum_ja_rouge2_scaling",),
}

CONVENTIONS = {
    "average": "mean over the categories evaluated (categories with no dataset left out)",
    "average_llm_jp_eval": "llm-jp-eval's AVG: mean over all of its categories "
    f"({', '.join(JASTER_CATEGORIES)}), a category with no dataset counted as 0",
}


def jaster_summary(scores: dict[str, float]) -> dict:
    """``scores``: ``{"DATASET_METRIC": score}``. Returns the categories evaluated, both
    averages, and the scores that fall in no category."""
    categories = {}
    for category, names in JASTER_CATEGORIES.items():
        found = [scores[n] for n in names if n in scores]
        if found:
            categories[category] = mean(found)
    placed = {n for names in JASTER_CATEGORIES.values() for n in names}
    return {
        "average": mean(categories.values()) if categories else None,
        "average_llm_jp_eval": mean(categories.get(c, 0.0) for c in JASTER_CATEGORIES),
        "categories": categories,
        "uncategorized": {n: s for n, s in scores.items() if n not in placed},
    }


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def jaster_markdown(results: dict) -> str:
    """The blog's layout: one row per shot setting, a column per category and the average;
    then every dataset score."""
    runs = results["runs"]
    categories = [c for c in JASTER_CATEGORIES if any(c in r["categories"] for r in runs)]
    lines = [
        f"# Jaster: {results['model']}",
        "",
        f"Prompt: {results['settings']['prompt_layout']}. First {results['settings']['limit']} "
        "items of each dataset; greedy decoding.",
        "",
        "| setting | " + " | ".join(categories) + " | AVG | AVG (llm-jp-eval) |",
        "|---" * (len(categories) + 3) + "|",
    ]
    for run in runs:
        cells = [_cell(run["categories"].get(c)) for c in categories]
        cells += [_cell(run["average"]), _cell(run["average_llm_jp_eval"])]
        lines.append(f"| {run['shots']}-shot | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"AVG: {CONVENTIONS['average']}. AVG (llm-jp-eval): {CONVENTIONS['average_llm_jp_eval']}.",
        "",
        "| dataset_metric | " + " | ".join(f"{r['shots']}-shot" for r in runs) + " |",
        "|---" * (len(runs) + 1) + "|",
    ]
    names = sorted({n for r in runs for n in r["scores"]})
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_cell(r["scores"].get(name)) for r in runs) + " |")
    return "\n".join(lines) + "\n"


def write_results(folder: Path, results: dict, markdown: str) -> None:
    (folder / "results.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (folder / "results.md").write_text(markdown, encoding="utf-8")
