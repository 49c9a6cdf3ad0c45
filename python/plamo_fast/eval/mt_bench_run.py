"""``plamo-fast eval mt-bench``: answer the questions (two turns, the second seeing the model's
own first answer), judge every turn with FastChat's judge prompts, and write FastChat's
``model_answer`` and ``model_judgment`` files, ``results.json``, ``results.md`` and a chart.

Answers and judgements are cached by a content hash of what produced them
(:mod:`plamo_fast.eval.cache`): an answer by the model's fingerprint, the backend, the exact
conversation and the sampling settings; a judgement by the judge (name, backend, server), the
judge prompt (name and text), the exact messages sent and the judge's settings. A killed run
keeps what it had; a rerun with the same settings asks nothing; a changed model (another
fingerprint) never reuses an answer, and so never a judgement either.

Sampling as FastChat's ``gen_model_answer.py``: the category's temperature
(:data:`plamo_fast.eval.mt_bench.TEMPERATURES`; below 1e-4 greedy), at most 1024 new tokens
(``--preset fastchat``); Stability AI's Japanese fork uses the same table with at most 512 new
tokens, top-p 0.9 and a repetition penalty of 1.1 (``--preset ja-fork``). The model's own chat
template builds the prompt (the backends apply it); answers are stripped, as FastChat does.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.digests import content_key
from plamo_fast.errors import PlamoFastError, UsageError
from plamo_fast.eval import mt_bench as mt
from plamo_fast.eval.cache import AnswerCache, model_fingerprint
from plamo_fast.generation.backends import Backend, SamplingOptions, resolve_backend
from plamo_fast.judge import fastchat as fc

COMMAND = "eval-mt-bench"
PRESETS = {
    "fastchat": {"max_new_tokens": 1024, "top_p": 1.0, "repetition_penalty": 1.0},
    "ja-fork": {"max_new_tokens": 512, "top_p": 0.9, "repetition_penalty": 1.1},
}
# FastChat asks an OpenAI judge at temperature 0 with max_tokens 2048.
JUDGE_OPTIONS = SamplingOptions(n=1, temperature=0.0, top_p=1.0, max_new_tokens=2048, seed=0)


@dataclass(frozen=True)
class Endpoint:
    """A model behind a generation backend (the model under test, or the judge)."""

    model: str
    backend: str = "auto"
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    tensor_parallel_size: int = 1
    timeout: float = 600.0
    retries: int = 4

    def load(self) -> Backend:
        from plamo_fast.generation.backends import load_backend

        return load_backend(
            self.backend,
            self.model,
            base_url=self.base_url,
            api_key=self.api_key,
            tensor_parallel_size=self.tensor_parallel_size,
            concurrency=self.concurrency,
            timeout=self.timeout,
            retries=self.retries,
        )


def sampling_for(category: str, preset: str, max_new_tokens: int | None = None) -> SamplingOptions:
    """The category's temperature and the preset's other settings (``max_new_tokens``, when
    given, replaces the preset's)."""
    values = PRESETS[preset]
    temperature = mt.TEMPERATURES.get(category, mt.DEFAULT_TEMPERATURE)
    return SamplingOptions(
        n=1,
        temperature=0.0 if temperature < 1e-4 else temperature,
        top_p=values["top_p"],
        max_new_tokens=max_new_tokens or values["max_new_tokens"],
        seed=0,
        repetition_penalty=values["repetition_penalty"],
    )


def _seed_key(key: str) -> int:
    return int(key[:12], 16)


class _Lazy:
    """Loads a backend on first use (a fully cached run never loads the model)."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint, self.engine = endpoint, None

    def __call__(self) -> Backend:
        if self.engine is None:
            self.engine = self.endpoint.load()
        return self.engine


def _down(what: str, done: int, total: int, cache: AnswerCache, exc: Exception):
    return PlamoFastError(
        f"{what} stopped after {done} of {total} ({exc}); everything answered and judged so "
        f"far is kept in {cache.folder} and reused by the next run"
    )


def _turn_items(questions, texts, turn: int, identity: dict, preset: tuple) -> list[tuple]:
    """``(question, conversation, options, key)`` of every question's turn ``turn`` (0-based)."""
    items = []
    for q in questions:
        conversation = []
        for k in range(turn):
            conversation.append({"role": "user", "content": q.turns[k]})
            conversation.append({"role": "assistant", "content": texts[q.question_id][k]})
        conversation.append({"role": "user", "content": q.turns[turn]})
        options = sampling_for(q.category, *preset)
        record = {"kind": "mt-bench answer", **identity, "messages": conversation,
                  "sampling": asdict(options)}  # fmt: skip
        items.append((q, conversation, options, content_key(record)))
    return items


def answer_questions(
    questions: list[mt.Question],
    model: Endpoint,
    identity: dict,
    turns: int,
    preset: tuple[str, int | None],
    cache: AnswerCache,
    progress: bool,
) -> tuple[dict[object, list[str]], int]:
    """``{question id: [answer per turn]}`` (from the cache, or generated turn by turn, each
    turn seeing the model's own earlier answers) and how many were generated."""
    engine = _Lazy(model)
    texts: dict[object, list[str]] = {q.question_id: [] for q in questions}
    generated = done = 0
    total = len(questions) * turns
    update, stop = progress_bar("answer", total, transfer=False, show=progress)
    try:
        for turn in range(turns):
            items = _turn_items(questions, texts, turn, identity, preset)
            groups: dict[SamplingOptions, list] = {}
            for item in items:
                if cache.get(item[3]) is None:
                    groups.setdefault(item[2], []).append(item)
            done += len(items) - sum(map(len, groups.values()))
            for options, pending in groups.items():
                for start in range(0, len(pending), engine().batch_size):
                    chunk = pending[start : start + engine().batch_size]
                    seeds = [_seed_key(c[3]) for c in chunk]
                    try:
                        outs = engine().generate([c[1] for c in chunk], options, seeds)
                    except PlamoFastError as exc:
                        raise _down("answering", done, total, cache, exc) from None
                    for item, out in zip(chunk, outs, strict=True):
                        cache.put(item[3], dict(out[0]))
                    generated += len(chunk)
                    done += len(chunk)
                    update(done)
            for q, _, _, key in items:
                texts[q.question_id].append(cache.get(key)["text"].strip())
            update(done)
    finally:
        stop()
    return texts, generated


def score_value(value: float | None) -> float | int:
    """A rating as FastChat writes it: an integer when whole, -1 when there is none."""
    if value is None:
        return -1
    return int(value) if float(value).is_integer() else value


def _verdicts(rater, parse, work: list[tuple], concurrency: int):
    """``(index, verdict)`` of each ``(index, conversation, seed)`` as soon as it is judged.
    A server (the openai backend) gets one request per task, ``concurrency`` in flight, so that
    every judgement is cached as it arrives and no batch waits for its slowest request; an
    engine (vllm, hf) gets batches of its ``batch_size``."""
    if rater.engine.name != "openai":
        size = rater.engine.batch_size
        for start in range(0, len(work), size):
            chunk = work[start : start + size]
            verdicts = rater.ask([c[1] for c in chunk], parse, [c[2] for c in chunk])
            yield from zip([c[0] for c in chunk], verdicts, strict=True)
        return
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(work))))
    try:
        futures = {pool.submit(rater.ask, [c[1]], parse, [c[2]]): c[0] for c in work}
        for future in as_completed(futures):
            yield futures[future], future.result()[0]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def ask_judge(
    requests: list,
    judge: Endpoint,
    cache: AnswerCache,
    retries: int,
    progress: bool,
    parse: tuple[str, Callable[[str], object]] | None = None,
    stop_after: int | None = None,
) -> tuple[list[dict | None], int]:
    """The cached judgement of every request (anything with ``prompt`` and ``messages()``):
    ``{"value", "judgment", "attempts", "tstamp"}``, value None when nothing could be parsed
    after the re-asks; the judge is asked only for the missing ones. ``parse``: ``(name,
    function)``, by default the rating (:func:`plamo_fast.judge.templates.parse_rating`).
    Returns the judgements and how many were asked. ``stop_after``: ask that many and stop
    (a stand-in for a killed run, for tests; the rest are None)."""
    from plamo_fast.judge.judge import Judge
    from plamo_fast.judge.templates import parse_rating

    parse_name, parse_fn = parse or ("rating, last [[N]]", parse_rating)
    identity = {"model": judge.model, "backend": resolve_backend(judge.backend, judge.base_url),
                "base_url": judge.base_url}  # fmt: skip
    keys = [
        content_key(
            {
                "kind": "judgment",
                "judge": identity,
                "prompt": r.prompt.record(),
                "messages": r.messages(),
                "sampling": asdict(JUDGE_OPTIONS),
                "retries": retries,
                "parse": parse_name,
            }
        )  # fmt: skip
        for r in requests
    ]
    pending = [i for i, key in enumerate(keys) if cache.get(key) is None]
    if stop_after is not None:
        pending = pending[:stop_after]
    asked = 0
    done = len(requests) - len(pending)
    update, stop = progress_bar("judge", len(requests), transfer=False, show=progress)
    try:
        update(done)
        if pending:
            rater = Judge(judge.load(), retries=retries, options=JUDGE_OPTIONS)
            work = [(i, requests[i].messages(), _seed_key(keys[i])) for i in pending]
            for i, verdict in _verdicts(rater, parse_fn, work, judge.concurrency):
                cache.put(
                    keys[i],
                    {"value": verdict.value, "judgment": verdict.text,
                     "attempts": min(verdict.attempt, retries) + 1, "tstamp": time.time()},
                )  # fmt: skip
                asked += 1
                update(done + asked)
    except PlamoFastError as exc:
        raise _down("judging", done + asked, len(requests), cache, exc) from None
    finally:
        stop()
    return [cache.get(key) for key in keys], asked


