"""Planning and running a recipe.

Each step runs in its folder ``RUN/NAME`` and, once its outputs are complete, records what it
was run from and what it made in ``RUN/NAME/step.json`` (written to a temporary sibling and
renamed): the fingerprint of its parameters, the digests of its inputs, the plamo-fast version,
the digests and counts of its outputs, its metrics and its time. A step is skipped when its
record's fingerprint and input digests match and its outputs are intact; otherwise it runs, and
so does every step downstream of it. ``step.started.json`` marks a step that began: a killed
step starts again from what its function can resume (sampling's ``.partial`` file, training's
checkpoints) when its fingerprint and inputs are unchanged, and from an empty folder otherwise.

With ``launcher: {executor: slurm}`` the steps to run are submitted as Slurm jobs instead
(:mod:`plamo_fast.recipe.slurm`); each job runs its step with :func:`run_in_job`, which writes
the same record.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from plamo_fast.digests import DigestMemo, path_digest
from plamo_fast.errors import PlamoFastError, UsageError
from plamo_fast.outputs import write_json_atomic
from plamo_fast.recipe import record as rec
from plamo_fast.recipe import slurm
from plamo_fast.recipe.spec import Recipe, Step

RUN = "run"
SKIP = "skip"
OUTSIDE = "outside"
BLOCKED = "blocked"
DIGEST_MEMO = ".digests.json"


@dataclass
class Decision:
    step: Step
    action: str  # run, skip, outside (not selected), blocked (needs what is not installed)
    reasons: list[str] = field(default_factory=list)
    fingerprint: str = ""
    inputs: dict = field(default_factory=dict)

    def line(self) -> str:
        why = "; ".join(self.reasons)
        return f"{self.action:<8} {self.step.name:<24} {self.step.kind.name:<13} {why}"


def _selected(recipe: Recipe, start, until, only) -> set[str]:
    names = [s.name for s in recipe.steps]
    for given in [start, until, *only]:
        if given is not None and given not in names:
            raise UsageError(f"no step named {given!r} (steps: {', '.join(names)})")
    first = names.index(start) if start else 0
    last = names.index(until) if until else len(names) - 1
    window = set(names[first : last + 1])
    return window & set(only) if only else window


def _memo(step: Step) -> DigestMemo:
    """The run's memo of file digests (``RUN/.digests.json``): a large input or output is
    hashed once per version, not at every plan."""
    return DigestMemo(step.folder.parent / DIGEST_MEMO)


def input_digests(step: Step) -> dict:
    """Every input path of the step with its digest: a hub dataset's name found in the
    local cache by the digest of its cached files; ``missing`` when absent; any other name
    that is not a path (a served model) is recorded as such."""
    out = {}
    memo = _memo(step)
    for path in step.kind.inputs(step.params):
        if not path:
            continue
        digest = _input_digest(path, memo)
        if digest is None:
            digest = "missing" if ("/" in path or Path(path).suffix) else f"name:{path}"
        out[step.relocatable(path)] = digest
    return out


def _input_digest(path: str, memo: DigestMemo) -> str | None:
    """:func:`plamo_fast.data.curation_io.input_digest` (a file, a folder, or a hub dataset's
    name by its cached files, through the run's memo), or None when ``path`` is none of them
    (missing, a served model's name, a hub name while offline mode is off)."""
    from plamo_fast.data.curation_io import input_digest

    try:
        return input_digest(Path(path), memo)
    except (PlamoFastError, ImportError, ValueError):  # a file's read error is not swallowed
        return None


def outputs_intact(step: Step, record: dict) -> list[str]:
    """What is wrong with the recorded outputs (empty: all intact)."""
    problems = []
    for name, out in (record.get("outputs") or {}).items():
        digest = path_digest(step.folder / out["path"], _memo(step))
        if digest is None:
            problems.append(f"output {name} ({out['path']}) is missing")
        elif digest != out["digest"]:
            problems.append(f"output {name} ({out['path']}) changed since it was made")
    return problems


def plan(
    recipe: Recipe,
    *,
    start: str | None = None,
    until: str | None = None,
    only: tuple[str, ...] = (),
    force: tuple[str, ...] = (),
    missing: str | None = None,
) -> list[Decision]:
    """What a run would do with each step, and why. ``missing``: what is not installed that
    the steps needing torch need (those steps and their downstream are ``blocked``)."""
    _selected(recipe, None, None, force)  # names check
    selected = _selected(recipe, start, until, only)
    running: set[str] = set()
    blocked: set[str] = set()
    decisions = []
    for step in recipe.steps:
        fp = rec.fingerprint(step.kind.name, step.settings)
        reasons = _reasons(step, fp, running, force)
        digests = {}
        if not reasons:
            digests = input_digests(step)
            record = _record(step) or {}
            reasons += _input_changes(record.get("inputs") or {}, digests)
            reasons += outputs_intact(step, record)
        action = RUN if reasons else SKIP
        if action == RUN and step.name not in selected:
            action = OUTSIDE
            reasons = [*reasons, "not selected (--from/--until/--only)"]
        if (
            action == RUN
            and missing
            and (step.kind.needs_torch or any(d in blocked for d in step.deps))
        ):
            action = BLOCKED
            blocked.add(step.name)
            reasons = [*reasons, f"needs {missing}"]
        if action == RUN:
            running.add(step.name)
        if not reasons:
            reasons = [_done_line(_record(step))]
        decisions.append(Decision(step, action, reasons, fp, digests))
    return decisions


def _record(step: Step) -> dict | None:
    return rec.read_json(step.folder / rec.RECORD)


def _reasons(step: Step, fp: str, running: set[str], force) -> list[str]:
    reasons = []
    if step.name in force:
        reasons.append("forced (--force)")
    record = _record(step)
    if record is None:
        started = rec.read_json(step.folder / rec.STARTED)
        if started and started.get("fingerprint") == fp:
            reasons.append("interrupted: continues from what it had made")
        else:
            reasons.append("not run yet")
    elif record.get("fingerprint") != fp:
        changes = rec.param_changes(record.get("settings") or {}, step.settings)
        reasons.append("parameters changed: " + ("; ".join(changes) or "kind changed"))
    upstream = [d for d in step.deps if d in running]
    if upstream:
        reasons.append(f"upstream {', '.join(upstream)} reruns")
    return reasons


def _input_changes(old: dict, new: dict) -> list[str]:
    changed = [p for p in new if old.get(p) != new[p]]
    return [f"input {p} changed" if p in old else f"new input {p}" for p in changed]


def _done_line(record: dict | None) -> str:
    if not record:
        return ""
    return f"done {record.get('finished', '?')} ({record.get('seconds', 0):.1f} s)"


def check_run_dir(run_dir: Path) -> None:
    """The run folder: new, or an earlier run's (its marker says ``recipe``); never the
    current directory, a home directory or a folder of something else."""
    from plamo_fast.outputs import check_output, read_marker, write_marker

    check_output(run_dir, command="recipe", overwrite=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    if read_marker(run_dir) is None:
        write_marker(run_dir, "recipe")


def _prepare_folder(step: Step, decision: Decision) -> None:
    """Empty the step's folder for a fresh run, except what a killed run of the same step
    (same fingerprint and inputs) can continue from."""
    folder = step.folder
    if folder.is_symlink():
        raise UsageError(f"{folder} is a symbolic link; the recipe's step folders are its own")
    (folder / rec.RECORD).unlink(missing_ok=True)  # first: a crash below leaves it not done
    started = rec.read_json(folder / rec.STARTED) or {}
    resume = (
        started.get("fingerprint") == decision.fingerprint
        and started.get("inputs") == decision.inputs
        and "forced (--force)" not in decision.reasons
    )
    keep = (set(step.kind.resumable) if resume else set()) | {slurm.FOLDER}  # the jobs' logs
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _outputs(step: Step) -> dict:
    outputs = {}
    for name, rel in step.kind.outputs.items():
        path = step.folder / rel
        digest = path_digest(path, _memo(step))
        if digest is not None:
            outputs[name] = {"path": rel, "digest": digest, "records": rec.count_records(path)}
    return outputs


def run_one(decision: Decision, progress: bool, extra: dict | None = None) -> dict:
    """Runs the step and writes its record (with ``extra`` keys); returns the record."""
    from plamo_fast import __version__
    from plamo_fast.recipe.execute import run_step

    step = decision.step
    decision.inputs = input_digests(step)  # upstream outputs exist now
    _prepare_folder(step, decision)
    started = datetime.now(UTC)
    write_json_atomic(
        step.folder / rec.STARTED,
        {"fingerprint": decision.fingerprint, "inputs": decision.inputs,
         "started": started.isoformat(timespec="seconds")},
    )  # fmt: skip
    clock = time.perf_counter()
    metrics = run_step(step, progress)
    seconds = time.perf_counter() - clock
    record = {
        "step": step.name,
        "kind": step.kind.name,
        "fingerprint": decision.fingerprint,
        "settings": step.settings,
        "inputs": decision.inputs,
        "plamo_fast_version": __version__,
        "outputs": _outputs(step),
        "metrics": metrics,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "reasons": decision.reasons,
        **(extra or {}),
    }
    write_json_atomic(step.folder / rec.RECORD, record)
    (step.folder / rec.STARTED).unlink(missing_ok=True)
    return record


def run(
    recipe: Recipe,
    decisions: list[Decision],
    *,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[Decision]:
    """Runs the ``run`` decisions in order; returns them. A step whose upstream is neither
    done nor run now is refused before anything runs."""
    _check_upstream(decisions)
    check_run_dir(recipe.run_dir)
    todo = [d for d in decisions if d.action == RUN]
    for i, d in enumerate(todo, 1):
        echo(f"[{i}/{len(todo)}] {d.step.name} ({d.step.kind.name}): {'; '.join(d.reasons)}")
        record = run_one(d, progress)
        echo(f"[{i}/{len(todo)}] {d.step.name}: done in {record['seconds']:.1f} s")
    return todo


def submit(
    recipe: Recipe, decisions: list[Decision], *, echo: Callable[[str], None] = print
) -> dict[str, str]:
    """Executor slurm: submits the ``run`` decisions as jobs (checked as :func:`run` checks
    them); returns the job id of each step to run."""
    _check_upstream(decisions)
    slurm.require("sbatch")
    check_run_dir(recipe.run_dir)
    return slurm.submit(recipe, [d for d in decisions if d.action == RUN], echo)


def run_in_job(recipe: Recipe, name: str, *, missing: str | None = None) -> dict:
    """What a step's Slurm job runs: the step (whatever the plan now says: it was planned at
    submission) once every upstream step is done; returns its record."""
    decisions = {d.step.name: d for d in plan(recipe, missing=missing)}
    if name not in decisions:
        raise UsageError(f"no step named {name!r} (steps: {', '.join(decisions)})")
    d = decisions[name]
    for dep in d.step.deps:
        if decisions[dep].action != SKIP:
            raise UsageError(f"step {name} needs {dep}, which is not done "
                             f"({'; '.join(decisions[dep].reasons)})")  # fmt: skip
    if d.action == BLOCKED:
        raise UsageError(f"step {name}: {'; '.join(d.reasons)} on this node")
    d.action = RUN
    d.reasons = slurm.job_reasons(recipe, name) or d.reasons
    if d.step.launcher.machines == 1 or d.step.kind.name not in slurm.DISTRIBUTED:
        d.step.launcher = dataclasses.replace(d.step.launcher, executor="local")  # this node
    check_run_dir(recipe.run_dir)
    return run_one(d, progress=False, extra={"slurm_job": os.environ.get("SLURM_JOB_ID")})


def _check_upstream(decisions: list[Decision]) -> None:
    by_name = {d.step.name: d for d in decisions}
    for d in decisions:
        if d.action != RUN:
            continue
        for dep in d.step.deps:
            up = by_name[dep]
            if up.action in (OUTSIDE, BLOCKED) and (
                _record(up.step) is None or outputs_intact(up.step, _record(up.step))
            ):
                raise UsageError(
                    f"step {d.step.name} needs {dep}, which is not done and not selected to run "
                    f"({'; '.join(up.reasons)})"
                )


def status_lines(recipe: Recipe) -> list[str]:
    """One line per step: done (when, how long, its main metric), stale (why) or not run; with
    the slurm executor also queued or running (its job), failed (its log) or cancelled (an
    upstream job failed)."""
    views = slurm.job_views(recipe) if (recipe.run_dir / slurm.JOBS).is_file() else {}
    lines = []
    for d in plan(recipe):
        record = _record(d.step)
        state = "done" if d.action == SKIP else ("stale" if record else "pending")
        view = views.get(d.step.name)
        if view and (view.state in ("queued", "running") or
                     (d.action != SKIP and view.state in ("failed", "cancelled"))):  # fmt: skip
            lines.append(f"{view.state:<8} {d.step.name:<24} {d.step.kind.name:<13} "
                         f"{view.detail}")  # fmt: skip
            continue
        metric = ""
        if record:
            m = record.get("metrics") or {}
            for k in ("accuracy", "loss", "records_kept", "train", "pairs", "candidates"):
                if isinstance(m.get(k), int | float):
                    metric = f"{k}={m[k]:.4g}"
                    break
        why = "" if d.action == SKIP else "; ".join(d.reasons)
        lines.append(f"{state:<8} {d.step.name:<24} {d.step.kind.name:<13} {metric:<18} {why}")
    return lines
