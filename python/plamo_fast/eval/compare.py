"""``plamo-fast eval compare DIR_A DIR_B [...]``: the results of several ``eval`` runs side by side.

Every ``results.json`` has ``benchmark``, ``model``, ``average`` and ``categories``; runs of the
same benchmark become one Markdown table (a row per run, a column per category and the average,
as the blog lays them out; Jaster gives a row per shot setting) and one PNG bar chart.

With ``--judge`` and ``--pair-prompts``, two MT-Bench or Rakuda runs are also judged against
each other: their answers (``model_answer/*.jsonl``) to the same questions (the questions file
both runs recorded), turn 1, in both orders, with the pairwise prompt of the file (FastChat's
``pair-v2``, or with a reference for math/reasoning/coding its ``pair-math-v1`` and the
references the runs used; Rakuda's ``pair-ja``), combined as in
:mod:`plamo_fast.eval.rakuda`.
"""

from __future__ import annotations

import json
from pathlib import Path

from plamo_fast.errors import UsageError

COMMAND = "eval-compare"
PAIRWISE_BENCHMARKS = ("mt-bench", "japanese-mt-bench", "rakuda")


def read_results(folder: Path) -> dict:
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise UsageError(f"{folder}: no results.json (an output folder of plamo-fast eval?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON: {exc}") from None
    missing = [k for k in ("benchmark", "model", "average", "categories") if k not in results]
    if missing:
        raise UsageError(f"{path}: lacks {', '.join(missing)}")
    return results


def rows_of(results: dict, folder: Path) -> list[tuple[str, dict, float | None]]:
    """``(label, categories, average)`` rows of one run (Jaster: one per shot setting)."""
    label = f"{results['model']} ({Path(folder).name})"
    if results["benchmark"] == "jaster" and results.get("runs"):
        return [(f"{label} {r['shots']}-shot", r["categories"], r["average"])
                for r in results["runs"]]  # fmt: skip
    return [(label, results["categories"], results["average"])]


def _cell(value) -> str:
    return "—" if value is None else f"{value:.4f}" if abs(value) <= 1 else f"{value:.2f}"


def tables(runs: list[tuple[Path, dict]]) -> dict[str, dict]:
    """``{benchmark: {"categories": [...], "rows": [(label, categories, average)]}}``."""
    grouped: dict[str, dict] = {}
    for folder, results in runs:
        entry = grouped.setdefault(results["benchmark"], {"categories": [], "rows": []})
        for label, categories, average in rows_of(results, folder):
            for c in categories:
                if c not in entry["categories"]:
                    entry["categories"].append(c)
            entry["rows"].append((label, categories, average))
    return grouped