@dataclass(frozen=True)
class Inputs:
    """The files of a run, read and checked before any request."""

    questions: list[mt.Question]
    prompts: dict[str, fc.JudgePrompt]
    references: dict | None
    answers: dict | None  # --answers: FastChat model answers to judge
    files: dict[str, str]  # role -> path, for results.json (with their sha256)


def read_inputs(
    questions: Path,
    judge_prompts: Path,
    references: Path | None,
    answers: Path | None,
    turns: int,
) -> Inputs:
    """Every file read and matched; a mismatch is refused naming FILE:LINE."""
    qs = mt.read_questions(questions)
    for q in qs:
        if len(q.turns) < turns:
            raise mt.BenchFileError(
                f"{q.where}: question {q.question_id!r} has {len(q.turns)} turn(s); "
                f"--turns {turns} needs {turns}"
            )
    ref_based = any(q.category in fc.NEED_REF_CATS for q in qs)
    prompts = fc.single_prompts(
        fc.load_judge_prompts(judge_prompts), turns, str(judge_prompts), ref_based
    )
    refs = mt.read_answers(references) if references else None
    mt.check_references(qs, refs, references, turns)
    given = mt.read_answers(answers) if answers else None
    if given is not None:
        mt.check_answers(qs, given, answers, turns)
    files = {"questions": questions, "judge_prompts": judge_prompts}
    files |= {"references": references} if references else {}
    files |= {"answers": answers} if answers else {}
    return Inputs(qs, prompts, refs, given, {k: str(v) for k, v in files.items()})


