"""What a stage keeps on disk, and when it may be reused.

Layout of a stage whose output is ``OUT``:

- ``OUT.run/``: work in progress: ``fingerprint.json`` (what the run depends on),
  ``checkpoints/step-NNNNNN/`` (a Hugging Face model plus ``trainer_state/`` with optimizer,
  scheduler, RNG and data position), ``metrics.jsonl``, DPO ``reference_logps.npz``, and for
  ``data.raw`` the ``packed/`` data. A killed run resumes from its latest complete checkpoint,
  only with the same fingerprint (``max_steps`` may change).
- ``OUT/``: the finished model (safetensors, config, tokenizer), ``metrics.jsonl`` and
  ``training_curves.png``, published only when the stage completes (``plamo_fast.outputs``)
  with a marker holding the fingerprint. A rerun skips the stage when the stored fingerprint
  equals the new one and refuses it, naming what changed, when it does not.

The fingerprint: the stage config (without its name and logging and checkpoint cadence; with
``max_steps``), the precision, a digest of the packed rows, and the marker of a starting or
reference model made by plamo-fast (so a stage after one trained again is not reused).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from plamo_fast.errors import PlamoFastError, UsageError
from plamo_fast.outputs import (
    MARKER,
    UnsafeOutputError,
    check_output,
    publish,
    read_marker,
    write_json_atomic,
)
from plamo_fast.train.collective import on_main
from plamo_fast.train.config import RunConfig, StageConfig
from plamo_fast.train.metrics import plot_curves
from plamo_fast.train.models import save_model

FINGERPRINT = "fingerprint.json"
# Settings that change neither the model nor the run's state.
NOT_FINGERPRINTED = ("name", "save_every", "log_every", "keep_checkpoints")
# Settings a run folder may be resumed with another value of (OUT still records them).
RESUMABLE = ("config.max_steps",)
# Recorded later than the first run folders: an older fingerprint.json lacks them.
RECORDED_SINCE = ("config.precision", "config.disable_dropout", "models.")


class StaleOutputError(UsageError):
    """A finished stage output made with other settings than the stage now asks for."""


def run_folder(out: Path) -> Path:
    return out.parent / f"{out.name}.run"


# -- the fingerprint -------------------------------------------------------------------------
def data_digest(rows) -> str:
    """sha256 of the packed rows (``PackedRows.digest``, computed when they were mapped): the
    one place the data enters the fingerprint."""
    return rows.digest()


def model_identity(path: str | None) -> str | None:
    """A model made by plamo-fast (an earlier stage, a merge) is known by its marker, written
    anew each time it is made; another model by its path alone (in the config)."""
    marker = read_marker(Path(path)) if path else None
    if marker is None:
        return None
    return hashlib.sha256(json.dumps(marker, sort_keys=True).encode()).hexdigest()


def fingerprint(stage: StageConfig, rows, precision: tuple[str, str]) -> dict:
    """What a stage's checkpoints, caches and output depend on (see the module text)."""
    config = asdict(stage)
    for key in NOT_FINGERPRINTED:
        config.pop(key)
    # Cached reference log-probs and optimizer state were made in this precision.
    config["precision"] = list(precision)
    record = {
        "config": config,
        "data_sha256": data_digest(rows),
        "rows": len(rows),
        "models": {
            "model": model_identity(stage.model),
            "reference_model": model_identity(stage.reference_model),
        },
    }
    return json.loads(json.dumps(record))  # as stored (tuples become lists)


