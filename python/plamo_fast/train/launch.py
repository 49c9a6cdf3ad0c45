"""What the launch decides: the precision, the Accelerator (its accumulation, DeepSpeed's config,
a launch it did not distribute), and giving its memory back when a stage ends."""

from __future__ import annotations

import os

from plamo_fast.errors import PlamoFastError
from plamo_fast.train.config import RunConfig, StageConfig


def deepspeed_launch() -> bool:
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


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


def run_precision(run: RunConfig) -> tuple[str, str]:
    """:func:`resolve_precision` for this launch (its device and accelerate settings)."""
    import torch

    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    return resolve_precision(run.dtype, torch.cuda.is_available(), launcher, deepspeed_launch())


def process_state():
    """accelerate's PartialState (which processes there are), made as the Accelerator will
    make it: on CPU when ACCELERATE_USE_CPU is set."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def check_launch(state) -> None:
    """Refuse a launch where several processes each think they are alone (for example an
    accelerate config whose distributed type does not exist on this device): each would train
    the whole model and write the same files. ``state``: accelerate's PartialState or
    Accelerator."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and state.num_processes != launched:
        raise PlamoFastError(
            f"{launched} processes were launched but accelerate set up "
            f"{state.num_processes} ({state.distributed_type}); check the "
            "accelerate config (FSDP and DeepSpeed need GPUs; on CPU use plain multi-CPU)"
        )


def make_accelerator(stage: StageConfig, mixed: str):
    """The stage's Accelerator: its own grad_accum (an explicit plugin keeps accelerate from
    taking the launcher's ACCELERATE_GRADIENT_ACCUMULATION_STEPS, which `accelerate config`
    writes as 1: ignored with a notice), the scheduler stepped by the loop once per optimizer
    step (accelerate would step it once per process, running the schedule world-size times too
    fast), and under DeepSpeed the stage's batch shape and clip written into its config."""
    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin

    deepspeed = deepspeed_launch()
    accelerator = Accelerator(
        gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=stage.grad_accum),
        step_scheduler_with_optimizer=False,
        mixed_precision=None if deepspeed else mixed,
    )
    launcher_accum = os.environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")
    if launcher_accum not in (None, str(stage.grad_accum)) and accelerator.is_main_process:
        print(
            f"plamo-fast: stage {stage.name} accumulates {stage.grad_accum} micro-batches "
            f"(grad_accum); the launcher's gradient_accumulation_steps={launcher_accum} is ignored"
        )
    configure_deepspeed(accelerator, stage)
    return accelerator


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


def check_accumulation(accelerator, stage: StageConfig) -> None:
    """After prepare(): DeepSpeed may have set another accumulation than the stage's."""
    accumulated = accelerator.gradient_accumulation_steps
    if accumulated != stage.grad_accum:
        raise PlamoFastError(
            f"stage {stage.name}: accelerate accumulates {accumulated} micro-batches, "
            f"the stage asks for {stage.grad_accum}"
        )


def release(accelerator) -> None:
    """Give the stage's memory back (stage 2 of a run loads its model into what stage 1 held):
    accelerate's references, and a destroyed DeepSpeed engine's tensors."""
    from plamo_fast.train.models import drop_tensors

    engine = getattr(accelerator, "deepspeed_engine_wrapped", None)
    accelerator.free_memory()  # destroys a DeepSpeed engine
    if engine is not None:
        drop_tensors(engine.engine)
