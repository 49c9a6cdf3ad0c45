"""The ``slurm`` executor: each step of a recipe run is one ``sbatch`` job.

``plamo-fast recipe run`` plans as with the local executor, then submits one job per step to
run, in dependency order, each with ``--dependency=afterok:<the jobs of its upstream steps>``
and ``--kill-on-invalid-dep=yes`` (a failed job's downstream jobs are cancelled by Slurm
instead of pending forever). The job script, ``RUN/STEP/slurm/job.sh``, is kept for the user to
read; it runs ``python -m plamo_fast.cli recipe run-step RECIPE --dir RUN STEP``, which runs
the step on the job's node(s) exactly as the local executor does and writes the step's record
(``step.json``) when the step's outputs are complete. The job's output and error logs are
``RUN/STEP/slurm/JOBID.out`` and ``.err``.

Which jobs belong to the run is kept in ``RUN/slurm-jobs.json`` (rewritten atomically after
each submission): a later ``recipe run`` does not submit a step again while its job is queued
or running, and ``recipe status`` shows such a step as ``queued`` or ``running`` with its job,
a step whose job failed as ``failed`` (with its log), and a step whose job Slurm cancelled
because an upstream job failed as ``cancelled``. The next ``recipe run`` submits again from the
failed step.

A training step (sft, dpo) with ``machines: M > 1`` gets ``--nodes=M --ntasks-per-node=1``;
its ``run-step`` runs on the first node and launches, with ``srun``, one ``accelerate launch``
per node (:func:`across_nodes`): machine rank ``$SLURM_NODEID``, main address the first host
of ``$SLURM_JOB_NODELIST`` and main port ``29500 + JOBID % 10000`` (both exported by the job
script as ``PLAMO_FAST_MAIN_ADDR`` and ``PLAMO_FAST_MAIN_PORT``). Every other step is one
process on one node. ``gpus_per_node`` asks for ``--gpus-per-node``; the launcher's ``slurm``
options (a step's own ``launcher: {slurm: [...]}`` replaces the recipe's) come last, so they
override the ones written before them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from plamo_fast.errors import UsageError
from plamo_fast.outputs import write_json_atomic
from plamo_fast.recipe import record as rec
from plamo_fast.recipe.spec import Recipe, Step

JOBS = "slurm-jobs.json"  # in the run folder
FOLDER = "slurm"  # in each step folder: job.sh and the jobs' logs (kept when the step reruns)
DISTRIBUTED = ("sft", "dpo")  # the kinds launched with accelerate (execute._train)
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
         "BOOT_FAIL", "DEADLINE", "PREEMPTED")  # fmt: skip
NEVER_RAN = "DependencyNeverSatisfied"
PORT_BASE = 29500


def require(tool: str = "sbatch") -> str:
    found = shutil.which(tool)
    if found is None:
        raise UsageError(
            f"executor slurm: `{tool}` is not on PATH (run on a Slurm login node, or set "
            "`launcher: {executor: local}` in the recipe)"
        )
    return found


def nodes(step: Step) -> int:
    """The nodes of the step's job: the launcher's machines for a training step, else 1."""
    return step.launcher.machines if step.kind.name in DISTRIBUTED else 1


def job_name(recipe: Recipe, step: Step) -> str:
    return f"pf-{recipe.name}-{step.name}"


def job_script(recipe: Recipe, step: Step, *, python: str | None = None, cwd: Path | None = None):
    """The text of the step's job script (every sbatch option in it but the dependency)."""
    python = python or sys.executable
    cwd = cwd or Path.cwd()
    logs = step.folder / FOLDER
    count = nodes(step)
    options = [
        f"--job-name={job_name(recipe, step)}",
        f"--nodes={count}",
        "--ntasks-per-node=1",
        f"--output={logs}/%j.out",
        f"--error={logs}/%j.err",
    ]
    if step.launcher.gpus_per_node:
        options.append(f"--gpus-per-node={step.launcher.gpus_per_node}")
    options += list(step.launcher.slurm)
    command = [python, "-m", "plamo_fast.cli", "recipe", "run-step", str(recipe.path.resolve()),
               "--dir", str(recipe.run_dir), step.name]  # fmt: skip
    lines = [
        "#!/bin/bash",
        f"# plamo-fast recipe {recipe.name}: step {step.name} ({step.kind.name}), written by",
        "# `plamo-fast recipe run` (executor slurm), which submits it with",
        "#   sbatch --dependency=afterok:<upstream steps' jobs> --kill-on-invalid-dep=yes",
        f"# It runs the step and writes {step.folder / rec.RECORD} when the step's outputs are",
        "# complete; the job fails (and Slurm cancels its downstream jobs) when the step fails.",
        *[f"#SBATCH {o}" for o in options],
        "set -euo pipefail",
        f"cd {shlex.quote(str(cwd))}",
    ]
    if count > 1:
        lines += [
            f"# {count} nodes: run-step runs here (the first node) and starts one `accelerate",
            "# launch` per node with srun: machine rank $SLURM_NODEID, main process at:",
            'export PLAMO_FAST_MAIN_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" '
            '| head -n 1)"',
            f"export PLAMO_FAST_MAIN_PORT=$(( {PORT_BASE} + SLURM_JOB_ID % 10000 ))",
        ]
    lines.append("exec " + shlex.join(command))
    return "\n".join(lines) + "\n"