def _flat(record: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(stored: dict, current: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """What differs between two fingerprints, one readable line per setting."""
    old, new = _flat(stored), _flat(current)
    lines = []
    for key in sorted(old.keys() | new.keys(), key=lambda k: (not k.startswith("config."), k)):
        if key in ignore or old.get(key, "absent") == new.get(key, "absent"):
            continue
        if key == "data_sha256":
            lines.append("the packed data differ")
        elif key.startswith("models."):
            name = key.removeprefix("models.")
            if old.get(f"config.{name}") == new.get(f"config.{name}"):  # else named below
                what = "starting model" if name == "model" else "reference model"
                lines.append(f"the {what} {new.get(f'config.{name}')} was made again")
        else:
            name = key.removeprefix("config.")
            lines.append(f"{name}: stored {old.get(key, 'absent')!r}, now {new.get(key)!r}")
    return lines


def _with_later_keys(stored: dict, current: dict) -> dict:
    """``stored`` from a run folder made before some keys were recorded, with their current
    values (what an older version did is unknown: the run resumes as it would have)."""
    old = _flat(stored)
    for key, value in _flat(current).items():
        if key not in old and key.startswith(RECORDED_SINCE):
            old[key] = value
    return old


def claim_run_dir(accelerator, run_dir: Path, stage: StageConfig, current: dict) -> None:
    """Tie ``run_dir`` to this run, or refuse to resume one made by another config or other
    data (its checkpoints, reference log-probs and packed data would silently be reused). The
    main process writes the fingerprint; the others read it only after the barrier."""
    stored = run_dir / FINGERPRINT
    if accelerator.is_main_process and not stored.exists():
        write_json_atomic(stored, current)
    accelerator.wait_for_everyone()
    previous = json.loads(stored.read_text(encoding="utf-8"))
    changed = differences(_with_later_keys(previous, current), _flat(current), ignore=RESUMABLE)
    if changed:
        raise PlamoFastError(
            f"{run_dir} holds a run of stage {stage.name} with other settings "
            f"({'; '.join(changed)}); restore the old values to resume (precision: dtype and "
            f"the launcher's mixed_precision), or delete {run_dir} to start over"
        )
    if accelerator.is_main_process:
        write_json_atomic(run_dir / "config.json", asdict(stage))


# -- the stage's output ----------------------------------------------------------------------
def stage_inputs(stage: StageConfig) -> list[str]:
    """What the stage reads, which its output may never be, hold or lie inside."""
    from plamo_fast.data.pack import parse_input

    inputs = [p for p in (stage.model, stage.reference_model) if p]
    if stage.data.packed:
        return inputs + list(stage.data.packed)
    return inputs + [str(parse_input(spec)[0]) for spec in stage.data.raw] + [stage.data.tokenizer]


def check_stage_output(stage: StageConfig, kind: str) -> None:
    """Refuse, before anything is trained, an output the finished stage could not safely
    replace: an input (or a folder holding one, or inside one), the current or a home
    directory, or an existing folder that is not an earlier output of a plamo-fast ``kind``
    stage. Nor may the starting or reference model lie in the run folder, which is pruned."""
    out = Path(stage.output)
    where = f"stage {stage.name}: "
    try:
        check_output(out, command=kind, inputs=stage_inputs(stage))
    except UnsafeOutputError as exc:
        raise UnsafeOutputError(where + str(exc)) from None
    except UsageError:  # it exists: only our own earlier output may be there
        marker = read_marker(out) if out.is_dir() and not out.is_symlink() else None
        if marker is None:
            raise UnsafeOutputError(
                f"{where}output {out} exists and is not the output of a plamo-fast {kind} stage "
                f"(it has no {MARKER}); a stage replaces its output when it finishes: choose a "
                "new folder"
            ) from None
        if marker.get("command") != kind:
            raise UnsafeOutputError(
                f"{where}output {out} is the output of plamo-fast {marker.get('command')}, "
                f"not of {kind}; choose another output"
            ) from None
    run_dir = run_folder(out).resolve()
    for what, path in (("starting model", stage.model), ("reference model", stage.reference_model)):
        if path and Path(path).resolve().is_relative_to(run_dir):
            raise UnsafeOutputError(
                f"{where}the {what} {path} lies inside {run_folder(out)}, whose checkpoints this "
                "stage deletes; copy it elsewhere or choose another output"
            )


def reuse_finished(stage: StageConfig, current: dict) -> bool:
    """True when the stage's output exists and was made with this fingerprint; an output made
    with another one is refused, naming what changed (it is never silently reused, nor
    replaced: retraining could cost hours, and the next stage would start from it)."""
    out = Path(stage.output)
    marker = read_marker(out) if out.is_dir() else None
    if marker is None:
        return False
    changed = differences(marker.get("fingerprint", {}), current)
    if not changed:
        return True
    run_dir = run_folder(out)
    hint = ""
    if all(line.startswith("max_steps:") for line in changed):
        hint = f" (only max_steps changed: delete {out} alone to resume from {run_dir})"
    raise StaleOutputError(
        f"stage {stage.name}: {out} was trained with other settings ({'; '.join(changed)}), "
        f"so it is not reused. To train the stage again, delete {out} and {run_dir}{hint}; to "
        "keep it, restore the old settings or give the stage another output"
    )


def publish_model(accelerator, model, stage: StageConfig, run: RunConfig, current: dict) -> None:
    """Save the trained model with its metrics and curves, then publish it as the stage's
    output with its fingerprint in the marker."""
    out = Path(stage.output)
    run_dir = run_folder(out)
    staging = run_dir / "final.partial"
    if accelerator.is_main_process and staging.exists():
        shutil.rmtree(staging)
    accelerator.wait_for_everyone()
    save_model(accelerator, model, staging, stage.model)

    def finish() -> None:
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists():
            shutil.copy2(metrics, staging / "metrics.jsonl")
            if run.plot and not plot_curves(metrics, staging / "training_curves.png"):
                print("plamo-fast: no training_curves.png (pip install matplotlib)")
        # Replaced only by the same run's output (an identical run that finished meanwhile).
        marker = read_marker(out) if out.is_dir() else None
        same = marker is not None and marker.get("fingerprint") == current
        try:
            publish(
                staging,
                out,
                command=run.kind,
                overwrite=same and marker.get("command") == run.kind,
                inputs=stage_inputs(stage),
                marker={"stage": stage.name, "fingerprint": current},
            )
        except UsageError as exc:
            raise UsageError(f"stage {stage.name}: the model stays in {staging}: {exc}") from None
        from plamo_fast.train.data import drop_copy

        drop_copy(run_dir)  # the uncompressed rows: made again if the stage ever runs again

    on_main(accelerator, finish)


# -- checkpoints -----------------------------------------------------------------------------
def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints whose save finished (``progress.json`` written, renamed from .partial),
    oldest first."""
    return sorted(
        p.parent
        for p in (run_dir / "checkpoints").glob("step-*/progress.json")
        if not p.parent.name.endswith(".partial")
    )


def latest_checkpoint(run_dir: Path) -> Path | None:
    done = complete_checkpoints(run_dir)
    return done[-1] if done else None


def resume(accelerator, run_dir: Path, stage: StageConfig) -> int:
    """Load the latest complete checkpoint, if any; the step to start from."""
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        return 0
    accelerator.load_state(str(checkpoint / "trainer_state"))
    step = json.loads((checkpoint / "progress.json").read_text(encoding="utf-8"))["step"]
    if accelerator.is_main_process:
        print(f"plamo-fast: resuming {stage.name} from {checkpoint} (step {step})")
    return step


def save_checkpoint(accelerator, model, run_dir: Path, step: int, stage: StageConfig) -> None:
    """A checkpoint of every process's state, counted only once all of it is written; then
    all but the newest ``keep_checkpoints`` are deleted (0: keep all)."""
    final = run_dir / "checkpoints" / f"step-{step:06d}"
    partial = final.with_name(final.name + ".partial")
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    save_model(accelerator, model, partial, stage.model)
    accelerator.save_state(str(partial / "trainer_state"))
    accelerator.wait_for_everyone()  # every process's state is written before it counts
    if accelerator.is_main_process:
        (partial / "progress.json").write_text(json.dumps({"step": step}), encoding="utf-8")
        os.replace(partial, final)
        if stage.keep_checkpoints:
            for old in complete_checkpoints(run_dir)[: -stage.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
