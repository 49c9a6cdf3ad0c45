"""``plamo-fast eval rakuda``: YuzuAI's Rakuda benchmark (40 Japanese questions on 地理, 政治,
歴史 and 社会), graded two ways.

- **Absolute**: each answer graded 1-10 with a single-answer judge prompt file (FastChat's
  format, e.g. Japanese MT-Bench's ``judge_ja_prompts.jsonl``; Rakuda itself has none), the
  table per category as :mod:`plamo_fast.eval.mt_bench` aggregates it.
- **Pairwise**: with Rakuda's own pairwise prompt (``judge_prompts.jsonl``, ``pair-ja``: the
  judge ends with 1, 2 or 3), every question judged in **both orders**; the two verdicts give
  one result (agreement stands, a win and a tie give the win, a split verdict is a tie,
  :func:`plamo_fast.judge.judge.combine_orders`), reported as wins/losses/ties (the blog's
  table 6) against ``--baseline``, or between every two of several answer files. The games
  (each order one game, as Rakuda counts them) also give a Bradley–Terry rating with a
  first-position term and a bootstrap interval (:mod:`plamo_fast.eval.bradley_terry`).

Answers of ``--model`` are generated as for MT-Bench (one turn, the category's temperature:
Rakuda's categories are not in FastChat's table, so 0.7) and cached; every judgement is cached
by a hash of what produced it (:mod:`plamo_fast.eval.mt_bench_run`).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.digests import sha256_file
from plamo_fast.errors import UsageError
from plamo_fast.eval import mt_bench as mt
from plamo_fast.eval import mt_bench_run as run
from plamo_fast.eval.cache import AnswerCache, model_fingerprint
from plamo_fast.generation.backends import resolve_backend
from plamo_fast.judge import fastchat as fc
from plamo_fast.judge.judge import combine_orders

COMMAND = "eval-rakuda"
CATEGORIES = ("地理", "政治", "歴史", "社会")
OUTCOME = {"A": 1.0, "B": 0.0, "tie": 0.5}


@dataclass(frozen=True)
class PairRequest:
    question: mt.Question
    prompt: fc.JudgePrompt
    user_prompt: str

    def messages(self) -> list[dict]:
        return fc.messages(self.prompt, self.user_prompt)


def _answer_sets(questions, paths: list[Path], what: str) -> dict[str, dict]:
    """``{model name: {question id: Answer}}`` of answer files (name: the files' model_id, else
    the file name), each checked against the questions."""
    sets: dict[str, dict] = {}
    origin: dict[str, Path] = {}
    for path in paths:
        answers = mt.read_answers(path)
        mt.check_answers(questions, answers, path, 1)
        name = next(iter(answers.values())).model_id or Path(path).stem
        if name in sets:
            raise UsageError(
                f"{what} {path} and {origin[name]} are both answers of {name!r}; pass each once"
            )
        sets[name], origin[name] = answers, path
    return sets


def pair_requests(
    questions, a: dict, b: dict, prompt: fc.JudgePrompt, references: dict | None = None
) -> list[PairRequest]:
    """For each question, game 1 (``a`` shown first) and game 2 (``b`` first); a reference-
    guided prompt gets the question's reference answer as ``ref_answer_1``."""
    requests = []
    for q in questions:
        first, second = a[q.question_id].turns[0], b[q.question_id].turns[0]
        extra = {"ref_answer_1": references[q.question_id].turns[0]} if prompt.ref_based else {}
        for x, y in ((first, second), (second, first)):
            user = fc.fill(prompt, question=q.turns[0], answer_a=x, answer_b=y, **extra)
            requests.append(PairRequest(q, prompt, user))
    return requests