def run_mt_bench(
    questions: Path,
    out: Path,
    *,
    judge: Endpoint,
    judge_prompts: Path,
    model: Endpoint | None = None,
    answers: Path | None = None,
    references: Path | None = None,
    model_id: str | None = None,
    turns: int = 2,
    preset: str = "fastchat",
    max_new_tokens: int | None = None,
    judge_retries: int = 2,
    cache_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    stop_after_judgments: int | None = None,
) -> dict:
    """Answer (or take ``answers``), judge, aggregate, write ``out``; returns a summary."""
    from plamo_fast.outputs import atomic_output, check_output

    if (model is None) == (answers is None):
        raise UsageError("give --model (to answer the questions) or --answers FILE, not both")
    if turns not in (1, 2):
        raise UsageError("--turns is 1 or 2")
    if preset not in PRESETS:
        raise UsageError(f"--preset is one of {', '.join(PRESETS)}")
    out = Path(out)
    paths = [Path(p) for p in (questions, judge_prompts, references, answers) if p]
    model_dir = [Path(model.model)] if model and Path(model.model).is_dir() else []
    check_output(out, command=COMMAND, inputs=paths + model_dir, overwrite=overwrite)
    inputs = read_inputs(questions, judge_prompts, references, answers, turns)
    cache = AnswerCache(
        Path(cache_dir) if cache_dir else out.with_name(out.name + ".cache"),
        [*paths, *model_dir, out],
    )
    started = time.perf_counter()
    try:
        if model is not None:
            backend = resolve_backend(model.backend, model.base_url)
            fingerprint = model_fingerprint(model.model, backend, model.base_url, cache.memo)
            identity = {"model": fingerprint, "backend": backend}
            texts, generated = answer_questions(
                inputs.questions, model, identity, turns, (preset, max_new_tokens), cache, progress
            )
            name = model_id or Path(model.model.rstrip("/")).name or model.model
        else:
            fingerprint, generated = None, 0
            texts = {qid: a.turns for qid, a in inputs.answers.items()}
            name = model_id or next(iter(inputs.answers.values())).model_id or "model"
        answer_map = {
            q.question_id: mt.Answer(q.question_id, name, texts[q.question_id][:turns], "")
            for q in inputs.questions
        }
        requests = mt.judge_requests(
            inputs.questions, answer_map, inputs.references, inputs.prompts, turns
        )
        judging = time.perf_counter()
        judged, asked = ask_judge(
            requests, judge, cache, judge_retries, progress, stop_after=stop_after_judgments
        )
        judging = time.perf_counter() - judging
        if any(j is None for j in judged):
            return {"finished": False, "judged": asked, "generated": generated}
    finally:
        cache.close()
    rows = [
        {"question_id": r.question.question_id, "model": name,
         "judge": [judge.model, r.prompt.name], "user_prompt": r.user_prompt,
         "judgment": j["judgment"], "score": score_value(j["value"]), "turn": r.turn,
         "tstamp": j["tstamp"]}
        for r, j in zip(requests, judged, strict=True)
    ]  # fmt: skip
    table = mt.aggregate(
        [mt.Judgment(r["question_id"], name, r["turn"], float(r["score"]), "") for r in rows],
        inputs.questions,
        {name: answer_map},
    )[name]
    results = _results(
        inputs, table, name, fingerprint, model, judge, turns, (preset, max_new_tokens)
    )
    results["run"] = {
        "answers_generated": generated,
        "judgements_asked": asked,
        "judgements": len(requests),
        "judge_seconds": round(judging, 3),
        "seconds": round(time.perf_counter() - started, 3),
        "cache": str(cache.folder),
    }
    with atomic_output(out, command=COMMAND, inputs=paths + model_dir, overwrite=overwrite) as tmp:
        write_jsonl(tmp / "model_answer" / f"{name}.jsonl", answer_records(answer_map))
        write_jsonl(tmp / "model_judgment" / f"{judge.model}_single.jsonl", rows)
        write_report(tmp, results)
    return {
        "output": str(out),
        "average": results["average"],
        "categories": results["categories"],
        "failed": table["failed"],
        **results["run"],
    }