def across_nodes(command: list[str], launcher) -> list[str]:
    """An ``accelerate launch`` command (steps.accelerate_command) run on every node of the
    job: ``srun`` one task per node, each adding its machine rank and the main address."""
    if launcher.machines <= 1:
        return command
    return [
        "srun", f"--nodes={launcher.machines}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
        sys.executable, "-m", "plamo_fast.recipe.slurm", *command,
    ]  # fmt: skip


def node_command(command: list[str], environ: dict) -> list[str]:
    """The ``accelerate launch`` command of this node: ``--machine_rank $SLURM_NODEID
    --main_process_ip $PLAMO_FAST_MAIN_ADDR --main_process_port $PLAMO_FAST_MAIN_PORT``
    added after the launcher module."""
    missing = [k for k in ("SLURM_NODEID", "PLAMO_FAST_MAIN_ADDR", "PLAMO_FAST_MAIN_PORT")
               if not environ.get(k)]  # fmt: skip
    if missing:
        raise UsageError(f"a multi-node step outside its job script: {', '.join(missing)} unset")
    at = command.index("accelerate.commands.launch") + 1
    extra = ["--machine_rank", environ["SLURM_NODEID"],
             "--main_process_ip", environ["PLAMO_FAST_MAIN_ADDR"],
             "--main_process_port", environ["PLAMO_FAST_MAIN_PORT"]]  # fmt: skip
    return command[:at] + extra + command[at:]


# -- submission -----------------------------------------------------------------------------


def read_jobs(recipe: Recipe) -> dict:
    """The run's jobs by step name: job id, submission time, reasons, upstream jobs."""
    return (rec.read_json(recipe.run_dir / JOBS) or {}).get("steps") or {}


def _write_jobs(recipe: Recipe, jobs: dict) -> None:
    write_json_atomic(recipe.run_dir / JOBS, {"recipe": str(recipe.path.resolve()),
                                              "steps": jobs})  # fmt: skip


