"""``plamo-fast translate``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from plamo_fast.cli.options import (
    API_KEY,
    BACKEND,
    BASE_URL,
    CONCURRENCY,
    OVERWRITE,
    QUIET,
    RETRIES,
    TENSOR_PARALLEL,
    TIMEOUT,
    fleet_url,
)


def translate(
    input: Path = typer.Argument(
        ...,
        help="JSONL, JSON array, Parquet or a saved dataset: messages, prompt/completion, "
        "prompt/chosen/rejected or instruction/input/output (Alpaca/Dolly) records.",
    ),
    model: str = typer.Option(
        ...,
        "--model",
        help="hf, vllm: a model folder, or a hub name already downloaded (never downloaded "
        "here). openai: the served name.",
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="JSONL of translated records; OUT-stem.rejected.jsonl, .report.json and "
        ".cache.jsonl beside it.",
    ),
    to: str = typer.Option("ja", "--to", help="Target language: ja or en."),
    source_lang: Optional[str] = typer.Option(
        None,
        "--from",
        help="Source language (ja or en), recorded as translated_from; the back-translation "
        "goes into it (default: en for --to ja, ja for --to en).",
    ),
    backend: str = BACKEND,
    base_url: Optional[List[str]] = BASE_URL,
    api_key: Optional[str] = API_KEY,
    temperature: float = typer.Option(0.0),
    top_p: float = typer.Option(1.0),
    max_new_tokens: int = typer.Option(1024, help="Per chunk; an answer cut here is rejected."),
    seed: int = typer.Option(0),
    max_chunk_chars: int = typer.Option(
        2000, help="Longer texts are split at paragraphs, lines, then sentences."
    ),
    prompt: Optional[Path] = typer.Option(
        None, help="Template file with {text} (and optionally {source}, {target})."
    ),
    skip_system: bool = typer.Option(False, help="Leave system prompts untranslated."),
    min_script_share: float = typer.Option(
        0.5, help="Least share of the target script among the letters of a translation."
    ),
    min_length_ratio: float = typer.Option(0.2, help="Least translation/source length."),
    max_length_ratio: float = typer.Option(5.0, help="Most translation/source length."),
    back_translate: bool = typer.Option(
        False, help="Translate back and reject below --min-back-similarity (char ROUGE-L)."
    ),
    min_back_similarity: float = typer.Option(0.5),
    cache: Optional[Path] = typer.Option(
        None, help="Translation cache (JSONL; default OUT-stem.cache.jsonl beside the output)."
    ),
    concurrency: int = CONCURRENCY,
    tensor_parallel_size: int = TENSOR_PARALLEL,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    skip_bad: bool = typer.Option(
        False, help="Put malformed records in the rejected file (counted) instead of failing."
    ),
    allow_empty: bool = typer.Option(
        False, help="Write the output even when every record is rejected (else an error)."
    ),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Translate the text fields of training records, keeping structure, code, URLs, LaTeX and
    placeholders; filtered, cached, resumable (a killed run continues where it stopped)."""
    from plamo_fast.translate.filters import FilterConfig
    from plamo_fast.translate.run import translate as run

    config = FilterConfig(
        min_script_share=min_script_share,
        min_length_ratio=min_length_ratio,
        max_length_ratio=max_length_ratio,
        back_translate=back_translate,
        min_back_similarity=min_back_similarity,
    )
    result = run(
        input,
        model,
        output,
        to=to,
        source_lang=source_lang,
        backend=backend,
        base_url=fleet_url(base_url),
        api_key=api_key,
        concurrency=concurrency,
        tensor_parallel_size=tensor_parallel_size,
        timeout=timeout,
        retries=retries,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        max_chunk_chars=max_chunk_chars,
        prompt_path=prompt,
        system=not skip_system,
        filter_config=config,
        cache_path=cache,
        skip_bad=skip_bad,
        allow_empty=allow_empty,
        overwrite=overwrite,
        progress=not quiet,
    )
    typer.echo(result["output"])
