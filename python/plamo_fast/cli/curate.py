"""``plamo-fast decontaminate`` and ``plamo-fast dedup``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

_FIELDS_HELP = (
    "Extra record fields to check, comma-separated (besides user turns of messages/"
    "conversations, prompt, instruction, input, question, query)."
)


def _guard(registry, licenses, commercial_only, proprietary_models, keep_proprietary):
    from plamo_fast.data.provenance import ProvenanceGuard

    return ProvenanceGuard.from_options(
        registry, commercial_only, proprietary_models, keep_proprietary, tuple(licenses)
    )


def _fields(fields: Optional[str]) -> tuple:
    return tuple(f.strip() for f in fields.split(",") if f.strip()) if fields else ()


def _summary(result: dict, output: Path) -> None:
    typer.echo(json.dumps(result, ensure_ascii=False), err=True)
    typer.echo(str(output))


REGISTRY = typer.Option(
    None, "--sources", help="License registry (YAML) for inputs and `source` tags."
)
LICENSES = typer.Option(
    [],
    "--license",
    help="GLOB=LICENSE: the license of input files whose name matches (e.g. "
    "'oasst2*=apache-2.0'). Repeatable.",
)
COMMERCIAL_ONLY = typer.Option(
    False, help="Drop records whose license is not known to allow commercial use."
)
PROPRIETARY_MODELS = typer.Option(
    None,
    help="File of regexes (one per line) naming proprietary models; replaces the built-in list.",
)
KEEP_PROPRIETARY = typer.Option(
    False, help="Keep records whose model/generator field names a proprietary model."
)
SKIP_BAD = typer.Option(False, help="Count malformed records in the summary instead of stopping.")
OVERWRITE = typer.Option(False, help="Replace existing outputs.")
ALLOW_EMPTY = typer.Option(
    False, help="Write the output even when no record is kept (else an error that says why)."
)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
OUTPUT = typer.Option(
    ...,
    "--output",
    "-o",
    help="Output file (one input, same suffix) or folder (see --output-format).",
)
OUTPUT_FORMAT = typer.Option(
    None,
    "--output-format",
    help="hf: the kept records as a datasets save_to_disk folder (-o names it; several "
    "inputs: a folder of them, one per input, named after it). Default: each input's format.",
)


def decontaminate(
    inputs: List[Path] = typer.Argument(..., help="JSONL or Parquet training files."),
    bench: List[str] = typer.Option(
        ...,
        "--bench",
        help="Benchmark file or folder (MT-Bench/Japanese MT-Bench/ja-vicuna-qa question.jsonl, "
        "Rakuda, llm-jp-eval JSON, JGLUE/JSQuAD/JEMHopQA/NIILC sources); NAME=PATH names it. "
        "Repeatable.",
    ),
    output: Path = OUTPUT,
    report: Optional[Path] = typer.Option(None, help="JSONL report: one line per removed record."),
    fields: Optional[str] = typer.Option(None, help=_FIELDS_HELP),
    bench_field: Optional[str] = typer.Option(
        None, help="Question field of benchmark JSONL files in other formats."
    ),
    edit_rate: float = typer.Option(
        0.2, help="Near match: edits allowed per normalized character beyond the first 5."
    ),
    min_item_len: int = typer.Option(
        10,
        help="Benchmark texts shorter than this (normalized characters) are too generic "
        "to match and are ignored (counted in the summary).",
    ),
    min_contained_len: int = typer.Option(
        10, help="Benchmark texts shorter than this match only a whole field, exactly."
    ),
    min_near_len: int = typer.Option(
        30,
        help="Benchmark texts shorter than this match only without edits (exact or "
        "contained): one changed word makes another short question.",
    ),
    sources: Optional[Path] = REGISTRY,
    licenses: List[str] = LICENSES,
    commercial_only: bool = COMMERCIAL_ONLY,
    proprietary_models: Optional[Path] = PROPRIETARY_MODELS,
    keep_proprietary: bool = KEEP_PROPRIETARY,
    skip_bad: bool = SKIP_BAD,
    allow_empty: bool = ALLOW_EMPTY,
    overwrite: bool = OVERWRITE,
    output_format: Optional[str] = OUTPUT_FORMAT,
    quiet: bool = QUIET,
) -> None:
    """Remove training records that contain benchmark questions (exact, case/width/space
    variants, embedded, or lightly edited), and records failing the provenance guard."""
    from plamo_fast.data.benchmarks import skipped_line
    from plamo_fast.data.decontaminate import LeakParams
    from plamo_fast.data.decontaminate import decontaminate as run

    result = run(
        inputs,
        bench,
        output,
        report_path=report,
        fields=_fields(fields),
        bench_field=bench_field,
        skip_bad=skip_bad,
        overwrite=overwrite,
        guard=_guard(sources, licenses, commercial_only, proprietary_models, keep_proprietary),
        params=LeakParams(
            min_item_len=min_item_len,
            min_contained_len=min_contained_len,
            min_near_len=min_near_len,
            edit_rate=edit_rate,
        ),
        progress=not quiet,
        allow_empty=allow_empty,
        output_format=output_format,
    )
    skipped = result.pop("benchmark_files_skipped")
    result["benchmark_files_skipped"] = len(skipped)
    if skipped:  # one line for them all, never one per file
        typer.echo(skipped_line(result["benchmark_files"], skipped), err=True)
    _summary(result, output)


def dedup(
    inputs: List[Path] = typer.Argument(
        ..., help="JSONL or Parquet files (deduplicated together)."
    ),
    output: Path = OUTPUT,
    near: bool = typer.Option(False, help="Also remove near duplicates (MinHash LSH + Jaccard)."),
    threshold: float = typer.Option(0.8, help="Near duplicates: Jaccard of character n-grams."),
    key: str = typer.Option(
        "prompt", help="What is compared: prompt (user-side text), record, or a field name."
    ),
    keep: str = typer.Option("first", help="Kept per cluster: first, longest, or max."),
    keep_column: Optional[str] = typer.Option(None, help="Numeric column for --keep max."),
    exact_only: List[str] = typer.Option(
        [],
        help="Glob on input file names whose records take part in exact dedup only (e.g. "
        "template-generated data). Repeatable.",
    ),
    ngram: int = typer.Option(5, help="Characters per n-gram (near dedup)."),
    num_perm: int = typer.Option(
        128, help="Most MinHash permutations (the LSH uses bands x rows of them)."
    ),
    seed: int = typer.Option(0, help="MinHash seed."),
    fields: Optional[str] = typer.Option(None, help=_FIELDS_HELP),
    report: Optional[Path] = typer.Option(None, help="JSONL report: one line per cluster."),
    sources: Optional[Path] = REGISTRY,
    licenses: List[str] = LICENSES,
    commercial_only: bool = COMMERCIAL_ONLY,
    proprietary_models: Optional[Path] = PROPRIETARY_MODELS,
    keep_proprietary: bool = KEEP_PROPRIETARY,
    skip_bad: bool = SKIP_BAD,
    allow_empty: bool = ALLOW_EMPTY,
    overwrite: bool = OVERWRITE,
    output_format: Optional[str] = OUTPUT_FORMAT,
    quiet: bool = QUIET,
) -> None:
    """Remove exact duplicates (normalized text) and, with --near, near duplicates, within and
    across the inputs; larger-than-memory inputs are streamed twice. A question + context
    record (instruction + input, question + context, or a quoted passage) is a near
    duplicate only of another with the same question (question Jaccard, or a few edits with the
    same answer)."""
    from plamo_fast.data.dedup import dedup as run

    result = run(
        inputs,
        output,
        near=near,
        threshold=threshold,
        key=key,
        keep=keep,
        keep_column=keep_column,
        exact_only=tuple(exact_only),
        ngram=ngram,
        num_perm=num_perm,
        seed=seed,
        fields=_fields(fields),
        report_path=report,
        skip_bad=skip_bad,
        overwrite=overwrite,
        guard=_guard(sources, licenses, commercial_only, proprietary_models, keep_proprietary),
        progress=not quiet,
        allow_empty=allow_empty,
        output_format=output_format,
    )
    _summary(result, output)
