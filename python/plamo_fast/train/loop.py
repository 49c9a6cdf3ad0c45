"""The training loop shared by SFT and DPO, read top to bottom: set up, (resume,) then for each
optimizer step run its micro-batches, clip, step, log, checkpoint.

Layout of a stage whose output is ``OUT``:

- ``OUT.run/``: work in progress: ``checkpoints/step-NNNNNN/`` (a Hugging Face model plus
  ``trainer_state/`` with optimizer, scheduler, RNG and data position), ``metrics.jsonl``,
  DPO ``reference_logps.npz``. A killed run resumes from its latest complete checkpoint.
- ``OUT/``: the finished model (safetensors, config, tokenizer), ``metrics.jsonl`` and
  ``training_curves.png``, renamed into place only when the stage completes. A stage whose
  ``OUT`` exists is skipped, so a multi-stage run resumes at the stage it was in.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.errors import PlamoFastError
from plamo_fast.train.collective import NonFiniteLoss, global_sums
from plamo_fast.train.config import RunConfig, StageConfig
from plamo_fast.train.data import PackedRow, collate, epoch_order
from plamo_fast.train.flops import matmul_parameters, training_flops

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "generation_config.json",
)


class TrainingDiverged(PlamoFastError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


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


def resolve_precision(dtype: str, cuda: bool, launcher: str, deepspeed: bool) -> tuple[str, str]:
    """(accelerate's mixed_precision, the dtype weights are loaded in) for ``RunConfig.dtype``.
    ``launcher`` is the mixed_precision the accelerate launcher asked for ("no" when none):
    it may agree with ``dtype`` but never silently contradict it. Under DeepSpeed its bf16 mode
    decides: the module is bf16 and its optimizer keeps fp32 master weights."""
    if launcher not in ("no", "bf16"):
        raise PlamoFastError(
            f"mixed_precision {launcher!r} is not supported; use bf16 (or no) in the "
            "accelerate config"
        )
    if deepspeed:
        if dtype == "bfloat16":
            raise PlamoFastError(
                "dtype bfloat16 (pure bf16) is not available under DeepSpeed, whose bf16 mode "
                "keeps fp32 master weights: use dtype auto or bf16-mixed"
            )
        if dtype == "auto":
            dtype = "bf16-mixed" if launcher == "bf16" else "float32"
        wants_bf16 = dtype == "bf16-mixed"
        if wants_bf16 != (launcher == "bf16"):
            raise PlamoFastError(
                f"dtype {dtype} but the DeepSpeed launch has mixed_precision {launcher}: set "
                "mixed_precision: bf16 in the accelerate config for bf16, no for float32"
            )
        return launcher, "bfloat16" if wants_bf16 else "float32"
    if dtype == "auto":
        dtype = "bf16-mixed" if cuda or launcher == "bf16" else "float32"
    mixed = "bf16" if dtype == "bf16-mixed" else "no"
    if launcher == "bf16" and mixed != "bf16":
        raise PlamoFastError(
            f"the accelerate config asks for mixed_precision bf16 but dtype is {dtype}; "
            "set dtype: bf16-mixed (or auto on GPU), or mixed_precision: no"
        )
    return mixed, "bfloat16" if dtype == "bfloat16" else "float32"


def load_model(path: str, dtype: str, attn_implementation: str):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=getattr(torch, dtype), attn_implementation=attn_implementation
    )
    model.config.use_cache = False
    return model


def prepare_frozen(accelerator, model):
    """A model that is only run forward (the DPO reference), placed like the policy. Under
    DeepSpeed it gets an engine without optimizer: with ZeRO-3 its parameters stay sharded
    across processes (``from_pretrained`` already partitioned them when zero3_init_flag is set,
    and they cannot run forward outside an engine); with ZeRO-1/2 each process holds a copy."""
    model.requires_grad_(False)
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return model.to(accelerator.device).eval()
    import copy

    import deepspeed

    config = copy.deepcopy(plugin.deepspeed_config)  # "auto" values filled by prepare()
    for key in ("optimizer", "scheduler"):
        config.pop(key, None)
    zero = config.setdefault("zero_optimization", {})
    if zero.get("stage") != 3:
        config["zero_optimization"] = {"stage": 0}
    else:
        for key in ("offload_optimizer",):
            zero.pop(key, None)
    engine, *_ = deepspeed.initialize(model=model, config=config)
    engine.eval()  # DeepSpeedEngine.eval() returns None, unlike Module.eval()
    return engine


def release_frozen(model) -> None:
    """Free a model made by prepare_frozen once it is no longer needed."""
    if hasattr(model, "destroy"):  # a DeepSpeed engine
        model.destroy()
        drop_tensors(model)


def check_packed_attention(model, device, config) -> None:
    """Fail loudly when the model does not isolate packed documents: the logits of a document
    packed after another must equal its logits alone. ``model`` may be wrapped (DDP, ZeRO-3);
    ``config`` is the inner model's."""
    import torch

    vocab = config.vocab_size
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, vocab, (1, 6), generator=gen).to(device)
    b = torch.randint(0, vocab, (1, 5), generator=gen).to(device)
    packed = torch.cat([a, b], dim=1)
    positions = torch.cat([torch.arange(6), torch.arange(5)])[None].to(device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits
        alone = model(input_ids=b, use_cache=False).logits
    model.train(was_training)
    err = (together[0, 6:].float() - alone[0].float()).abs().max().item()
    scale = alone.float().abs().max().item() + 1e-6
    if not math.isfinite(err) or not math.isfinite(scale):
        raise PlamoFastError("the model's logits are not finite: its weights hold NaN or inf")
    if err > 1e-2 * scale + 1e-3:
        raise PlamoFastError(
            f"this model does not keep packed documents apart (max logit difference {err:.3g}): "
            "its attention ignores position_ids-based packing. Use attn_implementation sdpa, "
            "eager or flash_attention_2 with a transformers model, or pack with one document "
            "per row (--max-length per sample)."
        )


class MetricsLog:
    """metrics.jsonl (rank 0), plus TensorBoard / W&B when asked for."""

    def __init__(self, path: Path, resume_step: int, report_to: list[str], enabled: bool):
        self.path = path
        self.enabled = enabled
        self.writers = []
        if not enabled:
            return
        if path.exists():  # keep what the resumed run already logged, nothing after it
            kept = [
                line
                for line in path.read_text().splitlines()
                if line and json.loads(line).get("step", 0) <= resume_step
            ]
            path.write_text("".join(x + "\n" for x in kept))
        if "tensorboard" in report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise PlamoFastError(
                    "report_to tensorboard needs `pip install tensorboard`"
                ) from exc
            self.writers.append(("tb", SummaryWriter(str(path.parent / "tensorboard"))))
        if "wandb" in report_to:
            try:
                import wandb
            except ImportError as exc:
                raise PlamoFastError("report_to wandb needs `pip install wandb`") from exc
            self.writers.append(("wandb", wandb.init(project="plamo-fast", dir=str(path.parent))))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for kind, writer in self.writers:
            scalars = {k: v for k, v in record.items() if isinstance(v, int | float)}
            if kind == "tb":
                for k, v in scalars.items():
                    writer.add_scalar(k, v, record["step"])
            else:
                writer.log(scalars, step=record["step"])

    def close(self) -> None:
        for kind, writer in self.writers:
            writer.close() if kind == "tb" else writer.finish()


def plot_curves(metrics: Path, out: Path) -> bool:
    """A PNG of every logged curve; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    records = [json.loads(x) for x in metrics.read_text().splitlines() if x]
    keys = [
        k
        for k in records[0]
        if k not in ("step", "epoch") and isinstance(records[0][k], float | int)
    ]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.2 * len(keys)), sharex=True, squeeze=False)
    steps = [r["step"] for r in records]
    for ax, key in zip(axes[:, 0], keys, strict=True):
        ax.plot(steps, [r.get(key) for r in records])
        ax.set_ylabel(key, fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return True


def fingerprint(stage: StageConfig, rows: list[PackedRow], precision: tuple[str, str]) -> dict:
    """What a run directory's checkpoints and caches depend on: the stage config (minus what
    may change on resume) and the data itself."""
    import hashlib

    config = asdict(stage)
    for key in ("max_steps", "save_every", "log_every", "name", "keep_checkpoints"):
        config.pop(key)
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.input_ids.tobytes())
        digest.update(row.labels.tobytes())
        digest.update(row.seq_lengths.tobytes())
        if row.pair_ids is not None:
            digest.update(row.pair_ids.tobytes())
    # Precision too: cached reference log-probs and optimizer state were made in it.
    config["precision"] = list(precision)
    record = {"config": config, "data_sha256": digest.hexdigest(), "rows": len(rows)}
    return json.loads(json.dumps(record))  # as stored (tuples become lists)


def check_run_dir(
    run_dir: Path, stage: StageConfig, rows: list[PackedRow], precision: tuple[str, str], main: bool
) -> None:
    """Refuse to resume from a run directory made by another config or other data (its
    checkpoints, reference log-probs and packed data would silently be reused)."""
    current = fingerprint(stage, rows, precision)
    stored = run_dir / "fingerprint.json"
    if stored.exists():
        previous = json.loads(stored.read_text())
        # Run folders from before the precision was recorded carry no "precision" key.
        previous["config"].setdefault("precision", current["config"]["precision"])
        if previous != current:
            changed = [
                f"{k}: stored {previous['config'].get(k)!r}, now {v!r}"
                for k, v in current["config"].items()
                if previous["config"].get(k) != v
            ]
            what = f"config ({'; '.join(changed)})" if changed else "data"
            raise PlamoFastError(
                f"{run_dir} holds a run of stage {stage.name} with a different {what}; "
                "restore the old values to resume (precision: dtype and the launcher's "
                "mixed_precision), or delete the folder to start over"
            )
    elif main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        stored.write_text(json.dumps(current, indent=2))
    if main:
        (run_dir / "config.json").write_text(json.dumps(asdict(stage), indent=2))


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


def check_launch(accelerator) -> None:
    """Refuse a launch where several processes each think they are alone (for example an
    accelerate config whose distributed type does not exist on this device): each would train
    the whole model and write the same files."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise PlamoFastError(
            f"{launched} processes were launched but accelerate set up "
            f"{accelerator.num_processes} ({accelerator.distributed_type}); check the "
            "accelerate config (FSDP and DeepSpeed need GPUs; on CPU use plain multi-CPU)"
        )


