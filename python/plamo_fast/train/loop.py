"""The training loop shared by SFT and DPO, read top to bottom: set up (accelerator, model,
optimizer, run folder, resume), then for each optimizer step run its micro-batches, clip, step,
log, checkpoint; finally publish the model. The helpers: ``launch`` (precision, accelerator),
``models`` (loading, probe, saving), ``checkpoints`` (run folder, fingerprint, output),
``metrics`` (logs, throughput); the objective (``sft``, ``dpo``) supplies each step's loss."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.errors import PlamoFastError
from plamo_fast.train.checkpoints import (
    claim_run_dir,
    latest_checkpoint,
    publish_model,
    resume,
    run_folder,
    save_checkpoint,
)
from plamo_fast.train.collective import NonFiniteLoss
from plamo_fast.train.config import RunConfig, StageConfig
from plamo_fast.train.data import collate, epoch_order
from plamo_fast.train.launch import check_accumulation, deepspeed_launch, make_accelerator, release
from plamo_fast.train.metrics import MetricsLog, ProgressLines, Throughput
from plamo_fast.train.models import check_packed_attention, load_model


class TrainingDiverged(PlamoFastError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def run_stage(
    stage: StageConfig,
    run: RunConfig,
    rows,
    objective,
    *,
    precision: tuple[str, str],
    fingerprint: dict,
    progress: bool = True,
    stop_after: int | None = None,
) -> bool:
    """Train one stage and publish its output; False when ``stop_after`` steps ended the run
    first (tests use it to simulate a kill). ``objective`` supplies the per-step loss (see
    sft.SFTObjective, dpo.DPOObjective); ``precision`` is launch.run_precision's answer and
    ``fingerprint`` checkpoints.fingerprint's."""
    import torch
    from accelerate.utils import set_seed

    run_dir = run_folder(Path(stage.output))
    mixed, weights_dtype = precision
    accelerator = make_accelerator(stage, mixed)
    world = accelerator.num_processes
    set_seed(stage.seed)
    # Every row is trained each epoch: the last step is completed with micro-batches from the
    # start of the epoch's order, so a few rows may be seen twice in an epoch, never zero times.
    micro_per_epoch = math.ceil(len(rows) / stage.micro_batch_rows)
    per_epoch = math.ceil(micro_per_epoch / (stage.grad_accum * world))
    total = stage.max_steps or max(1, int(per_epoch * stage.epochs))

    model = load_model(
        stage.model,
        weights_dtype,
        run.attn_implementation,
        disable_dropout=objective.disable_dropout,
    )
    if stage.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=stage.optim.lr,
        betas=stage.optim.betas,
        eps=stage.optim.eps,
        weight_decay=stage.optim.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(stage, total))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    try:
        check_accumulation(accelerator, stage)
        # After prepare: under ZeRO-3 every process takes part in the probe's forward passes.
        check_packed_attention(model, accelerator.device, accelerator.unwrap_model(model).config)
        claim_run_dir(accelerator, run_dir, stage, fingerprint)
        start = resume(accelerator, run_dir, stage)
        objective.prepare(accelerator, model, rows, run_dir)

        main = accelerator.is_main_process
        log = MetricsLog(run_dir / "metrics.jsonl", start, run.report_to, main)
        # A terminal gets a progress bar, a job log a line per logged step (log_every).
        terminal = sys.stderr.isatty()
        update, stop_bar = progress_bar(
            stage.name, total, transfer=False, show=progress and main and terminal
        )
        update(start)
        lines = ProgressLines(
            f"{run.kind} {stage.name}", total, start, enabled=progress and main and not terminal
        )
        throughput = Throughput(accelerator, model, run.peak_tflops)
        try:
            for step in range(start, total):
                micro = step_micro_batches(stage, len(rows), step, per_epoch, accelerator)
                batches = [collate([rows[i] for i in m]) for m in micro]
                model.train()
                lr = scheduler.get_last_lr()[0]  # the rate this step applies
                try:
                    metrics = objective.step(accelerator, model, batches, micro)
                except NonFiniteLoss as bad:
                    what = f"loss is {bad.value} at step {step + 1}; stopped without applying it"
                    raise diverged(stage, run_dir, what) from None
                # Under DeepSpeed the engine has already clipped and stepped (inside the last
                # backward) and this returns the norm it saw.
                grad_norm = accelerator.clip_grad_norm_(
                    model.parameters(), stage.optim.max_grad_norm
                )
                check_grad_norm(grad_norm, optimizer, stage, run_dir, step)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)

                record = {
                    "step": step + 1,
                    "epoch": round((step + 1) / per_epoch, 4),
                    "lr": lr,
                    "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                    **throughput.step(accelerator, batches),
                    **metrics,
                }
                if (step + 1) % stage.log_every == 0 or step + 1 == total:
                    log.write(record)
                    lines.write(record)
                update(step + 1, f"loss {record['loss']:.4f}")
                if stage.save_every and (step + 1) % stage.save_every == 0 and step + 1 < total:
                    save_checkpoint(accelerator, model, run_dir, step + 1, stage)
                if stop_after is not None and step + 1 - start >= stop_after:
                    return False
        finally:
            stop_bar()
            log.close()
        publish_model(accelerator, model, stage, run, fingerprint)
        return True
    finally:
        objective.release()
        release(accelerator)


def lr_lambda(stage: StageConfig, total_steps: int) -> Callable[[int], float]:
    o = stage.optim

    def factor(step: int) -> float:
        """The lr multiplier of optimizer step ``step`` (0-based): a linear ramp over
        ``warmup_steps`` steps, then the schedule from 1 at the first step after warmup to
        ``min_lr_ratio`` at the last step."""
        if step < o.warmup_steps:
            return (step + 1) / (o.warmup_steps + 1)
        if o.schedule == "constant":
            return 1.0
        span = max(1, total_steps - 1 - o.warmup_steps)
        progress = min(1.0, (step - o.warmup_steps) / span)
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if o.schedule == "cosine" else 1 - progress
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * shape

    return factor


def step_micro_batches(
    stage: StageConfig, n_rows: int, step: int, per_epoch: int, accelerator
) -> list[list[int]]:
    """The row indices of this process's micro-batches of optimizer step ``step``."""
    epoch, within = divmod(step, per_epoch)
    order = epoch_order(n_rows, stage.micro_batch_rows, stage.seed, epoch, stage.data.shuffle)
    world = accelerator.num_processes
    first = (within * world + accelerator.process_index) * stage.grad_accum
    return [order[(first + k) % len(order)] for k in range(stage.grad_accum)]


def diverged(stage: StageConfig, run_dir: Path, what: str) -> TrainingDiverged:
    return TrainingDiverged(
        f"stage {stage.name}: {what}. Last good checkpoint: {latest_checkpoint(run_dir)}"
    )


def check_grad_norm(grad_norm, optimizer, stage: StageConfig, run_dir: Path, step: int) -> None:
    """Stop on a non-finite gradient norm, saying whether the update was applied."""
    if grad_norm is None or math.isfinite(float(grad_norm)):
        return
    if not deepspeed_launch():
        applied = "stopped without applying it"
    elif optimizer.step_was_skipped:
        applied = "DeepSpeed skipped the update"
    else:
        applied = "DeepSpeed has applied it"
    what = f"gradient norm is {float(grad_norm)} at step {step + 1}; {applied}"
    raise diverged(stage, run_dir, what)
