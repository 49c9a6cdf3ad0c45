"""``plamo-fast demo``: the whole recipe (``recipes/tiny-cpu.yaml``) on a tiny model built on
the spot, offline, on a CPU; a second run in the same place finds every step done."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from plamo_fast.cli.options import JUDGE_BASE_URL, fleet_url


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
    judge: Optional[str] = typer.Option(
        None,
        help="A judge for the small judged set: a local model folder (run with the hf or vllm "
        "backend), or with --judge-base-url the name a server serves. Without one (none ships: "
        "a tiny model cannot judge) the judged steps are left out. The run folder remembers it.",
    ),
    judge_base_url: Optional[List[str]] = JUDGE_BASE_URL,
) -> None:
    """Run the tiny-cpu recipe: generated math data and dedup, a tiny model, SFT (math, then
    general), two rounds of on-policy DPO scored by the math verifier (plus SPIN pairs), a
    second DPO candidate, their SLERP merge, and held-out math accuracy of every model (with
    --judge, also graded by that judge). Without the [train] extra only the data steps run, and
    the command says what to install."""
    from plamo_fast.cli.recipe import run_recipe
    from plamo_fast.recipe import find_recipe
    from plamo_fast.recipe.report import eval_table
    from plamo_fast.recipe.spec import load_recipe, remember_settings

    settings = {"judge": judge} if judge is not None else {}
    if judge_base_url:
        settings["judge_base_url"] = fleet_url(judge_base_url)
    recipe = load_recipe(find_recipe("tiny-cpu"), output, settings)
    remember_settings(recipe, settings)
    _use_threads(threads)
    code = run_recipe(recipe, quiet=quiet)
    table = eval_table(recipe)
    if table:
        typer.echo(
            "\nheld-out template math, greedy answers: checked by the math verifier (eval_*), "
            "graded by the judge (judged_*)"
        )
        typer.echo(table)
    if recipe.off:
        typer.echo("judged set left out: no judge (plamo-fast demo --judge MODEL_FOLDER, or "
                   "--judge NAME --judge-base-url URL)")  # fmt: skip
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