def pair_summary(questions, verdicts: list) -> tuple[dict, list[tuple]]:
    """Wins/losses/ties of the first model and per-question results, from the verdicts of
    :func:`pair_requests` (game 1, game 2 per question)."""
    summary = {"wins": 0, "losses": 0, "ties": 0, "failed": 0, "by_category": {}, "by_order": {}}
    outcomes = []
    for k, q in enumerate(questions):
        g1, g2 = verdicts[2 * k], verdicts[2 * k + 1]
        first = g1["value"]
        second = {"A": "B", "B": "A"}.get(g2["value"], g2["value"])  # as seen from game 1
        result = combine_orders(first, second)
        key = {"A": "wins", "B": "losses", "tie": "ties", "missing": "failed"}[result]
        summary[key] += 1
        cat = summary["by_category"].setdefault(
            q.category, {"wins": 0, "losses": 0, "ties": 0, "failed": 0}
        )
        cat[key] += 1
        for order, value in (("first_shown_first", first), ("first_shown_second", second)):
            label = {"A": "win", "B": "loss", "tie": "tie", None: "failed"}[value]
            summary["by_order"].setdefault(order, {}).setdefault(label, 0)
            summary["by_order"][order][label] += 1
        outcomes.append((q, g1, g2, first, second))
    judged = summary["wins"] + summary["losses"] + summary["ties"]
    summary["win_rate"] = (summary["wins"] + 0.5 * summary["ties"]) / judged if judged else None
    return summary, outcomes


def _winner(value) -> str:
    return {"A": "model_1", "B": "model_2", "tie": "tie"}.get(value, "error")


