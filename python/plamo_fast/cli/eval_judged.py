"""``plamo-fast eval mt-bench``, ``eval rakuda`` and ``eval compare``: benchmarks judged by an LLM
(registered on the ``eval`` sub-app of :mod:`plamo_fast.cli.eval` by :func:`register`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from plamo_fast.cli.options import (
    API_KEY,
    CONCURRENCY,
    JUDGE_BASE_URL,
    QUIET,
    RETRIES,
    TENSOR_PARALLEL,
    TIMEOUT,
    fleet_option,
    fleet_url,
)

BACKEND_HELP = (
    "vllm, hf (transformers; runs on a CPU) or openai; auto: openai with a base URL, else vllm "
    "when installed with a GPU, else hf."
)

# Options that mt-bench, rakuda and compare declare alike (the others: cli/options.py).
BACKEND = typer.Option("auto", help=BACKEND_HELP)
BASE_URL = fleet_option("Server(s) of --model (openai backend).")
JUDGE_API_KEY = typer.Option(None, envvar="JUDGE_API_KEY", help="Key for --judge-base-url.")
CACHE = typer.Option(
    None, help="Answer and judgement cache folder (default: OUTPUT.cache beside the output)."
)
MAX_NEW_TOKENS = typer.Option(None, help="Replaces the preset's limit.")


def _done(result: dict, output: Path) -> None:
    typer.echo(json.dumps(result, ensure_ascii=False, default=str), err=True)
    typer.echo(str(output))


def mt_bench(
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Folder for results.json/.md/.png, model_answer/, model_judgment/.",
    ),
    questions: Optional[Path] = typer.Option(
        None, help="FastChat question.jsonl (MT-Bench or Japanese MT-Bench)."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", help="Model to answer the questions: folder (hf, vllm) or served name."
    ),
    answers: Optional[Path] = typer.Option(
        None, help="Judge these FastChat model_answer JSONL answers instead of answering."
    ),
    judgments: Optional[Path] = typer.Option(
        None, help="Only aggregate this FastChat judgement file (no model, no judge)."
    ),
    judge: Optional[str] = typer.Option(None, help="Judge model (name served, or folder)."),
    judge_prompts: Optional[Path] = typer.Option(
        None, help="FastChat judge_prompts.jsonl (judge_ja_prompts.jsonl for Japanese)."
    ),
    references: Optional[Path] = typer.Option(
        None, help="Reference answers (FastChat model_answer format) for math/reasoning/coding."
    ),
    turns: int = typer.Option(2, help="Turns answered and judged (1: comparable with the fork)."),
    preset: str = typer.Option(
        "fastchat",
        help="Sampling: fastchat (1024 new tokens) or ja-fork (512, top-p 0.9, "
        "repetition penalty 1.1); temperatures per category as FastChat.",
    ),
    max_new_tokens: Optional[int] = MAX_NEW_TOKENS,
    model_id: Optional[str] = typer.Option(None, help="Model name in the answer/judgement files."),
    backend: str = BACKEND,
    base_url: Optional[List[str]] = BASE_URL,
    api_key: Optional[str] = API_KEY,
    judge_backend: str = BACKEND,
    judge_base_url: Optional[List[str]] = JUDGE_BASE_URL,
    judge_api_key: Optional[str] = JUDGE_API_KEY,
    concurrency: int = CONCURRENCY,
    tensor_parallel_size: int = TENSOR_PARALLEL,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    judge_retries: int = typer.Option(2, help="Re-asks of a judgement without a rating."),
    cache: Optional[Path] = CACHE,
    overwrite: bool = typer.Option(
        False, help="Replace an earlier eval-mt-bench output folder (never anything else)."
    ),
    quiet: bool = QUIET,
) -> None:
    """MT-Bench / Japanese MT-Bench: answer two turns, judge each turn with FastChat's judge
    prompts (the last [[N]] is the rating; unparseable judgements re-asked, then counted as
    failed), and tabulate as FastChat's show_result plus a bootstrap interval."""
    from plamo_fast.errors import UsageError
    from plamo_fast.eval import mt_bench_run as run

    if judgments is not None:
        if model or answers or judge:
            raise UsageError("--judgments only aggregates: no --model, --answers or --judge")
        _done(
            run.aggregate_judgments(judgments, output, questions=questions, overwrite=overwrite),
            output,
        )
        return
    missing = [n for n, v in (("--questions", questions), ("--judge", judge),
                              ("--judge-prompts", judge_prompts)) if v is None]  # fmt: skip
    if missing:
        raise UsageError(f"eval mt-bench needs {', '.join(missing)} (or --judgments FILE)")
    common = {"concurrency": concurrency, "timeout": timeout, "retries": retries}
    result = run.run_mt_bench(
        questions,
        output,
        judge=run.Endpoint(
            judge, judge_backend, fleet_url(judge_base_url), judge_api_key, **common
        ),
        judge_prompts=judge_prompts,
        model=run.Endpoint(
            model,
            backend,
            fleet_url(base_url),
            api_key,
            tensor_parallel_size=tensor_parallel_size,
            **common,
        )
        if model
        else None,
        answers=answers,
        references=references,
        model_id=model_id,
        turns=turns,
        preset=preset,
        max_new_tokens=max_new_tokens,
        judge_retries=judge_retries,
        cache_dir=cache,
        overwrite=overwrite,
        progress=not quiet,
    )
    _done(result, output)


