"""Running a config: its stages in order, each from the previous stage's output.

First every stage's models and tokenizer are found (``resolve_inputs``: a missing path fails
at once, before torch is imported); before anything is trained every stage's output is checked
(``checkpoints.check_stage_output``).
Then, per stage: its packed rows (``data.raw`` is packed once, by the main process), its
fingerprint, and either the finished output it already has (same fingerprint: skipped; another:
refused, see ``checkpoints.reuse_finished``) or a training run (``loop.run_stage``).
"""

from __future__ import annotations

import json
from pathlib import Path

from plamo_fast.errors import UsageError
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
    A stage whose output was made with the same fingerprint is skipped (a finished stage of a
    resumed run)."""
    if not isinstance(config, RunConfig):
        config = load_config(config, list(overrides), kind=kind)
    if config.kind != kind:
        raise UsageError(f"a {config.kind!r} config cannot run as {kind}")
    resolve_inputs(config)  # before torch is imported: a missing path fails at once
    from plamo_fast.train import checkpoints
    from plamo_fast.train.launch import check_launch, process_state, run_precision

    state = process_state()
    check_launch(state)
    precision = run_precision(config)
    for stage in config.stages:
        checkpoints.check_stage_output(stage, kind)
    outputs: list[Path] = []
    for stage in config.stages:
        rows = load_packed(
            _packed_paths(stage, kind, state),
            need_pairs=kind == "dpo",
            cache_dir=checkpoints.run_folder(Path(stage.output)),
        )
        fingerprint = checkpoints.fingerprint(stage, rows, precision)
        if checkpoints.reuse_finished(stage, fingerprint):
            if state.is_main_process:
                print(f"plamo-fast: stage {stage.name} already done ({stage.output}); skipping")
        else:
            from plamo_fast.train.loop import run_stage

            objective = _objective(kind, stage, config)
            finished = run_stage(
                stage,
                config,
                rows,
                objective,
                precision=precision,
                fingerprint=fingerprint,
                progress=progress,
                stop_after=stop_after,
            )
            del rows, objective
            _free_memory()
            if not finished:
                return outputs  # stopped early (stop_after)
        outputs.append(Path(stage.output))
    return outputs


def resolve_inputs(config: RunConfig) -> None:
    """Find every stage's starting model, reference model and tokenizer before any output,
    packing or accelerate work (:func:`plamo_fast.model_paths.resolve_model`): a missing path
    fails at once with "not found" instead of after a minute of hub retries. A stage without
    ``model`` starts from the previous stage's output, which, like any model named by an
    earlier stage's ``output``, is made by the run and not looked up."""
    from plamo_fast.model_paths import resolve_model

    made: set[Path] = set()

    def find(name: str | None, what: str = "model") -> str | None:
        if name is None or Path(name).expanduser().resolve() in made:
            return name
        return resolve_model(name, what)

    previous: str | None = None
    for stage in config.stages:
        stage.model = find(stage.model or previous)
        stage.reference_model = find(stage.reference_model)
        if stage.data.raw:
            stage.data.tokenizer = find(stage.data.tokenizer, "tokenizer")
        made.add(Path(stage.output).expanduser().resolve())
        previous = stage.output


def _objective(kind: str, stage: StageConfig, config: RunConfig):
    if kind == "sft":
        from plamo_fast.train.sft import SFTObjective

        return SFTObjective()
    from plamo_fast.train.dpo import DPOObjective

    return DPOObjective(stage, config)


def _packed_paths(stage: StageConfig, kind: str, state) -> list[str]:
    """The stage's packed data: ``data.packed`` as given, or ``data.raw`` packed into
    ``OUT.run/packed`` by the main process while the others wait (then all read it). An
    earlier pack there is reused only when it was made from the same raw files, tokenizer and
    settings (``packed.request.json``); otherwise the data is packed again."""
    if stage.data.packed:
        return stage.data.packed
    from plamo_fast.train.checkpoints import run_folder
    from plamo_fast.train.collective import on_main

    folder = run_folder(Path(stage.output)) / "packed"
    on_main(state, lambda: _pack_raw(stage, kind, folder))
    return [str(folder)]


def _pack_raw(stage: StageConfig, kind: str, folder: Path) -> None:
    from plamo_fast.data.pack import pack
    from plamo_fast.outputs import write_json_atomic

    record = folder.parent / "packed.request.json"
    request = _pack_request(stage, kind)
    if folder.is_dir():  # pack renames its output into place when complete
        if record.is_file() and json.loads(record.read_text(encoding="utf-8")) == request:
            return
        print(
            f"plamo-fast: stage {stage.name}: data.raw, its tokenizer or packing settings "
            f"changed since {folder} was packed; packing again"
        )
    pack(
        stage.data.raw,
        stage.data.tokenizer,
        folder,
        max_length=stage.data.max_length,
        kind=kind,
        seed=stage.seed,
        overwrite=True,
    )
    write_json_atomic(record, request)


def _pack_request(stage: StageConfig, kind: str) -> dict:
    """What the stage's pack is made from: the raw files' and tokenizer files' contents, and
    the packing settings."""
    from plamo_fast.data.curation_io import input_digest
    from plamo_fast.data.pack import parse_input
    from plamo_fast.digests import path_digest
    from plamo_fast.train.models import TOKENIZER_FILES

    tokenizer = Path(stage.data.tokenizer)
    files = [tokenizer] if tokenizer.is_file() else [tokenizer / n for n in TOKENIZER_FILES]
    return {
        "raw": [[spec, input_digest(parse_input(spec)[0])] for spec in stage.data.raw],
        "tokenizer": [[str(f), path_digest(f)] for f in files if f.exists()],
        "kind": kind,
        "max_length": stage.data.max_length,
        "seed": stage.seed,
    }


def _free_memory() -> None:
    """Return the finished stage's memory before the next stage loads its model."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
