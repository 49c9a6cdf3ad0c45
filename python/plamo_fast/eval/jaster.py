"""``plamo-fast eval jaster``: llm-jp-eval's Jaster datasets, scored as llm-jp-eval scores them.

For each ``--shots`` setting and dataset, the first ``--limit`` samples (llm-jp-eval's default
is 100) get llm-jp-eval's prompt (or, with ``--chat``, the model's chat template), a greedy
answer of at most the dataset's ``output_length`` new tokens, llm-jp-eval's post-processing and
metrics, and llm-jp-eval's category averages. Answers come from the cache when the same model
(fingerprint), backend, prompt and settings produced them before; only the missing ones are
generated, each stored as soon as it arrives, so a killed run resumes where it stopped.

Outputs (``-o OUT``, written at the end, atomically): ``results.json``, ``results.md``,
``chart.png`` (with matplotlib), ``predictions.jsonl`` (one line per item and setting:
prompt, raw answer, processed prediction, gold, item scores).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.digests import content_key
from plamo_fast.errors import PlamoFastError, UsageError
from plamo_fast.eval import jaster_metrics as metrics
from plamo_fast.eval.cache import AnswerCache, model_fingerprint
from plamo_fast.eval.charts import bar_chart
from plamo_fast.eval.completion import complete
from plamo_fast.eval.jaster_data import Dataset, read_datasets
from plamo_fast.eval.jaster_prompts import CHAT_LAYOUT, LAYOUT, build_messages, build_prompt
from plamo_fast.eval.results import CONVENTIONS, jaster_markdown, jaster_summary, write_results

COMMAND = "eval-jaster"


@dataclass(frozen=True)
class Item:
    shots: int
    dataset: Dataset
    index: int
    request: dict  # {"prompt": str} or {"messages": [...]}
    key: str


def parse_shots(text: str) -> list[int]:
    """``0,4`` -> [0, 4] (kept in the order given, without repeats)."""
    shots: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise UsageError(f"--shots takes numbers separated by commas (e.g. 0,4), got {text!r}")
        if int(part) not in shots:
            shots.append(int(part))
    return shots


def build_items(
    datasets: list[Dataset], shots: list[int], limit: int, chat: bool, identity: dict
) -> list[Item]:
    items = []
    for k in shots:
        for ds in datasets:
            for index, sample in enumerate(ds.samples[:limit]):
                few = ds.few_shots[:k]
                if chat:
                    request = {"messages": build_messages(ds.instruction, few, sample["input"])}
                else:
                    request = {"prompt": build_prompt(ds.instruction, few, sample["input"])}
                sampling = {"n": 1, "temperature": 0.0, "max_new_tokens": ds.output_length}
                key = content_key({**identity, "request": request, "sampling": sampling})
                items.append(Item(k, ds, index, request, key))
    return items


def _generate_missing(
    items: list[Item], cache: AnswerCache, load_engine, progress: bool, stop_after: int | None
) -> int:
    """Generates every answer the cache lacks (each stored as it arrives); returns how many."""
    todo: dict[str, Item] = {}
    for item in items:
        if cache.get(item.key) is None and item.key not in todo:
            todo[item.key] = item
    if not todo:
        return 0
    engine = load_engine()
    from plamo_fast.generation.backends import SamplingOptions

    pending = list(todo.values())
    if stop_after is not None:
        pending = pending[:stop_after]
    update, stop = progress_bar("eval jaster", len(pending), transfer=False, show=progress)
    done = 0
    try:
        batch = max(1, engine.batch_size)
        for start in range(0, len(pending), batch):
            chunk = pending[start : start + batch]
            # One request per distinct output length (a batch mixes datasets only at borders).
            for length in sorted({i.dataset.output_length for i in chunk}):
                part = [i for i in chunk if i.dataset.output_length == length]
                if "messages" in part[0].request:
                    options = SamplingOptions(n=1, temperature=0.0, max_new_tokens=length)
                    outs = engine.generate(
                        [i.request["messages"] for i in part], options, keys=list(range(len(part)))
                    )
                    answers = [candidates[0] for candidates in outs]
                else:
                    answers = complete(engine, [i.request["prompt"] for i in part], length)
                for item, answer in zip(part, answers, strict=True):
                    cache.put(item.key, dict(answer))
                done += len(part)
                update(done, engine.progress_note())
    finally:
        stop()
    return done


def _score(items: list[Item], cache: AnswerCache) -> tuple[list[dict], list[dict]]:
    """Per-setting summaries and per-item prediction records."""
    records: list[dict] = []
    runs: list[dict] = []
    for k in dict.fromkeys(i.shots for i in items):
        scores: dict[str, float] = {}
        counts: dict[str, int] = {}
        for ds in dict.fromkeys(i.dataset for i in items if i.shots == k):
            chosen = [i for i in items if i.shots == k and i.dataset is ds]
            preds, golds = [], []
            for item in chosen:
                answer = cache.get(item.key)
                pred = metrics.postprocess(answer["text"])
                gold = metrics.normalize(ds.samples[item.index]["output"])
                preds.append(pred)
                golds.append(gold)
                records.append(
                    {
                        "shots": k,
                        "dataset": ds.name,
                        "index": item.index,
                        "input": ds.samples[item.index]["input"],
                        **item.request,
                        "generated": answer["text"],
                        "finish_reason": answer.get("finish_reason"),
                        "prediction": pred,
                        "gold": gold,
                        "scores": {m: metrics.item_scores(m, pred, gold) for m in ds.metrics},
                        "key": item.key,
                    }
                )
            for metric in ds.metrics:
                try:
                    scores[f"{ds.name}_{metric}"] = metrics.score(metric, preds, golds)
                except ValueError as exc:
                    raise PlamoFastError(f"{ds.path}: cannot score {metric}: {exc}") from None
            counts[ds.name] = len(chosen)
        runs.append({"shots": k, **jaster_summary(scores), "scores": scores, "items": counts})
    return runs, records


def run_jaster(
    data: Path,
    model: str,
    out: Path,
    *,
    shots: list[int],
    limit: int = 100,
    chat: bool = False,
    datasets: list[str] | None = None,
    backend: str = "auto",
    base_url: str | None = None,
    api_key: str | None = None,
    concurrency: int = 8,
    tensor_parallel_size: int = 1,
    timeout: float = 600.0,
    retries: int = 4,
    cache_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Evaluates ``model`` on the Jaster datasets of ``data``, writes ``out``; returns a summary.
    ``stop_after``: generate that many answers and return without writing (a stand-in for a
    killed run, for tests)."""
    from plamo_fast.outputs import atomic_output, check_output

    if limit < 1:
        raise UsageError("--limit must be at least 1")
    if not shots:
        raise UsageError("--shots needs at least one number")
    out = Path(out)
    inputs = [Path(data)] + ([Path(model)] if Path(model).is_dir() else [])
    check_output(out, command=COMMAND, inputs=inputs, overwrite=overwrite)
    sets = read_datasets(Path(data), max(shots), datasets)
    from plamo_fast.generation.backends import check_backend

    # Before the answer cache exists: a missing model or extra leaves nothing behind.
    backend_name, _ = check_backend(backend, model, base_url)
    cache = AnswerCache(
        Path(cache_dir) if cache_dir else out.with_name(out.name + ".cache"), [*inputs, out]
    )
    try:
        fingerprint = model_fingerprint(model, backend_name, base_url, cache.memo)
        identity = {"model": fingerprint, "backend": backend_name}
        items = build_items(sets, shots, limit, chat, identity)

        def load_engine():
            from plamo_fast.generation.backends import load_backend

            return load_backend(
                backend_name,
                model,
                base_url=base_url,
                api_key=api_key,
                tensor_parallel_size=tensor_parallel_size,
                concurrency=concurrency,
                timeout=timeout,
                retries=retries,
            )

        started = time.perf_counter()
        needed = len({i.key for i in items})
        generated = _generate_missing(items, cache, load_engine, progress, stop_after)
        if stop_after is not None and any(cache.get(i.key) is None for i in items):
            return {"finished": False, "generated": generated, "answers": needed}
        runs, records = _score(items, cache)
    finally:
        cache.close()
    results = _results(sets, runs, model, fingerprint, shots, limit, chat, backend_name, base_url)
    results["generation"] = {
        "answers": needed,
        "from_cache": needed - generated,
        "generated": generated,
        "seconds": round(time.perf_counter() - started, 3),
        "cache": str(cache.folder),
    }
    with atomic_output(out, command=COMMAND, inputs=inputs, overwrite=overwrite) as tmp:
        series = {f"{r['shots']}-shot": {**r["categories"], "AVG": r["average"]} for r in runs}
        drawn = bar_chart(tmp / "chart.png", f"Jaster: {model}", series, top=1.0)
        results["chart"] = "chart.png" if drawn else "not drawn (matplotlib is not installed)"
        write_results(tmp, results, jaster_markdown(results))
        with open(tmp / "predictions.jsonl", "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {
        "output": str(out),
        "average": results["average"],
        "categories": results["categories"],
        **results["generation"],
    }


