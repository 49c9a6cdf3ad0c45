"""``plamo-fast synth``: training data made by the package itself (``math``: template math)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="synth",
    help="Synthesize training data: template math problems with worked Japanese solutions.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@app.command("math", no_args_is_help=True)
def math(
    n: int = typer.Option(..., "-n", help="Number of problems (train and holdout together)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output JSONL file."),
    seed: int = typer.Option(0, help="Seed of the one RNG: same options and seed, same file."),
    lang: str = typer.Option("ja", help="ja or en: the language of problems and solutions."),
    mix: Optional[str] = typer.Option(
        None,
        help="Weights per family or generator, e.g. arithmetic=3,fractions=2,systems.two=1; "
        "a family's weight is shared by its generators; unnamed ones get 0. Default: all "
        "generators equally (see `plamo-fast synth list`).",
    ),
    difficulty: Optional[str] = typer.Option(
        None, help="easy, medium, hard, or several comma-separated (default: all three)."
    ),
    feature: List[str] = typer.Option(
        [],
        "--feature",
        help="KEY=VALUE: only generators with this feature, with it fixed (e.g. carries=all, "
        "eliminate=y, reduces=no). Repeatable.",
    ),
    holdout: float = typer.Option(
        0.0,
        help="Fraction of problems (by id hash) written to OUT-stem.test.jsonl instead; train "
        "and test never share an id.",
    ),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
) -> None:
    """N distinct template math problems (dedup on the problem's parameters), each with a worked
    solution ending in `答え: \\boxed{ANSWER}` and the exact `answer` field, ready for `pack`
    (messages) and for `sample` / `score --verifier math`."""
    from plamo_fast.synth.run import synth_math

    summary = synth_math(
        output,
        n,
        seed=seed,
        lang=lang,
        mix=mix,
        difficulty=difficulty,
        features=feature,
        holdout=holdout,
        overwrite=overwrite,
    )
    typer.echo(json.dumps(summary, ensure_ascii=False), err=True)
    typer.echo(str(output))


@app.command("list")
def list_generators() -> None:
    """The math generators: name, controllable features and what each makes."""
    from plamo_fast.synth.registry import load_all

    for name, gen in sorted(load_all().items()):
        features = " ".join(f"{k}={'|'.join(v)}" for k, v in gen.features.items())
        typer.echo(
            f"{name:24} v{gen.version}  {gen.summary}" + (f"  [{features}]" if features else "")
        )