def sbatch(script: Path, after: list[str]) -> str:
    """Submits ``script``; returns the job id."""
    command = [require("sbatch"), "--parsable", "--kill-on-invalid-dep=yes"]
    if after:
        command.append("--dependency=afterok:" + ":".join(after))
    done = subprocess.run([*command, str(script)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"sbatch {script} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]


def submit(recipe: Recipe, todo: list, echo: Callable[[str], None]) -> dict[str, str]:
    """Submits one job per decision of ``todo`` (the steps to run), each after its upstream
    steps' jobs (those of this submission and those still queued or running from an earlier
    one); a step whose job is still queued or running is not submitted again. Returns the job
    of every step to run."""
    jobs = read_jobs(recipe)
    states = job_states([j["job"] for j in jobs.values()])
    ids = {name: j["job"] for name, j in jobs.items() if _active(states.get(j["job"]))}
    stuck = [job for job, state in states.items() if state[0] not in ENDED and not _active(state)]
    if stuck:  # pending forever: cancel them before submitting their steps again
        subprocess.run([require("scancel"), *stuck], capture_output=True, check=False)
    for name, job in ids.items():
        echo(f"{name}: job {job} is still {states[job][0]}: not submitted again")
    submitted = [d for d in todo if d.step.name not in ids]
    for d in submitted:
        step = d.step
        folder = step.folder / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        script = folder / "job.sh"
        script.write_text(job_script(recipe, step), encoding="utf-8")
        after = [ids[dep] for dep in step.deps if dep in ids]
        ids[step.name] = sbatch(script, after)
        jobs[step.name] = {
            "job": ids[step.name],
            "submitted": datetime.now(UTC).isoformat(timespec="seconds"),
            "after": after,
            "reasons": d.reasons,
            "script": str(script.relative_to(recipe.run_dir)),
        }
        _write_jobs(recipe, jobs)
        wait_for = f" after {', '.join(after)}" if after else ""
        echo(f"{step.name}: submitted as job {ids[step.name]}{wait_for} "
             f"(log {folder / ids[step.name]}.out)")  # fmt: skip
    return {d.step.name: ids[d.step.name] for d in todo}


# -- state ----------------------------------------------------------------------------------


def job_states(ids: list[str]) -> dict[str, tuple[str, str]]:
    """Slurm's state and reason of each job it still knows (ended jobs are forgotten after
    MinJobAge)."""
    if not ids:
        return {}
    done = subprocess.run(
        [require("squeue"), "-h", "-t", "all", "-o", "%i|%T|%r", "-j", ",".join(ids)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 and "Invalid job id" not in done.stderr:
        raise UsageError(f"squeue failed: {done.stderr.strip()}")
    states = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def _active(state: tuple[str, str] | None) -> bool:
    """Queued or running, and able to run (a job left pending after an upstream job failed,
    where the cluster ignores --kill-on-invalid-dep, never will)."""
    return state is not None and state[0] not in ENDED and state[1] != NEVER_RAN


@dataclass
class JobView:
    job: str
    state: str  # queued, running, finished, failed, cancelled
    detail: str
    log: Path


def job_views(recipe: Recipe) -> dict[str, JobView]:
    """What became of each step's latest job."""
    jobs = read_jobs(recipe)
    states = job_states([j["job"] for j in jobs.values()]) if jobs else {}
    views: dict[str, JobView] = {}
    for step in recipe.steps:  # dependency order: upstream views first
        entry = jobs.get(step.name)
        if entry:
            views[step.name] = _view(step, entry["job"], states.get(entry["job"]), views)
    return views


def _view(step: Step, job: str, state, views: dict) -> JobView:
    log = step.folder / FOLDER / f"{job}.err"
    slurm = f"job {job}" + (f" {state[0]}" if state else "")
    if _active(state):
        queued = state[0] == "PENDING"
        why = f" ({state[1]})" if queued and state[1] not in ("", "None") else ""
        return JobView(job, "queued" if queued else "running", slurm + why, log)
    record = rec.read_json(step.folder / rec.RECORD) or {}
    if record.get("slurm_job") == job or (state is not None and state[0] == "COMPLETED"):
        return JobView(job, "finished", slurm, log)
    failed_up = [d for d in step.deps if d in views and views[d].state in ("failed", "cancelled")]
    never_ran = (state is not None and state[1] == NEVER_RAN) or (
        state is None and not log.exists()
    )
    if never_ran:
        up = f": upstream {', '.join(failed_up)} failed" if failed_up else ""
        return JobView(job, "cancelled", f"{slurm}, never ran{up}", log)
    last = _last_line(log)
    return JobView(job, "failed", f"{slurm}: {last + ' ' if last else ''}(log {log})", log)


def _last_line(path: Path) -> str:
    try:
        lines = [
            line.strip() for line in path.read_text(errors="replace", encoding="utf-8").splitlines()
        ]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


def wait(recipe: Recipe, ids: dict[str, str], *, poll: float, echo) -> dict[str, JobView]:
    """Polls Slurm until none of ``ids`` is queued or running; returns each step's view."""
    seen: dict[str, str] = {}
    while True:
        views = {name: v for name, v in job_views(recipe).items() if name in ids}
        for name, view in views.items():
            if seen.get(name) != view.state:
                seen[name] = view.state
                echo(f"{name}: {view.state} ({view.detail})")
        if not any(v.state in ("queued", "running") for v in views.values()):
            return views
        time.sleep(poll)


# -- inside the job -------------------------------------------------------------------------


def job_reasons(recipe: Recipe, name: str) -> list[str] | None:
    """Why the step was submitted (its entry in the run's jobs), when this is its job."""
    entry = read_jobs(recipe).get(name) or {}
    if entry.get("job") and entry["job"] == os.environ.get("SLURM_JOB_ID"):
        return list(entry.get("reasons") or [])
    return None


def main(argv: list[str] | None = None) -> None:
    """``python -m plamo_fast.recipe.slurm ACCELERATE-COMMAND...``: one node's launch."""
    command = node_command(list(sys.argv[1:] if argv is None else argv), dict(os.environ))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