def answer_records(answer_map: dict) -> list[dict]:
    """FastChat ``model_answer`` records (answer_id: a hash of the answer, so reruns agree)."""
    records = []
    for qid, answer in answer_map.items():
        digest = hashlib.sha256(json.dumps(answer.turns, ensure_ascii=False).encode()).hexdigest()
        records.append(
            {"question_id": qid, "answer_id": digest[:22], "model_id": answer.model_id,
             "choices": [{"index": 0, "turns": answer.turns}], "tstamp": 0.0}
        )  # fmt: skip
    return records


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def versions() -> dict:
    import plamo_fast

    found = {"plamo_fast": plamo_fast.__version__}
    for package in ("transformers", "torch", "vllm"):
        if importlib.util.find_spec(package) is not None:
            from importlib.metadata import PackageNotFoundError, version

            with contextlib.suppress(PackageNotFoundError):
                found[package] = version(package)
    return found


def _results(inputs, table, name, fingerprint, model, judge, turns, preset) -> dict:
    from plamo_fast.digests import sha256_file
    from plamo_fast.judge.judge import JAPANESE

    japanese = any(JAPANESE.search(q.turns[0]) for q in inputs.questions)
    own = sorted(n for n, p in inputs.prompts.items() if p.source == "plamo-fast")
    settings = {
        "turns": turns,
        "preset": preset[0],
        "sampling": {c: asdict(sampling_for(c, *preset)) for c in sorted(table["categories"])},
        "judge": {"model": judge.model, "backend": resolve_backend(judge.backend, judge.base_url),
                  "base_url": judge.base_url, **asdict(JUDGE_OPTIONS)},
        "judge_prompts": {n: p.source for n, p in inputs.prompts.items()},
    }  # fmt: skip
    if model is not None:
        settings["backend"] = resolve_backend(model.backend, model.base_url)
        settings["base_url"] = model.base_url
    notes = []
    if own:
        notes.append(
            f"Turn 2 was judged with plamo-fast's own Japanese multi-turn prompts ({', '.join(own)}"
            "); the Japanese fork has none and judges turn 1 only: use --turns 1 for numbers "
            "comparable with it."
        )
    return {
        "benchmark": "japanese-mt-bench" if japanese else "mt-bench",
        "model": name,
        "average": table["average"],
        "categories": {c: e["average"] for c, e in table["categories"].items()},
        "turn_1": table["turn_1"],
        "turn_2": table["turn_2"],
        "interval_95": table["interval_95"],
        "failed": table["failed"],
        "table": table,
        "aggregation": "FastChat show_result: score -1 (failed) left out, mean over judgements",
        "notes": notes,
        "settings": settings,
        "model_fingerprint": fingerprint,
        "files": {
            role: {"path": p, "sha256": sha256_file(Path(p))} for role, p in inputs.files.items()
        },
        "versions": versions(),
    }