def run_rakuda(
    questions: Path,
    out: Path,
    *,
    judge: run.Endpoint,
    model: run.Endpoint | None = None,
    model_id: str | None = None,
    answers: list[Path] = (),
    baseline: Path | None = None,
    judge_prompts: Path | None = None,
    pair_prompts: Path | None = None,
    preset: str = "fastchat",
    max_new_tokens: int | None = None,
    judge_retries: int = 2,
    bootstrap_rounds: int = 500,
    cache_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    from plamo_fast.outputs import atomic_output, check_output

    answers = [Path(a) for a in answers]
    if model is None and not answers:
        raise UsageError("give --model or --answers FILE (several for a ranking)")
    if judge_prompts is None and pair_prompts is None:
        raise UsageError("give --judge-prompts (absolute grades), --pair-prompts, or both")
    if pair_prompts is not None and baseline is None and len(answers) + (model is not None) < 2:
        raise UsageError("pairwise judging needs --baseline FILE or several answer files")
    if baseline is not None and pair_prompts is None:
        raise UsageError("--baseline needs --pair-prompts (Rakuda's judge_prompts.jsonl)")
    out = Path(out)
    given = [Path(p) for p in (questions, judge_prompts, pair_prompts, baseline) if p] + answers
    model_dir = [Path(model.model)] if model and Path(model.model).is_dir() else []
    check_output(out, command=COMMAND, inputs=given + model_dir, overwrite=overwrite)

    # Every file read and matched before any request.
    qs = mt.read_questions(questions)
    sets = _answer_sets(qs, answers, "--answers")
    base = _answer_sets(qs, [baseline], "--baseline") if baseline else {}
    single = (
        fc.single_prompts(fc.load_judge_prompts(judge_prompts), 1, str(judge_prompts), False)
        if judge_prompts
        else None
    )
    pair = (
        fc.pair_prompt(fc.load_judge_prompts(pair_prompts), str(pair_prompts))
        if pair_prompts
        else None
    )
    parser = fc.verdict_parser(pair) if pair else None

    cache = AnswerCache(
        Path(cache_dir) if cache_dir else out.with_name(out.name + ".cache"),
        [*given, *model_dir, out],
    )
    started = time.perf_counter()
    generated = asked = 0
    fingerprint = None
    try:
        if model is not None:
            backend = resolve_backend(model.backend, model.base_url)
            fingerprint = model_fingerprint(model.model, backend, model.base_url, cache.memo)
            identity = {"model": fingerprint, "backend": backend}
            texts, generated = run.answer_questions(
                qs, model, identity, 1, (preset, max_new_tokens), cache, progress
            )
            name = model_id or Path(model.model.rstrip("/")).name or model.model
            if name in sets or name in base:
                raise UsageError(
                    f"--model's name {name!r} is also an answer file's; pass --model-id"
                )
            sets = {name: {q.question_id: mt.Answer(q.question_id, name, texts[q.question_id], "")
                           for q in qs}, **sets}  # fmt: skip
        absolute, single_rows = {}, []
        if single is not None:
            for name, answer_map in {**sets, **base}.items():
                requests = mt.judge_requests(qs, answer_map, None, single, 1)
                judged, n = run.ask_judge(requests, judge, cache, judge_retries, progress)
                asked += n
                rows = [
                    {"question_id": r.question.question_id, "model": name,
                     "judge": [judge.model, r.prompt.name], "user_prompt": r.user_prompt,
                     "judgment": j["judgment"], "score": run.score_value(j["value"]),
                     "turn": 1, "tstamp": j["tstamp"]}
                    for r, j in zip(requests, judged, strict=True)
                ]  # fmt: skip
                single_rows += rows
                absolute[name] = mt.aggregate(
                    [mt.Judgment(r["question_id"], name, 1, float(r["score"]), "") for r in rows],
                    qs,
                    {name: answer_map},
                )[name]
        pairwise, pair_rows, games = {}, [], []
        if pair is not None:
            matchups = (
                [(a, next(iter(base))) for a in sets]
                if base
                else list(itertools.combinations(sets, 2))
            )
            everyone = {**sets, **base}
            for a, b in matchups:
                requests = pair_requests(qs, everyone[a], everyone[b], pair)
                judged, n = run.ask_judge(
                    requests, judge, cache, judge_retries, progress, parse=parser
                )
                asked += n
                summary, outcomes = pair_summary(qs, judged)
                pairwise[f"{a} vs {b}"] = {"model_1": a, "model_2": b, **summary}
                for k, (q, g1, g2, first, second) in enumerate(outcomes):
                    pair_rows.append(
                        {"question_id": q.question_id, "model_1": a, "model_2": b,
                         "g1_winner": _winner(first), "g2_winner": _winner(second),
                         "judge": [judge.model, pair.name],
                         "g1_user_prompt": requests[2 * k].user_prompt,
                         "g1_judgment": g1["judgment"],
                         "g2_user_prompt": requests[2 * k + 1].user_prompt,
                         "g2_judgment": g2["judgment"], "turn": 1, "tstamp": g2["tstamp"]}
                    )  # fmt: skip
                    if g1["value"] is not None:
                        games.append((a, b, OUTCOME[g1["value"]]))
                    if g2["value"] is not None:
                        games.append((b, a, OUTCOME[g2["value"]]))
    finally:
        cache.close()

    ranking = None
    if games and len({g[0] for g in games} | {g[1] for g in games}) >= 2:
        from plamo_fast.eval.bradley_terry import bootstrap

        ranking = bootstrap(games, rounds=bootstrap_rounds)
    first_name = next(iter(sets))
    files = {"questions": questions, "judge_prompts": judge_prompts, "pair_prompts": pair_prompts,
             "baseline": baseline}  # fmt: skip
    files = {k: str(v) for k, v in files.items() if v} | {
        f"answers[{i}]": str(p) for i, p in enumerate(answers)
    }
    first_table = absolute.get(first_name)
    results = {
        "benchmark": "rakuda",
        "model": first_name,
        "average": first_table["average"] if first_table else None,
        "categories": {c: e["average"] for c, e in first_table["categories"].items()}
        if first_table
        else {},
        "absolute": absolute,
        "pairwise": pairwise,
        "bradley_terry": ranking,
        "combine_rule": "both orders judged; agreement stands, a win and a tie give the win, a "
        "split verdict is a tie",
        "notes": [],
        "settings": {
            "preset": preset,
            "max_new_tokens": max_new_tokens,
            "judge": {"model": judge.model, "base_url": judge.base_url,
                      "backend": resolve_backend(judge.backend, judge.base_url)},
            "pair_output_format": parser[0] if parser else None,
        },  # fmt: skip
        "model_fingerprint": fingerprint,
        "files": {role: {"path": p, "sha256": sha256_file(Path(p))} for role, p in files.items()},
        "versions": run.versions(),
        "run": {"answers_generated": generated, "judgements_asked": asked,
                "seconds": round(time.perf_counter() - started, 3), "cache": str(cache.folder)},
    }  # fmt: skip
    with atomic_output(out, command=COMMAND, inputs=given + model_dir, overwrite=overwrite) as tmp:
        if model is not None:
            records = run.answer_records(sets[first_name])
            run.write_jsonl(tmp / "model_answer" / f"{first_name}.jsonl", records)
        if single_rows:
            run.write_jsonl(tmp / "model_judgment" / f"{judge.model}_single.jsonl", single_rows)
        if pair_rows:
            run.write_jsonl(tmp / "model_judgment" / f"{judge.model}_pair.jsonl", pair_rows)
        write_report(tmp, results)
    return {
        "output": str(out),
        "average": results["average"],
        "categories": results["categories"],
        "pairwise": {k: {x: v[x] for x in ("wins", "losses", "ties", "failed")}
                     for k, v in pairwise.items()},
        **results["run"],
    }  # fmt: skip


def _cell(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def results_markdown(results: dict) -> str:
    lines = ["# Rakuda", ""]
    if results["absolute"]:
        cats = [
            c for c in CATEGORIES if any(c in t["categories"] for t in results["absolute"].values())
        ]
        cats += sorted(
            {c for t in results["absolute"].values() for c in t["categories"]} - set(cats)
        )
        lines += ["Absolute grades (1-10):", "",
                  "| model | " + " | ".join(cats) + " | average | failed |",
                  "|---" * (len(cats) + 3) + "|"]  # fmt: skip
        for name, t in results["absolute"].items():
            cells = [_cell(t["categories"].get(c, {}).get("average")) for c in cats]
            lines.append(
                f"| {name} | " + " | ".join(cells) + f" | {_cell(t['average'])} | {t['failed']} |"
            )
        lines.append("")
    if results["pairwise"]:
        lines += ["Pairwise, each question judged in both orders "
                  f"({results['combine_rule']}):", "",
                  "| model | opponent | wins | losses | ties | failed | win rate |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for p in results["pairwise"].values():
            rate = "—" if p["win_rate"] is None else f"{100 * p['win_rate']:.1f}%"
            lines.append(f"| {p['model_1']} | {p['model_2']} | {p['wins']} | {p['losses']} | "
                         f"{p['ties']} | {p['failed']} | {rate} |")  # fmt: skip
        lines.append("")
    ranking = results["bradley_terry"]
    if ranking:
        lines += [f"Bradley–Terry ({ranking['games']} games, {ranking['rounds']} bootstrap rounds; "
                  f"first-position advantage {ranking['advantage']:+.1f}):", "",
                  "| model | rating | median | one sigma | 95% interval |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name, r in ranking["models"].items():
            lo, hi = r["interval_95"]
            lines.append(f"| {name} | {r['rating']:.0f} | {r['median']:.0f} | "
                         f"{r['lower']:.0f}–{r['upper']:.0f} | {lo:.0f}–{hi:.0f} |")  # fmt: skip
    lines += [f"Note: {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def write_report(folder: Path, results: dict) -> None:
    from plamo_fast.eval.charts import bar_chart

    if results["absolute"]:
        series = {
            n: {c: e["average"] for c, e in t["categories"].items()} | {"average": t["average"]}
            for n, t in results["absolute"].items()
        }
        drawn = bar_chart(folder / "results.png", "Rakuda (absolute)", series, top=10)
    elif results["bradley_terry"]:
        ratings = {n: r["rating"] for n, r in results["bradley_terry"]["models"].items()}
        drawn = bar_chart(folder / "results.png", "Rakuda (Bradley–Terry)", {"rating": ratings})
    else:
        drawn = True
    if not drawn:
        results["notes"].append("No chart: matplotlib is not installed (pip install matplotlib).")
    (folder / "results.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8"
    )
    (folder / "results.md").write_text(results_markdown(results), encoding="utf-8")