def rakuda(
    questions: Path = typer.Option(..., help="Rakuda questions (rakuda_v2/questions.jsonl)."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Folder for results.json/.md/.png and the judgements."
    ),
    judge: str = typer.Option(..., help="Judge model (name served, or folder)."),
    model: Optional[str] = typer.Option(
        None, "--model", help="Model to answer the questions: folder (hf, vllm) or served name."
    ),
    answers: Optional[List[Path]] = typer.Option(
        None, help="FastChat model_answer JSONL to judge (repeat for a ranking of several)."
    ),
    baseline: Optional[Path] = typer.Option(
        None, help="Answers to compare against, pairwise in both orders (needs --pair-prompts)."
    ),
    judge_prompts: Optional[Path] = typer.Option(
        None, help="Single-answer judge prompts (FastChat format) for absolute 1-10 grades."
    ),
    pair_prompts: Optional[Path] = typer.Option(
        None, help="Rakuda's pairwise judge prompt (judge_prompts.jsonl)."
    ),
    bootstrap_rounds: int = typer.Option(500, help="Bootstrap rounds of the Bradley-Terry fit."),
    preset: str = typer.Option("fastchat", help="Sampling preset, as for mt-bench."),
    max_new_tokens: Optional[int] = MAX_NEW_TOKENS,
    model_id: Optional[str] = typer.Option(None, help="Name of --model in the results."),
    backend: str = BACKEND,
    base_url: Optional[List[str]] = BASE_URL,
    api_key: Optional[str] = API_KEY,
    judge_backend: str = BACKEND,
    judge_base_url: Optional[List[str]] = JUDGE_BASE_URL,
    judge_api_key: Optional[str] = JUDGE_API_KEY,
    concurrency: int = CONCURRENCY,
    tensor_parallel_size: int = TENSOR_PARALLEL,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    judge_retries: int = typer.Option(2, help="Re-asks of a judgement that cannot be parsed."),
    cache: Optional[Path] = CACHE,
    overwrite: bool = typer.Option(
        False, help="Replace an earlier eval-rakuda output folder (never anything else)."
    ),
    quiet: bool = QUIET,
) -> None:
    """Rakuda: absolute 1-10 grades per category, and pairwise judging in both orders against
    --baseline (wins/losses/ties) or between several answer files (Bradley-Terry rating with a
    first-position term and a bootstrap interval)."""
    from plamo_fast.eval import mt_bench_run as run
    from plamo_fast.eval.rakuda import run_rakuda

    common = {"concurrency": concurrency, "timeout": timeout, "retries": retries}
    result = run_rakuda(
        questions,
        output,
        judge=run.Endpoint(
            judge, judge_backend, fleet_url(judge_base_url), judge_api_key, **common
        ),
        model=run.Endpoint(
            model,
            backend,
            fleet_url(base_url),
            api_key,
            tensor_parallel_size=tensor_parallel_size,
            **common,
        )
        if model
        else None,
        model_id=model_id,
        answers=answers or [],
        baseline=baseline,
        judge_prompts=judge_prompts,
        pair_prompts=pair_prompts,
        preset=preset,
        max_new_tokens=max_new_tokens,
        judge_retries=judge_retries,
        bootstrap_rounds=bootstrap_rounds,
        cache_dir=cache,
        overwrite=overwrite,
        progress=not quiet,
    )
    _done(result, output)


def compare(
    folders: List[Path] = typer.Argument(..., help="Output folders of plamo-fast eval."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Folder for compare.md, compare.json and a PNG per benchmark."
    ),
    judge: Optional[str] = typer.Option(
        None, help="Judge the first two MT-Bench / Rakuda runs against each other."
    ),
    pair_prompts: Optional[Path] = typer.Option(
        None, help="Pairwise judge prompts (FastChat judge_prompts.jsonl, Rakuda's)."
    ),
    judge_backend: str = BACKEND,
    judge_base_url: Optional[List[str]] = JUDGE_BASE_URL,
    judge_api_key: Optional[str] = JUDGE_API_KEY,
    concurrency: int = typer.Option(8, help="Judge requests in flight (openai backend)."),
    judge_retries: int = typer.Option(2, help="Re-asks of a judgement that cannot be parsed."),
    cache: Optional[Path] = typer.Option(None, help="Judgement cache folder."),
    overwrite: bool = typer.Option(
        False, help="Replace an earlier eval-compare output folder (never anything else)."
    ),
) -> None:
    """Results side by side (Markdown tables as the blog lays them out, a bar chart per
    benchmark); with --judge, two models' answers judged pairwise in both orders."""
    from plamo_fast.eval import mt_bench_run as run
    from plamo_fast.eval.compare import compare as run_compare

    endpoint = None
    if judge:
        endpoint = run.Endpoint(
            judge,
            judge_backend,
            fleet_url(judge_base_url),
            judge_api_key,
            concurrency=concurrency,
        )
    result = run_compare(
        folders,
        output,
        judge=endpoint,
        pair_prompts=pair_prompts,
        judge_retries=judge_retries,
        cache_dir=cache,
        overwrite=overwrite,
    )
    _done(result, output)


def register(app: typer.Typer) -> None:
    app.command("mt-bench", no_args_is_help=True)(mt_bench)
    app.command("rakuda", no_args_is_help=True)(rakuda)
    app.command("compare", no_args_is_help=True)(compare)
