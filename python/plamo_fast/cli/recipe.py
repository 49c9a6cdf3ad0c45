"""``plamo-fast recipe run|plan|status|show``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    help="The recipe as one resumable run: steps of the package's kinds, each recorded with "
    "what it was run from; a finished step is skipped, a changed one reruns with everything "
    "downstream.",
    no_args_is_help=True,
)

RECIPE = typer.Argument(..., help="A recipe YAML file, or a shipped recipe's name (tiny-cpu).")
RUN_DIR = typer.Option(
    None, "--dir", "-o", help="The run folder (default: ./runs/NAME, NAME the recipe's name)."
)
FROM = typer.Option(None, "--from", help="Start at this step (earlier ones must be done).")
UNTIL = typer.Option(None, "--until", help="Stop after this step.")
ONLY = typer.Option(None, "--only", help="Only this step (repeatable).")
FORCE = typer.Option(None, "--force", help="Run this step again, and its downstream (repeatable).")


def _load(recipe: str, run_dir: Optional[Path]):
    from plamo_fast.recipe import find_recipe
    from plamo_fast.recipe.spec import load_recipe

    path = find_recipe(recipe)
    if run_dir is None:
        import yaml

        name = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("name") or path.stem
        run_dir = Path("runs") / str(name)
    return load_recipe(path, run_dir)


def _plan(loaded, start, until, only, force, missing=None):
    from plamo_fast.recipe.runner import plan as make_plan

    return make_plan(
        loaded, start=start, until=until, only=tuple(only or ()), force=tuple(force or ()),
        missing=missing,
    )  # fmt: skip


def plan(
    recipe: str = RECIPE,
    run_dir: Optional[Path] = RUN_DIR,
    start: Optional[str] = FROM,
    until: Optional[str] = UNTIL,
    only: Optional[List[str]] = ONLY,
    force: Optional[List[str]] = FORCE,
) -> None:
    """What `recipe run` would do with each step, and why, without running anything."""
    loaded = _load(recipe, run_dir)
    for d in _plan(loaded, start, until, only, force):
        typer.echo(d.line())


def status(recipe: str = RECIPE, run_dir: Optional[Path] = RUN_DIR) -> None:
    """Each step of a run: done (with its main metric), stale (why) or pending."""
    from plamo_fast.recipe.runner import status_lines

    for line in status_lines(_load(recipe, run_dir)):
        typer.echo(line)


def show(recipe: str = RECIPE) -> None:
    """Print a recipe file (a shipped one by name: `plamo-fast recipe show tiny-cpu`)."""
    from plamo_fast.recipe import find_recipe

    typer.echo(find_recipe(recipe).read_text(encoding="utf-8"), nl=False)


def list_recipes() -> None:
    """The recipes shipped with the package."""
    from plamo_fast.recipe import shipped

    for name, path in shipped().items():
        typer.echo(f"{name:<18} {path}")


def run(
    recipe: str = RECIPE,
    run_dir: Optional[Path] = RUN_DIR,
    start: Optional[str] = FROM,
    until: Optional[str] = UNTIL,
    only: Optional[List[str]] = ONLY,
    force: Optional[List[str]] = FORCE,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run the steps that are not done (or changed), in dependency order; write report.md."""
    code = run_recipe(_load(recipe, run_dir), start, until, only, force, quiet=quiet)
    raise typer.Exit(code)


INSTALL_HINT = (
    "install the [train] extra for the training, sampling and evaluation steps: "
    "pip install 'plamo-fast[train]' (from a checkout: pip install '.[train]'; on a CPU-only "
    "machine first: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
)


def run_recipe(loaded, start=None, until=None, only=None, force=None, *, quiet=False) -> int:
    """Plan, run, report; 0 when every selected step is done, 3 when some need the [train]
    extra (which is named)."""
    from plamo_fast.recipe.report import summary_table, write_report
    from plamo_fast.recipe.runner import BLOCKED, RUN, run
    from plamo_fast.recipe.steps import torch_missing

    decisions = _plan(loaded, start, until, only, force, missing=torch_missing())
    todo = [d for d in decisions if d.action == RUN]
    blocked = [d for d in decisions if d.action == BLOCKED]
    if not todo:
        typer.echo(f"plamo-fast: every selected step of {loaded.name} is done", err=True)
    run(loaded, decisions, progress=not quiet, echo=lambda s: typer.echo(s, err=True))
    report = write_report(loaded)
    typer.echo(summary_table(loaded))
    typer.echo(f"report: {report}")
    if blocked:
        names = ", ".join(d.step.name for d in blocked)
        typer.echo(f"plamo-fast: not run ({len(blocked)} steps: {names}): {INSTALL_HINT}", err=True)
        return 3
    return 0


app.command("run", no_args_is_help=True)(run)
app.command("plan", no_args_is_help=True)(plan)
app.command("status", no_args_is_help=True)(status)
app.command("show", no_args_is_help=True)(show)
app.command("list")(list_recipes)