def _cell(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def results_markdown(results: dict) -> str:
    """The blog's layout: a row per model, a column per category and the average; then turn 1,
    turn 2, the interval, answer lengths and failed judgements per category."""
    table = results["table"]
    cats = list(table["categories"])
    interval = table["interval_95"]
    lines = [
        f"# {results['benchmark']}: {results['model']}",
        "",
        "| model | " + " | ".join(cats) + " | average |",
        "|---" * (len(cats) + 2) + "|",
        f"| {results['model']} | "
        + " | ".join(_cell(table["categories"][c]["average"]) for c in cats)
        + f" | {_cell(table['average'])} |",
        "",
        f"Turn 1: {_cell(table['turn_1'])}; turn 2: {_cell(table['turn_2'])}; overall: "
        f"{_cell(table['average'])}"
        + (f" (95% bootstrap interval {interval[0]:.2f}–{interval[1]:.2f})" if interval else "")
        + f"; failed judgements: {table['failed']} of {table['judgements']}.",
        "",
        "| category | turn 1 | turn 2 | overall | answer chars | failed |",
        "|---|---|---|---|---|---|",
    ]
    for c, e in table["categories"].items():
        chars = e.get("answer_chars")
        lines.append(
            f"| {c} | {_cell(e['turn_1'])} | {_cell(e['turn_2'])} | {_cell(e['average'])} | "
            f"{'—' if chars is None else f'{chars:.0f}'} | {e['failed']} |"
        )
    lines += ["", f"Aggregation: {results['aggregation']}."]
    lines += [f"Note: {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def write_report(folder: Path, results: dict) -> None:
    """results.json, results.md and results.png (the chart is left out, with a notice in the
    results, when matplotlib is not installed)."""
    from plamo_fast.eval.charts import bar_chart

    drawn = bar_chart(
        folder / "results.png",
        f"{results['benchmark']}",
        {results["model"]: results["categories"] | {"average": results["average"]}},
        top=10,
    )
    if not drawn:
        results["notes"].append("No chart: matplotlib is not installed (pip install matplotlib).")
    (folder / "results.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (folder / "results.md").write_text(results_markdown(results), encoding="utf-8")


def aggregate_judgments(
    judgments: Path,
    out: Path,
    *,
    questions: Path | None = None,
    overwrite: bool = False,
) -> dict:
    """``--judgments FILE``: the table of every model in an existing FastChat judgement file,
    asking no one."""
    from plamo_fast.digests import sha256_file
    from plamo_fast.outputs import atomic_output, check_output

    paths = [Path(p) for p in (judgments, questions) if p]
    check_output(out, command=COMMAND, inputs=paths, overwrite=overwrite)
    rows = mt.read_judgments(judgments)
    qs = mt.read_questions(questions) if questions else None
    tables = mt.aggregate(rows, qs)
    results = {
        "benchmark": "mt-bench judgements",
        "models": {m: {"average": t["average"], "turn_1": t["turn_1"], "turn_2": t["turn_2"],
                       "categories": {c: e["average"] for c, e in t.get("categories", {}).items()}}
                   for m, t in tables.items()},
        "tables": tables,
        "aggregation": "FastChat show_result: score -1 (failed) left out, mean over judgements",
        "files": {str(p): sha256_file(p) for p in paths},
        "versions": versions(),
    }  # fmt: skip
    with atomic_output(out, command=COMMAND, inputs=paths, overwrite=overwrite) as tmp:
        (tmp / "results.json").write_text(
            json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        (tmp / "results.md").write_text(judgments_markdown(tables), encoding="utf-8")
    return {"output": str(out), "models": results["models"]}


def judgments_markdown(tables: dict) -> str:
    ranked = sorted(tables.items(), key=lambda kv: -(kv[1]["average"] or 0))
    cats = sorted({c for _, t in ranked for c in t.get("categories", {})},
                  key=lambda c: mt.CATEGORIES.index(c) if c in mt.CATEGORIES else 99)  # fmt: skip
    lines = [
        "| model | " + " | ".join(cats) + " | turn 1 | turn 2 | average | 95% interval | failed |",
        "|---" * (len(cats) + 6) + "|",
    ]
    for model, t in ranked:
        iv = t["interval_95"]
        cells = [_cell(t.get("categories", {}).get(c, {}).get("average")) for c in cats]
        cells += [_cell(t["turn_1"]), _cell(t["turn_2"]), _cell(t["average"])]
        cells += [f"{iv[0]:.2f}–{iv[1]:.2f}" if iv else "—", str(t["failed"])]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