def configure_deepspeed(accelerator, stage: StageConfig) -> None:
    """Under DeepSpeed the engine is built from its config, not from a dataloader (the loop
    collates its own micro-batches), and it accumulates and clips gradients itself: write the
    stage's micro-batch size, accumulation and clip into it (a later stage of the same run
    reuses the config the previous stage filled in). A launcher that asks for another clip is
    refused."""
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return
    launcher_clip = plugin.gradient_clipping  # the accelerate config's, never rewritten
    if launcher_clip not in ("auto", None) and float(launcher_clip) != stage.optim.max_grad_norm:
        raise PlamoFastError(
            f"the DeepSpeed config clips gradients at {launcher_clip} but stage {stage.name} "
            f"asks for optim.max_grad_norm={stage.optim.max_grad_norm}; make them agree"
        )
    config = plugin.deepspeed_config
    config["train_micro_batch_size_per_gpu"] = stage.micro_batch_rows
    config["gradient_accumulation_steps"] = stage.grad_accum
    config["train_batch_size"] = (
        stage.micro_batch_rows * stage.grad_accum * accelerator.num_processes
    )
    config["gradient_clipping"] = stage.optim.max_grad_norm


def drop_tensors(engine) -> None:
    """Free the memory of a destroyed DeepSpeed engine. Its ZeRO-3 optimizer stays reachable
    after destroy() (through hooks held by autograd, out of the garbage collector's sight), and
    with it the fp32 master weights, Adam moments and parameter shards: about 12 bytes per
    parameter, which the next stage would need."""
    import torch

    optimizer = getattr(engine, "optimizer", None)
    inner = getattr(optimizer, "optimizer", None)
    if inner is not None:  # the torch optimizer over the fp32 partitions
        inner.state.clear()
        for group in inner.param_groups:
            for param in group["params"]:
                param.grad = None
                param.data = torch.empty(0, dtype=param.dtype, device=param.device)

    def holds_tensors(value, depth: int = 0) -> bool:
        if torch.is_tensor(value):
            return True
        if depth == 2 or not value or not isinstance(value, list | tuple | dict):
            return False
        first = next(iter(value.values())) if isinstance(value, dict) else value[0]
        return holds_tensors(first, depth + 1)

    for holder in (optimizer, engine):
        for name, value in list(vars(holder).items()) if holder is not None else []:
            if holds_tensors(value):
                setattr(holder, name, None)
    for param in engine.module.parameters():
        param.data = torch.empty(0, dtype=param.dtype, device=param.device)
        if hasattr(param, "ds_tensor"):
            param.ds_tensor = None


