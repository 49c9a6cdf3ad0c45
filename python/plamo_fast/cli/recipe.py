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
SET = typer.Option(
    None,
    "--set",
    help="NAME=VALUE: a var of the recipe's `vars` for this run folder, which remembers it "
    "(repeatable; `NAME=` empties it).",
)


def _load(recipe: str, run_dir: Optional[Path], sets: Optional[List[str]] = None):
    from plamo_fast.recipe import find_recipe
    from plamo_fast.recipe.spec import load_recipe, parse_settings

    path = find_recipe(recipe)
    if run_dir is None:
        import yaml

        name = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("name") or path.stem
        run_dir = Path("runs") / str(name)
    return load_recipe(path, run_dir, parse_settings(sets))


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
    sets: Optional[List[str]] = SET,
) -> None:
    """What `recipe run` would do with each step, and why, without running anything."""
    loaded = _load(recipe, run_dir, sets)
    for d in _plan(loaded, start, until, only, force):
        typer.echo(d.line())


def status(
    recipe: str = RECIPE, run_dir: Optional[Path] = RUN_DIR, sets: Optional[List[str]] = SET
) -> None:
    """Each step of a run: done (with its main metric), stale (why) or pending."""
    from plamo_fast.recipe.runner import status_lines

    for line in status_lines(_load(recipe, run_dir, sets)):
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
    sets: Optional[List[str]] = SET,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    wait: bool = typer.Option(
        False,
        "--wait/--no-wait",
        help="Executor slurm: wait for the jobs to end, then report (default: submit and return).",
    ),  # fmt: skip
    poll: float = typer.Option(
        15.0, "--poll", help="Executor slurm, --wait: seconds between looks at the queue.", min=0.1
    ),  # fmt: skip
) -> None:
    """Run the steps that are not done (or changed), in dependency order; write report.md.
    With `launcher: {executor: slurm}` each step is submitted as one sbatch job instead."""
    from plamo_fast.recipe.spec import parse_settings, remember_settings

    loaded = _load(recipe, run_dir, sets)
    remember_settings(loaded, parse_settings(sets))
    if loaded.launcher.executor == "slurm":
        code = submit_recipe(loaded, start, until, only, force, wait=wait, poll=poll)
    else:
        code = run_recipe(loaded, start, until, only, force, quiet=quiet)
    raise typer.Exit(code)


def run_step(
    recipe: str = RECIPE,
    step: str = typer.Argument(..., help="The step to run."),
    run_dir: Optional[Path] = RUN_DIR,
) -> None:
    """(What a step's Slurm job runs.) Run STEP now, its upstream steps being done."""
    from plamo_fast.recipe.runner import run_in_job
    from plamo_fast.recipe.steps import torch_missing

    loaded = _load(recipe, run_dir)
    typer.echo(f"plamo-fast: step {step} of {loaded.name} in {loaded.run_dir}", err=True)
    record = run_in_job(loaded, step, missing=torch_missing())
    typer.echo(f"plamo-fast: step {step} done in {record['seconds']:.1f} s", err=True)


def submit_recipe(loaded, start=None, until=None, only=None, force=None, *, wait=False,
                  poll=15.0) -> int:  # fmt: skip
    """Executor slurm: plan, submit a job per step to run, print the jobs; with ``wait``, wait
    for them, say which steps finished and which failed, and write the report. 0 when every
    job finished (or, without ``wait``, was submitted), 1 when one failed."""
    from plamo_fast.recipe import slurm
    from plamo_fast.recipe.report import summary_table, write_report
    from plamo_fast.recipe.runner import submit

    def echo(line: str) -> None:
        typer.echo(line, err=True)

    decisions = _plan(loaded, start, until, only, force)
    jobs = submit(loaded, decisions, echo=echo)
    if not jobs:
        echo(f"plamo-fast: every selected step of {loaded.name} is done")
    elif not wait:
        echo(f"plamo-fast: {len(jobs)} step(s) queued; `plamo-fast recipe status` shows them; "
             "`recipe run` again (or --wait) writes the report once they are done")  # fmt: skip
        typer.echo(" ".join(jobs.values()))
        return 0
    views = slurm.wait(loaded, jobs, poll=poll, echo=echo) if jobs else {}
    bad = {name: v for name, v in views.items() if v.state != "finished"}
    report = write_report(loaded)
    typer.echo(summary_table(loaded))
    typer.echo(f"report: {report}")
    for name, view in bad.items():
        echo(f"plamo-fast: step {name} {view.state}: {view.detail}")
    if bad:
        echo(f"plamo-fast: {len(bad)} step(s) did not finish; `plamo-fast recipe run` again "
             "submits them once the cause is fixed")  # fmt: skip
    return 1 if bad else 0


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
app.command("run-step", no_args_is_help=True, hidden=True)(run_step)
app.command("show", no_args_is_help=True)(show)
app.command("list")(list_recipes)
