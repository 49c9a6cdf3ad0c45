"""``plamo-fast sample``, ``plamo-fast score`` and ``plamo-fast pairs``."""

from __future__ import annotations

import json
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


def _done(result: dict, output: Path) -> None:
    typer.echo(json.dumps(result, ensure_ascii=False), err=True)
    typer.echo(str(output))


def sample(
    prompts: Path = typer.Argument(
        ..., help="JSONL/Parquet with `prompt` (text or messages) or `messages`."
    ),
    model: str = typer.Option(
        ...,
        "--model",
        help="hf, vllm: a model folder, or a hub name already downloaded (hf download ORG/NAME; "
        "never downloaded here). openai: the served name.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL of candidates."),
    n: int = typer.Option(8, "-n", help="Candidates per prompt."),
    backend: str = BACKEND,
    temperature: float = typer.Option(1.0),
    top_p: float = typer.Option(1.0),
    max_new_tokens: int = typer.Option(512),
    seed: int = typer.Option(0, help="Per-prompt seeds derive from it (reproducible per backend)."),
    base_url: Optional[List[str]] = BASE_URL,
    api_key: Optional[str] = API_KEY,
    concurrency: int = CONCURRENCY,
    tensor_parallel_size: int = TENSOR_PARALLEL,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    shard: Optional[str] = typer.Option(
        None, help="K/N: take prompts with index % N == K (one process per GPU or server)."
    ),
    skip_bad: bool = typer.Option(False, help="Skip malformed prompt records (counted)."),
    allow_empty: bool = typer.Option(
        False, help="Write the output even when there is no prompt to sample (else an error)."
    ),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Sample N answers per prompt; a killed run continues where it stopped (OUT.partial)."""
    from plamo_fast.generation.backends import SamplingOptions
    from plamo_fast.sample.sample import sample as run

    options = SamplingOptions(
        n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed
    )
    result = run(
        prompts,
        model,
        output,
        backend=backend,
        options=options,
        base_url=fleet_url(base_url),
        api_key=api_key,
        concurrency=concurrency,
        tensor_parallel_size=tensor_parallel_size,
        timeout=timeout,
        retries=retries,
        shard=shard,
        skip_bad=skip_bad,
        overwrite=overwrite,
        progress=not quiet,
        allow_empty=allow_empty,
    )
    _done(result, output)


def score(
    candidates: List[Path] = typer.Argument(
        ..., help="Output of sample (two files with --pairwise: A then B)."
    ),
    output: Path = typer.Option(..., "--output", "-o"),
    judge: Optional[str] = typer.Option(
        None, help="Judge model through --backend (a folder or downloaded hub name, as --model)."
    ),
    reward_model: Optional[str] = typer.Option(
        None, help="Sequence-classification reward model (a folder or downloaded hub name)."
    ),
    verifier: Optional[str] = typer.Option(
        None, help="math: check the final answer against the record's reference answer."
    ),
    pairwise: bool = typer.Option(
        False, help="Compare two models' answers with --judge, in both orders."
    ),
    judge_template: Optional[str] = typer.Option(
        None, help="en, ja, or a YAML file (default: ja for Japanese questions, else en)."
    ),
    retries: int = typer.Option(2, help="Re-asks of the judge when its rating cannot be parsed."),
    concurrency: int = typer.Option(
        8, help="Judge requests in flight per server (openai backend)."
    ),
    backend: str = BACKEND,
    base_url: Optional[List[str]] = BASE_URL,
    api_key: Optional[str] = API_KEY,
    allow_empty: bool = typer.Option(
        False, help="Write the output even when no candidate can be scored (else an error)."
    ),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Score each candidate (judge rating, reward, or 1/0 from the math verifier); a rating that
    cannot be parsed is recorded as missing, never as 0."""
    from plamo_fast.errors import UsageError
    from plamo_fast.sample import score as scoring

    if pairwise:
        if len(candidates) != 2 or not judge:
            raise UsageError("--pairwise takes two candidate files and --judge")
        result = scoring.pairwise(
            candidates[0],
            candidates[1],
            output,
            judge=judge,
            backend=backend,
            base_url=fleet_url(base_url),
            api_key=api_key,
            judge_template=judge_template,
            retries=retries,
            concurrency=concurrency,
            overwrite=overwrite,
            progress=not quiet,
            allow_empty=allow_empty,
        )
    else:
        if len(candidates) != 1:
            raise UsageError("score takes one candidates file (two only with --pairwise)")
        result = scoring.score(
            candidates[0],
            output,
            judge=judge,
            reward_model=reward_model,
            verifier=verifier,
            backend=backend,
            base_url=fleet_url(base_url),
            api_key=api_key,
            judge_template=judge_template,
            retries=retries,
            concurrency=concurrency,
            overwrite=overwrite,
            progress=not quiet,
            allow_empty=allow_empty,
        )
    _done(result, output)


def pairs(
    scored: Path = typer.Argument(..., help="Output of score (or of sample, with --spin)."),
    output: Path = typer.Option(..., "--output", "-o", help="Preference pairs (JSONL)."),
    min_margin: float = typer.Option(
        0.0, help="Smallest best-worst score gap, in the scorer's units."
    ),
    drop_truncated: bool = typer.Option(False, help="Ignore candidates cut at max_new_tokens."),
    spin: Optional[Path] = typer.Option(
        None, help="SFT data: SPIN pairs (its answer chosen, the model's candidate rejected)."
    ),
    report: Optional[Path] = typer.Option(None, help="JSON report file."),
    allow_empty: bool = typer.Option(
        False, help="Write the output even when no pair is made (else an error)."
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Best candidate -> chosen, worst -> rejected (ties: lowest index), in TRL's conversational
    preference format that `plamo-fast pack --kind dpo` reads; or SPIN pairs."""
    from plamo_fast.sample.pairs import make_pairs, spin_pairs

    if spin is not None:
        result = spin_pairs(
            spin, scored, output, report_path=report, overwrite=overwrite, allow_empty=allow_empty
        )
    else:
        result = make_pairs(
            scored,
            output,
            min_margin=min_margin,
            drop_truncated=drop_truncated,
            report_path=report,
            overwrite=overwrite,
            allow_empty=allow_empty,
        )
    _done(result, output)