def save_model(accelerator, model, folder: Path, source_model: str) -> None:
    """A Hugging Face model folder: safetensors weights, config, and the tokenizer files of the
    starting model (gathered from every process under ZeRO-3 / FSDP)."""
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        accelerator.unwrap_model(model).save_pretrained(
            folder, state_dict=state, safe_serialization=True
        )
        for name in TOKENIZER_FILES:
            src = Path(source_model) / name
            if src.is_file() and not (folder / name).exists():
                shutil.copy2(src, folder / name)


def run_stage(
    stage: StageConfig,
    run: RunConfig,
    rows: list[PackedRow],
    objective,
    *,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Train one stage; returns its output folder. ``objective`` supplies the per-step loss
    (see sft.SFTObjective, dpo.DPOObjective). ``stop_after`` ends the run after that many
    steps without finishing the stage (tests use it to simulate a kill)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin, set_seed

    out = Path(stage.output)
    run_dir = out.parent / f"{out.name}.run"
    deepspeed_launch = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    mixed, weights_dtype = resolve_precision(
        run.dtype,
        torch.cuda.is_available(),
        os.environ.get("ACCELERATE_MIXED_PRECISION", "no"),
        deepspeed_launch,
    )
    # The stage's grad_accum decides; an explicit plugin keeps accelerate from taking the
    # launcher's ACCELERATE_GRADIENT_ACCUMULATION_STEPS (`accelerate config` writes 1) instead.
    launcher_accum = os.environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")
    # The scheduler is stepped by us once per optimizer step; accelerate would otherwise step
    # it once per process on every step, running the schedule world-size times too fast.
    accelerator = Accelerator(
        gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=stage.grad_accum),
        step_scheduler_with_optimizer=False,
        mixed_precision=None if deepspeed_launch else mixed,
    )
    if launcher_accum not in (None, str(stage.grad_accum)) and accelerator.is_main_process:
        print(
            f"plamo-fast: stage {stage.name} accumulates {stage.grad_accum} micro-batches "
            f"(grad_accum); the launcher's gradient_accumulation_steps={launcher_accum} is ignored"
        )
    world = accelerator.num_processes
    check_launch(accelerator)
    configure_deepspeed(accelerator, stage)
    set_seed(stage.seed)
    micro_per_epoch = math.ceil(len(rows) / stage.micro_batch_rows)
    # Every row is trained each epoch: the last step is completed with micro-batches from the
    # start of the epoch's order, so a few rows may be seen twice in an epoch, never zero times.
    per_epoch = math.ceil(micro_per_epoch / (stage.grad_accum * world))
    total = stage.max_steps or max(1, int(per_epoch * stage.epochs))
    model = load_model(stage.model, weights_dtype, run.attn_implementation)
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
        accumulated = accelerator.gradient_accumulation_steps  # DeepSpeed may override it
        if accumulated != stage.grad_accum:
            raise PlamoFastError(
                f"stage {stage.name}: accelerate accumulates {accumulated} micro-batches, "
                f"the stage asks for {stage.grad_accum}"
            )
        # After prepare: under ZeRO-3 every process takes part in the probe's forward passes.
        check_packed_attention(model, accelerator.device, accelerator.unwrap_model(model).config)
        check_run_dir(run_dir, stage, rows, (mixed, weights_dtype), accelerator.is_main_process)
        accelerator.wait_for_everyone()

        start_step = 0
        resume = latest_checkpoint(run_dir)
        if resume is not None:
            accelerator.load_state(str(resume / "trainer_state"))
            start_step = json.loads((resume / "progress.json").read_text())["step"]
            if accelerator.is_main_process:
                print(f"plamo-fast: resuming {stage.name} from {resume} (step {start_step})")
        objective.prepare(accelerator, model, rows, run_dir)
        log = MetricsLog(
            run_dir / "metrics.jsonl", start_step, run.report_to, accelerator.is_main_process
        )
        update, stop_bar = progress_bar(
            stage.name, total, transfer=False, show=progress and accelerator.is_main_process
        )
        update(start_step)
        started = time.perf_counter()
        tokens_seen = 0
        flops_done = 0.0
        inner = accelerator.unwrap_model(model)
        flops_args = (
            matmul_parameters(inner),
            inner.config.num_hidden_layers,
            inner.config.hidden_size,
        )
        try:
            for step in range(start_step, total):
                epoch, within = divmod(step, per_epoch)
                order = epoch_order(
                    len(rows), stage.micro_batch_rows, stage.seed, epoch, stage.data.shuffle
                )
                first = (within * world + accelerator.process_index) * stage.grad_accum
                micro = [order[(first + k) % len(order)] for k in range(stage.grad_accum)]
                batches = [collate([rows[i] for i in m]) for m in micro]
                model.train()
                lr = scheduler.get_last_lr()[0]  # the rate this step applies
                try:
                    metrics = objective.step(accelerator, model, batches, micro)
                except NonFiniteLoss as bad:
                    raise TrainingDiverged(
                        f"stage {stage.name}: loss is {bad.value} at step {step + 1}; stopped "
                        f"without applying it. Last good checkpoint: {latest_checkpoint(run_dir)}"
                    ) from None
                # Under DeepSpeed the engine has already clipped and stepped (inside the last
                # backward) and this returns the norm it saw.
                grad_norm = accelerator.clip_grad_norm_(
                    model.parameters(), stage.optim.max_grad_norm
                )
                if grad_norm is not None and not math.isfinite(float(grad_norm)):
                    if not deepspeed_launch:
                        applied = "stopped without applying it"
                    elif optimizer.step_was_skipped:
                        applied = "DeepSpeed skipped the update"
                    else:
                        applied = "DeepSpeed has applied it"
                    raise TrainingDiverged(
                        f"stage {stage.name}: gradient norm is {float(grad_norm)} "
                        f"at step {step + 1}; "
                        f"{applied}. Last good checkpoint: {latest_checkpoint(run_dir)}"
                    )
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                lengths = [doc[2] for b in batches for doc in b["docs"]]
                step_tokens, step_flops = global_sums(
                    accelerator,
                    sum(int(b["input_ids"].numel()) for b in batches),
                    training_flops(*flops_args, lengths),
                )
                tokens_seen += int(step_tokens)
                flops_done += step_flops
                elapsed = time.perf_counter() - started
                record = {
                    "step": step + 1,
                    "epoch": round((step + 1) / per_epoch, 4),
                    "lr": lr,
                    "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                    "tokens_per_s": tokens_seen / elapsed if elapsed > 0 else 0.0,
                    "tflops_per_s": flops_done / elapsed / 1e12 if elapsed > 0 else 0.0,
                    **metrics,
                }
                if run.peak_tflops:
                    record["mfu"] = record["tflops_per_s"] / (run.peak_tflops * world)
                if (step + 1) % stage.log_every == 0 or step + 1 == total:
                    log.write(record)
                update(step + 1, f"loss {record['loss']:.4f}")
                if stage.save_every and (step + 1) % stage.save_every == 0 and step + 1 < total:
                    _save_checkpoint(accelerator, model, run_dir, step + 1, stage.model)
                    _prune_checkpoints(accelerator, run_dir, stage.keep_checkpoints)
                if stop_after is not None and step + 1 - start_step >= stop_after:
                    return out
        finally:
            stop_bar()
            log.close()
        _finish(accelerator, model, run_dir, out, stage, run)
    finally:
        # Stage 2 of a run loads its model into the memory stage 1 held.
        objective.release()
        engine = getattr(accelerator, "deepspeed_engine_wrapped", None)
        accelerator.free_memory()  # destroys a DeepSpeed engine
        if engine is not None:
            drop_tensors(engine.engine)
    return out


