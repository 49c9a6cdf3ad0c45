"""Running a config: its stages in order, each from the previous stage's output."""

from __future__ import annotations

from pathlib import Path

from plamo_fast.train.config import RunConfig, StageConfig, load_config
from plamo_fast.train.data import load_packed


def train(
    config: RunConfig | str | Path,
    kind: str,
    overrides: list[str] = (),
    *,
    progress: bool = True,
    stop_after: int | None = None,
) -> list[Path]:
    """Run every stage of ``config`` (a path or a loaded config); returns the stage outputs.
    A stage whose output already exists is skipped (a finished stage of a resumed run)."""
    if not isinstance(config, RunConfig):
        config = load_config(config, list(overrides), kind=kind)
    outputs: list[Path] = []
    previous: str | None = None
    for stage in config.stages:
        if not stage.model:
            stage.model = previous
        out = Path(stage.output)
        if (out / "config.json").exists():
            print(f"plamo-fast: stage {stage.name} already done ({out}); skipping")
        else:
            rows = load_packed(_packed_paths(stage, kind), need_pairs=kind == "dpo")
            objective = _objective(kind, stage, config)
            from plamo_fast.train.loop import run_stage

            run_stage(stage, config, rows, objective, progress=progress, stop_after=stop_after)
            del rows, objective
            _free_memory()
            if not (out / "config.json").exists():
                return outputs  # stopped early (stop_after)
        outputs.append(out)
        previous = str(out)
    return outputs


def _objective(kind: str, stage: StageConfig, config: RunConfig):
    if kind == "sft":
        from plamo_fast.train.sft import SFTObjective

        return SFTObjective()
    from plamo_fast.train.dpo import DPOObjective

    return DPOObjective(stage, config)


def _packed_paths(stage: StageConfig, kind: str) -> list[str]:
    if stage.data.packed:
        return stage.data.packed
    from plamo_fast.data.pack import pack

    out = Path(stage.output)
    folder = out.parent / f"{out.name}.run" / "packed"
    if not (folder / "data.parquet").exists():
        pack(
            stage.data.raw,
            stage.data.tokenizer,
            folder,
            max_length=stage.data.max_length,
            kind=kind,
            seed=stage.seed,
            overwrite=True,
        )
    return [str(folder)]


def _free_memory() -> None:
    """Return the finished stage's memory before the next stage loads its model."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
