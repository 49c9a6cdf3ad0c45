"""``plamo-fast pack``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def pack(
    inputs: List[str] = typer.Argument(
        ...,
        help="JSONL or Parquet files; FILE:N takes N examples, FILE:2x twice its examples "
        "(a mixture).",
        show_default=False,
    ),
    tokenizer: Optional[Path] = typer.Option(
        None,
        "--tokenizer",
        help="Hugging Face tokenizer folder (not needed when every record is pre-tokenized).",
    ),
    max_length: int = typer.Option(..., "--max-length", "-L", help="Tokens per packed row."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    kind: str = typer.Option("sft", help="sft or dpo."),
    chat_template: Optional[Path] = typer.Option(
        None, help="Jinja file overriding the tokenizer's chat template."
    ),
    truncate: str = typer.Option(
        "drop",
        help="Over-long samples: drop, or left (drop the "
        "oldest turns, keep the final answer whole).",
    ),
    last_turn_only: bool = typer.Option(False, help="Train only the final assistant turn."),
    seed: int = typer.Option(0, help="Seed of the packing order."),
    skip_bad: bool = typer.Option(
        False,
        help="Count bad records (malformed, refused by the chat template, answers it rewrites) "
        "in the report instead of stopping.",
    ),
    overwrite: bool = typer.Option(
        False, help="Replace an earlier output of pack (never another folder)."
    ),
    pad: bool = typer.Option(
        False,
        help="Pad every row to --max-length (pad_token, else "
        "eos_token; labels -100; a trailing segment with doc id -1).",
    ),
    pad_id: Optional[int] = typer.Option(
        None, help="Token id --pad pads with (instead of the tokenizer's pad or eos token)."
    ),
    trust_remote_code: bool = typer.Option(
        False, help="Allow a Python-only tokenizer's own code (e.g. PLaMo's) to run."
    ),
    allow_empty: bool = typer.Option(
        False, help="Write the output even when no example is kept (else an error)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render chat templates, tokenize, label responses only, and pack rows (best-fit-decreasing
    over the whole dataset) into Parquet with a pack_report.json."""
    from plamo_fast.data.pack import pack as run_pack

    report = run_pack(
        inputs,
        tokenizer,
        output,
        max_length=max_length,
        kind=kind,
        chat_template=chat_template,
        truncate=truncate,
        last_turn_only=last_turn_only,
        seed=seed,
        skip_bad=skip_bad,
        overwrite=overwrite,
        pad=pad,
        pad_id=pad_id,
        trust_remote_code=trust_remote_code,
        progress=not quiet,
        allow_empty=allow_empty,
    )
    typer.echo(
        json.dumps(
            {
                k: report[k]
                for k in ("examples_read", "examples_packed", "dropped", "rows", "fill_ratio")
            }
        ),
        err=True,
    )
    typer.echo(str(output))