def _save_checkpoint(accelerator, model, run_dir: Path, step: int, source_model: str) -> None:
    final = run_dir / "checkpoints" / f"step-{step:06d}"
    partial = final.with_name(final.name + ".partial")
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    save_model(accelerator, model, partial, source_model)
    accelerator.save_state(str(partial / "trainer_state"))
    accelerator.wait_for_everyone()  # every process's state is written before it counts
    if accelerator.is_main_process:
        (partial / "progress.json").write_text(json.dumps({"step": step}))
        os.replace(partial, final)
    accelerator.wait_for_everyone()


def _prune_checkpoints(accelerator, run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints (0: keep all)."""
    if keep == 0 or not accelerator.is_main_process:
        return
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _finish(accelerator, model, run_dir: Path, out: Path, stage: StageConfig, run) -> None:
    staging = run_dir / "final.partial"
    if accelerator.is_main_process and staging.exists():
        shutil.rmtree(staging)
    accelerator.wait_for_everyone()
    save_model(accelerator, model, staging, stage.model)
    if accelerator.is_main_process:
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists():
            shutil.copy2(metrics, staging / "metrics.jsonl")
            if run.plot and not plot_curves(metrics, staging / "training_curves.png"):
                print("plamo-fast: no training_curves.png (pip install matplotlib)")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    accelerator.wait_for_everyone()