def _results(sets, runs, model, fingerprint, shots, limit, chat, backend, base_url) -> dict:
    import plamo_fast

    primary = runs[0]
    versions = {"plamo_fast": plamo_fast.__version__}
    for package in ("transformers", "torch", "vllm"):
        if importlib.util.find_spec(package) is not None:
            from importlib.metadata import PackageNotFoundError, version

            with contextlib.suppress(PackageNotFoundError):
                versions[package] = version(package)
    return {
        "benchmark": "jaster",
        "model": model,
        "primary": f"{primary['shots']}-shot",
        "average": primary["average"],
        "average_llm_jp_eval": primary["average_llm_jp_eval"],
        "categories": primary["categories"],
        "conventions": CONVENTIONS,
        "runs": runs,
        "settings": {
            "shots": shots,
            "limit": limit,
            "chat": chat,
            "prompt_layout": CHAT_LAYOUT if chat else LAYOUT,
            "decoding": "greedy (temperature 0), at most the dataset's output_length new tokens",
            "postprocess": "text before the first blank line, NFKC, stripped (llm-jp-eval)",
            "backend": backend,
            "base_url": base_url,
        },
        "model_fingerprint": fingerprint,
        "datasets": {
            ds.name: {
                "file": str(ds.path),
                "sha256": ds.sha256,
                "few_shots_from": ds.few_shots_from,
                "metrics": list(ds.metrics),
                "output_length": ds.output_length,
                "samples": len(ds.samples),
                "scored": min(limit, len(ds.samples)),
            }
            for ds in sets
        },
        "versions": {**versions, "llm_jp_eval_reference": metrics.REFERENCE},
    }
