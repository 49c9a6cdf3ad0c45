"""``plamo-fast demo``: the whole recipe (``recipes/tiny-cpu.yaml``) on a tiny model built on
the spot, offline, on a CPU; a second run in the same place finds every step done."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer


def demo(
    output: Path = typer.Option(
        Path("plamo-fast-demo"), "--output", "-o", "--dir", help="The run folder."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    threads: int = typer.Option(
        1,
        min=1,
        help="CPU threads for torch. The tiny model runs 3-5x faster on one thread than on two "
        "(threads wait on each other at this size).",
    ),
) -> None:
    """Run the tiny-cpu recipe: generated math data and dedup, a tiny model, SFT (math, then
    general), two rounds of on-policy DPO scored by the math verifier (plus SPIN pairs), a
    second DPO candidate, their SLERP merge, and held-out math accuracy of every model.
    Without the [train] extra only the data steps run, and the command says what to install."""
    from plamo_fast.cli.recipe import run_recipe
    from plamo_fast.recipe import find_recipe
    from plamo_fast.recipe.report import eval_table
    from plamo_fast.recipe.spec import load_recipe

    recipe = load_recipe(find_recipe("tiny-cpu"), output)
    _use_threads(threads)
    code = run_recipe(recipe, quiet=quiet)
    table = eval_table(recipe)
    if table:
        typer.echo("\nheld-out template math (greedy, checked by the math verifier):")
        typer.echo(table)
    typer.echo(f"\nthe report: {recipe.run_dir / 'report.md'}")
    if code == 3:
        return  # the data steps ran; run_recipe said what to install for the rest
    raise typer.Exit(code)


def _use_threads(threads: int) -> None:
    """Every step of the demo runs in this process: torch (imported later, or already) uses
    ``threads`` threads."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