def markdown(grouped: dict[str, dict], pairwise: dict | None) -> str:
    lines = []
    for benchmark, entry in grouped.items():
        cats = entry["categories"]
        lines += [f"## {benchmark}", "", "| run | " + " | ".join(cats) + " | average |",
                  "|---" * (len(cats) + 2) + "|"]  # fmt: skip
        for label, categories, average in entry["rows"]:
            cells = [_cell(categories.get(c)) for c in cats] + [_cell(average)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    if pairwise:
        lines += ["## Pairwise, each question judged in both orders", "",
                  "| benchmark | model A | model B | A wins | B wins | ties | failed |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for benchmark, p in pairwise.items():
            lines.append(f"| {benchmark} | {p['model_1']} | {p['model_2']} | {p['wins']} | "
                         f"{p['losses']} | {p['ties']} | {p['failed']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _answers_path(folder: Path, results: dict) -> Path:
    files = results.get("files", {})
    given = files.get("answers") or files.get("answers[0]")
    if given:
        return Path(given["path"])
    found = sorted((Path(folder) / "model_answer").glob("*.jsonl"))
    if len(found) != 1:
        raise UsageError(
            f"{folder}: expected one model_answer/*.jsonl to compare, found {len(found)}"
        )
    return found[0]


def judge_pair(
    a: tuple[Path, dict], b: tuple[Path, dict], judge, pair_prompts: Path, cache, retries: int
) -> dict:
    """Judge run A's answers against run B's, turn 1, both orders."""
    from plamo_fast.eval import mt_bench as mt
    from plamo_fast.eval import mt_bench_run as run
    from plamo_fast.eval.rakuda import pair_requests, pair_summary
    from plamo_fast.judge import fastchat as fc

    (fa, ra), (fb, rb) = a, b
    qa, qb = (r.get("files", {}).get("questions", {}).get("path") for r in (ra, rb))
    if not qa or qa != qb:
        raise UsageError(f"{fa} and {fb} did not answer the same questions file; cannot pair them")
    questions = mt.read_questions(qa)
    answers = []
    for folder, results in a, b:
        path = _answers_path(folder, results)
        found = mt.read_answers(path)
        mt.check_answers(questions, found, path, 1)
        answers.append(found)
    prompts = fc.load_judge_prompts(pair_prompts)
    general = fc.pair_prompt(prompts, str(pair_prompts))
    references = ra.get("files", {}).get("references", {}).get("path")
    math = prompts.get("pair-math-v1") if references else None
    refs = mt.read_answers(references) if math else None
    plain = [q for q in questions if not (math and q.category in fc.NEED_REF_CATS)]
    requests = pair_requests(plain, answers[0], answers[1], general)
    ordered = list(plain)
    if math:
        ref_qs = [q for q in questions if q.category in fc.NEED_REF_CATS]
        mt.check_answers(ref_qs, refs, references, 1, what="reference answer")
        requests += pair_requests(ref_qs, answers[0], answers[1], math, refs)
        ordered += ref_qs
    parsers = {fc.verdict_parser(p)[0] for p in {general, math} - {None}}
    if len(parsers) != 1:
        raise UsageError(f"{pair_prompts}: the pairwise prompts have different output formats")
    judged, _ = run.ask_judge(
        requests, judge, cache, retries, False, parse=fc.verdict_parser(general)
    )
    summary, _ = pair_summary(ordered, judged)
    return {"model_1": ra["model"], "model_2": rb["model"], **summary}


def compare(
    folders: list[Path],
    out: Path,
    *,
    judge=None,
    pair_prompts: Path | None = None,
    judge_retries: int = 2,
    cache_dir: Path | None = None,
    overwrite: bool = False,
) -> dict:
    from plamo_fast.eval.cache import AnswerCache
    from plamo_fast.eval.charts import bar_chart
    from plamo_fast.outputs import atomic_output, check_output

    if len(folders) < 2:
        raise UsageError("eval compare takes at least two result folders")
    if (judge is None) != (pair_prompts is None):
        raise UsageError("pairwise judging needs both --judge and --pair-prompts")
    out = Path(out)
    inputs = [Path(f) for f in folders] + ([Path(pair_prompts)] if pair_prompts else [])
    check_output(out, command=COMMAND, inputs=inputs, overwrite=overwrite)
    runs = [(Path(f), read_results(f)) for f in folders]
    grouped = tables(runs)
    pairwise = {}
    if judge is not None:
        cache = AnswerCache(
            Path(cache_dir) if cache_dir else out.with_name(out.name + ".cache"), [*inputs, out]
        )
        try:
            for benchmark in PAIRWISE_BENCHMARKS:
                same = [r for r in runs if r[1]["benchmark"] == benchmark]
                if len(same) >= 2:
                    pairwise[benchmark] = judge_pair(
                        same[0], same[1], judge, pair_prompts, cache, judge_retries
                    )
        finally:
            cache.close()
        if not pairwise:
            raise UsageError("pairwise judging needs two MT-Bench or Rakuda runs")
    notes = []
    with atomic_output(out, command=COMMAND, inputs=inputs, overwrite=overwrite) as tmp:
        for benchmark, entry in grouped.items():
            series = {label: {**cats, "average": avg} for label, cats, avg in entry["rows"]}
            if not bar_chart(tmp / f"{benchmark}.png", benchmark, series):
                notes.append("No charts: matplotlib is not installed (pip install matplotlib).")
                break
        summary = {
            "runs": [{"folder": str(f), "benchmark": r["benchmark"], "model": r["model"],
                      "average": r["average"], "categories": r["categories"]} for f, r in runs],
            "pairwise": pairwise,
            "notes": notes,
        }  # fmt: skip
        (tmp / "compare.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        text = markdown(grouped, pairwise) + "".join(f"\nNote: {n}\n" for n in notes)
        (tmp / "compare.md").write_text(text, encoding="utf-8")
    return {"output": str(out), "benchmarks": list(grouped), "pairwise": pairwise}
