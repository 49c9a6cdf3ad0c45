"""``plamo-fast eval``: benchmarks (``jaster``, ``jaster-convert``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from plamo_fast.cli.options import (
    API_KEY,
    BASE_URL,
    CONCURRENCY,
    RETRIES,
    TENSOR_PARALLEL,
    TIMEOUT,
    fleet_url,
)

app = typer.Typer(
    name="eval",
    help="Benchmarks, reproducible and resumable: Jaster (llm-jp-eval's datasets, prompts and "
    "metrics), Japanese MT-Bench and MT-Bench and Rakuda with LLM judges, and side-by-side "
    "comparisons.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def _datasets(text: Optional[str]) -> Optional[list]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


@app.command("jaster", no_args_is_help=True)
def jaster(
    data: Path = typer.Option(
        ..., "--data", help="A Jaster dataset file or a folder of them (see jaster-convert)."
    ),
    model: str = typer.Option(..., "--model", help="Model folder (hf, vllm) or served name."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Folder for results.json, results.md, predictions.jsonl."
    ),
    shots: str = typer.Option("0,4", help="Few-shot settings, e.g. 0,4."),
    limit: int = typer.Option(100, help="Items per dataset (llm-jp-eval scores the first 100)."),
    datasets: Optional[str] = typer.Option(None, help="Only these datasets (comma-separated)."),
    chat: bool = typer.Option(
        False, help="Use the model's chat template instead of llm-jp-eval's plain-text prompt."
    ),
    backend: str = typer.Option(
        "auto",
        help="vllm, hf (transformers; runs on a CPU) or openai (plain prompts through "
        "/v1/completions, --chat through /v1/chat/completions); auto: vllm "
        "when installed with a GPU, else hf.",
    ),
    base_url: Optional[List[str]] = BASE_URL,
    api_key: Optional[str] = API_KEY,
    concurrency: int = CONCURRENCY,
    tensor_parallel_size: int = TENSOR_PARALLEL,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    cache: Optional[Path] = typer.Option(
        None, help="Answer cache folder (default: OUTPUT.cache beside the output)."
    ),
    overwrite: bool = typer.Option(
        False, help="Replace an earlier eval-jaster output folder (never anything else)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Jaster as llm-jp-eval scores it (prompts, post-processing, metrics, categories).
    Answers are cached by a hash of model, prompt and settings: a rerun generates only what
    is missing."""
    from plamo_fast.eval.jaster import parse_shots, run_jaster

    result = run_jaster(
        data,
        model,
        output,
        shots=parse_shots(shots),
        limit=limit,
        chat=chat,
        datasets=_datasets(datasets),
        backend=backend,
        base_url=fleet_url(base_url),
        api_key=api_key,
        concurrency=concurrency,
        tensor_parallel_size=tensor_parallel_size,
        timeout=timeout,
        retries=retries,
        cache_dir=cache,
        overwrite=overwrite,
        progress=not quiet,
    )
    typer.echo(json.dumps(result, ensure_ascii=False), err=True)
    typer.echo(str(output))


@app.command("jaster-convert", no_args_is_help=True)
def jaster_convert(
    src: Path = typer.Argument(
        ..., help="Folder with one folder per dataset (jcommonsenseqa, jemhopqa, jnli, ...)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for NAME.json files."),
    few_shots: int = typer.Option(
        20, help="Few-shot examples stored per dataset (from llm-jp-eval's train split)."
    ),
    datasets: Optional[str] = typer.Option(None, help="Only these datasets (comma-separated)."),
    overwrite: bool = typer.Option(
        False, help="Replace an earlier jaster-convert output folder (never anything else)."
    ),
) -> None:
    """Build llm-jp-eval's dataset files from the raw upstream files."""
    from plamo_fast.eval.jaster_convert import convert

    result = convert(
        src, output, few_shots=few_shots, datasets=_datasets(datasets), overwrite=overwrite
    )
    typer.echo(json.dumps(result, ensure_ascii=False), err=True)
    typer.echo(str(output))


# Benchmarks judged by an LLM (mt-bench, rakuda, compare) live in plamo_fast.cli.eval_judged.
from plamo_fast.cli import eval_judged  # noqa: E402

eval_judged.register(app)
