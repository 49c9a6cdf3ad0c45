"""Typed training configs. A YAML file (plus ``a.b=value`` overrides) becomes dataclasses; unknown
keys, wrong types and bad values are refused, every problem reported at once.

A run is a list of stages executed in order; a stage without ``model`` starts from the previous
stage's output (stage 1 math -> stage 2 general). Each key carries its default and meaning;
``plamo-fast sft --example-config`` prints them (:func:`example_config`).
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from plamo_fast.errors import UsageError


class ConfigError(UsageError):
    """A config that cannot be used; the message lists every problem found."""


def key(default, meaning: str):
    """A config key with its default and its meaning (``--example-config`` prints both)."""
    if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"meaning": meaning})
    return field(default=default, metadata={"meaning": meaning})


@dataclass
class OptimConfig:
    lr: float = key(1e-5, "Peak learning rate (AdamW).")
    weight_decay: float = key(0.0, "AdamW weight decay.")
    betas: tuple[float, float] = key((0.9, 0.95), "AdamW betas.")
    eps: float = key(1e-8, "AdamW epsilon.")
    warmup_steps: int = key(0, "Optimizer steps of linear warmup before the schedule.")
    schedule: str = key(
        "cosine", "After warmup, from lr down to lr * min_lr_ratio at the last step."
    )
    min_lr_ratio: float = key(0.1, "The last step's lr as a fraction of lr (0 to 1).")
    max_grad_norm: float = key(1.0, "Gradients are clipped to this global norm.")


@dataclass
class DataConfig:
    packed: list[str] = key(
        [],
        "Parquet written by `plamo-fast pack` (folders or files), read as they are (DPO: "
        "packed with --kind dpo). Give packed, or raw and tokenizer.",
    )
    raw: list[str] = key(
        [],
        "Or raw JSONL/Parquet records (FILE:N mixtures allowed) that the stage packs itself "
        "into OUT.run/packed with `tokenizer`.",
    )
    tokenizer: str | None = key(None, "Tokenizer folder (or hub name) used to pack `raw`.")
    max_length: int = key(2048, "Packed row length in tokens when packing `raw`.")
    shuffle: bool = key(True, "Shuffle the rows every epoch.")


@dataclass
class StageConfig:
    name: str = key("stage", "The stage's name in logs and messages.")
    model: str | None = key(
        None,
        "Starting model: a Hugging Face folder (config.json, weights, tokenizer) or a hub "
        "name; empty: the previous stage's output (the first stage needs one).",
    )
    output: str = key(
        "",
        "Folder the trained model is published to when the stage finishes (required); "
        "checkpoints and logs go to OUT.run beside it.",
    )
    data: DataConfig = key(DataConfig(), "The stage's training data.")
    optim: OptimConfig = key(OptimConfig(), "Optimizer and learning-rate schedule.")
    epochs: float = key(1.0, "Passes over the rows (fractions allowed); max_steps overrides.")
    max_steps: int | None = key(None, "Optimizer steps to train; null: from epochs.")
    micro_batch_rows: int = key(1, "Packed rows per forward pass (per process).")
    grad_accum: int = key(8, "Micro-batches per optimizer step (per process).")
    seed: int = key(0, "Seed of the row order, the packing of `raw` and the RNGs.")
    save_every: int | None = key(
        None, "Save a resumable checkpoint in OUT.run/checkpoints every N steps; null: never."
    )
    keep_checkpoints: int = key(
        2, "Checkpoints kept in OUT.run/checkpoints (the oldest are deleted; 0 keeps all)."
    )
    log_every: int = key(
        1,
        "Every N steps (and at the last) a record goes to metrics.jsonl and, when stderr is "
        "not a terminal (a cluster job log), one progress line to stderr.",
    )
    gradient_checkpointing: bool = key(
        False, "Recompute activations in the backward pass (less memory, slower)."
    )
    beta: float = key(0.1, "DPO only: the KL strength of the DPO loss.")
    loss: str = key("sigmoid", "DPO only: the preference loss.")
    sft_weight: float = key(
        0.0, "DPO only: weight of an added SFT loss on the chosen responses (0: none)."
    )
    reference: str = key(
        "precomputed",
        "DPO only: reference log-probs computed in one pass before training (precomputed) or "
        "by a frozen copy at every step (live).",
    )
    reference_model: str | None = key(
        None, "DPO only: the reference model; null: the stage's starting model."
    )
    disable_dropout: bool = key(
        True,
        "DPO only: dropout off in policy and reference (TRL's default); false keeps the "
        "model's dropout.",
    )


@dataclass
class RunConfig:
    kind: str = key("sft", "What the config trains; it must match the command.")
    stages: list[StageConfig] = key(
        [],
        "The stages, trained in order; a stage without `model` starts from the previous "
        "stage's output (stage 1 math -> stage 2 general).",
    )
    dtype: str = key(
        "auto",
        "auto: fp32 on CPU; on GPU bf16-mixed, or bf16 under DeepSpeed bf16. bf16-mixed: fp32 "
        "weights and optimizer state, bf16 autocast compute. bfloat16: everything in bf16 "
        "(half the memory, but updates smaller than bf16's resolution of a weight are lost; "
        "not under DeepSpeed, whose bf16 mode keeps fp32 master weights).",
    )
    attn_implementation: str = key(
        "sdpa", "transformers' attention kernel (flash_attention_2 needs flash-attn)."
    )
    report_to: list[str] = key([], "Also log to: tensorboard, wandb (when installed).")
    plot: bool = key(True, "Write training_curves.png beside metrics.jsonl.")
    peak_tflops: float = key(
        0.0,
        "Peak TFLOP/s of one device in the training precision (H100 SXM bf16 dense: 989); "
        "when set, metrics log mfu = achieved model TFLOP/s / (peak x processes).",
    )


CHOICES = {
    "RunConfig.kind": ("sft", "dpo"),
    "RunConfig.dtype": ("auto", "float32", "bf16-mixed", "bfloat16"),
    "RunConfig.attn_implementation": ("sdpa", "eager", "flash_attention_2", "flex_attention"),
    "OptimConfig.schedule": ("cosine", "linear", "constant"),
    "StageConfig.loss": ("sigmoid", "ipo"),
    "StageConfig.reference": ("precomputed", "live"),
}


def load_config(path: str | Path, overrides: list[str] = (), kind: str | None = None) -> RunConfig:
    """Read ``path`` (YAML), apply ``a.b=value`` overrides (``stages.0.optim.lr=1e-4``), check
    everything, and return the config; :class:`ConfigError` lists every problem."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    problems: list[str] = []
    for override in overrides:
        _apply_override(raw, override, problems)
    if kind is not None and raw.setdefault("kind", kind) != kind:
        problems.append(f"kind: the file is a {raw['kind']!r} config, run with `{kind}`")
    config = _build(RunConfig, raw, "", problems)
    # Values that failed their type check were left at their defaults: the value checks still
    # run, so every problem is reported in one go.
    _check(config, problems)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{path}: {len(problems)} problem(s) in the config:\n{listing}")
    return config


def _apply_override(raw: dict, override: str, problems: list[str]) -> None:
    key, sep, text = override.partition("=")
    key = key.removeprefix("--")
    if not sep or not key:
        problems.append(f"override {override!r}: expected KEY=VALUE, e.g. stages.0.optim.lr=1e-4")
        return
    value = yaml.safe_load(text) if text else ""
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                problems.append(f"override {key}: no list item {part!r}")
                return
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            problems.append(f"override {key}: {'.'.join(parts[:i])} is not a mapping")
            return


def _build(cls, raw, where: str, problems: list[str]):
    if not isinstance(raw, dict):
        problems.append(f"{where or 'config'}: expected a mapping, got {type(raw).__name__}")
        return cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            problems.append(f"{where}{key}: unknown key (known: {', '.join(sorted(names))})")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            values[f.name] = _convert(hints[f.name], raw[f.name], f"{where}{f.name}", problems)
    try:
        return cls(**{k: v for k, v in values.items() if v is not _INVALID})
    except TypeError as exc:  # pragma: no cover - guarded by the checks above
        problems.append(f"{where or 'config'}: {exc}")
        return cls()


_INVALID = object()


def _convert(hint, value, where: str, problems: list[str]):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where, problems)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where + ".", problems)
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {value!r}")
            return _INVALID
        return [_convert(args[0], v, f"{where}.{i}", problems) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            problems.append(f"{where}: expected a list of {len(args)} values, got {value!r}")
            return _INVALID
        return tuple(
            _convert(a, v, f"{where}.{i}", problems)
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-5 without a dot as a string
        except ValueError:
            pass
    if (
        hint in (int, str, bool)
        and isinstance(value, hint)
        and not (hint is int and isinstance(value, bool))
    ):
        return value
    problems.append(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
    return _INVALID


def _check(config: RunConfig, problems: list[str]) -> None:
    for key, allowed in CHOICES.items():
        cls_name, attr = key.split(".")
        targets = {
            "RunConfig": [config],
            "StageConfig": config.stages,
            "OptimConfig": [s.optim for s in config.stages],
        }[cls_name]
        for i, target in enumerate(targets):
            value = getattr(target, attr)
            if value not in allowed:
                where = attr if cls_name == "RunConfig" else f"stages.{i}.{attr}"
                if cls_name == "OptimConfig":
                    where = f"stages.{i}.optim.{attr}"
                problems.append(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    if not config.stages:
        problems.append("stages: at least one stage is needed")
    for i, stage in enumerate(config.stages):
        at = f"stages.{i}"
        if i == 0 and not stage.model:
            problems.append(f"{at}.model: the first stage needs a starting model")
        if not stage.output:
            problems.append(f"{at}.output: needed (the folder the stage's model is saved to)")
        if bool(stage.data.packed) == bool(stage.data.raw):
            problems.append(f"{at}.data: give exactly one of packed or raw")
        if stage.data.raw and not stage.data.tokenizer:
            problems.append(f"{at}.data.tokenizer: needed to pack raw data")
        for name in ("micro_batch_rows", "grad_accum", "log_every"):
            if getattr(stage, name) < 1:
                problems.append(f"{at}.{name}: must be at least 1")
        if stage.epochs <= 0 and stage.max_steps is None:
            problems.append(f"{at}.epochs: must be positive (or set max_steps)")
        if stage.max_steps is not None and stage.max_steps < 1:
            problems.append(f"{at}.max_steps: must be at least 1")
        if stage.keep_checkpoints < 0:
            problems.append(f"{at}.keep_checkpoints: must be 0 (keep all) or more")
        if stage.save_every is not None and stage.save_every < 1:
            problems.append(f"{at}.save_every: must be at least 1")
        if stage.optim.lr <= 0 or not 0 <= stage.optim.min_lr_ratio <= 1:
            problems.append(f"{at}.optim: lr must be positive and min_lr_ratio in [0, 1]")
        if stage.seed < 0:
            problems.append(f"{at}.seed: must be non-negative")
        if stage.optim.max_grad_norm <= 0 or stage.optim.warmup_steps < 0:
            problems.append(f"{at}.optim: max_grad_norm must be positive, warmup_steps >= 0")
        if stage.beta <= 0:
            problems.append(f"{at}.beta: must be positive")
        if stage.sft_weight < 0:
            problems.append(f"{at}.sft_weight: must be non-negative")
    outputs = [Path(s.output).resolve() if s.output else None for s in config.stages]
    given = [o for o in outputs if o]
    if len(set(given)) != len(given):
        problems.append("stages: two stages write the same output folder")
    for i, inner in enumerate(outputs):
        for j, outer in enumerate(outputs):
            if inner and outer and inner != outer and inner.is_relative_to(outer):
                problems.append(f"stages.{i}.output: inside stages.{j}.output, which replaces it")
    for target in config.report_to:
        if target not in ("tensorboard", "wandb"):
            problems.append(f"report_to: {target!r} is not one of tensorboard, wandb")
    if config.peak_tflops < 0:
        problems.append("peak_tflops: must be non-negative (0: no MFU)")


# The keys without a usable default that the example config fills in, per command.
EXAMPLE_PATHS = {
    "sft": {"model": "models/base", "output": "runs/sft", "packed": ["packed/sft"]},
    "dpo": {"model": "runs/sft", "output": "runs/dpo", "packed": ["packed/pairs"]},
}


def example_run(kind: str) -> RunConfig:
    """The config ``--example-config`` prints: every default, one stage, and the paths of
    :data:`EXAMPLE_PATHS`."""
    paths = EXAMPLE_PATHS[kind]
    stage = StageConfig(
        model=paths["model"], output=paths["output"], data=DataConfig(packed=paths["packed"])
    )
    return RunConfig(kind=kind, stages=[stage])


def example_config(kind: str) -> str:
    """A commented YAML config for ``kind`` with every key, its default and its meaning,
    generated from the dataclasses above (so it lists exactly what :func:`load_config`
    reads)."""
    lines = [
        f"# plamo-fast {kind}: every config key at its default; replace each (example path).",
        f"# Run: plamo-fast {kind} THIS.yaml [KEY=VALUE ...], e.g. stages.0.optim.lr=2e-5.",
        "# Add stages to the list to train them in order.",
    ]
    _render(example_run(kind), "", lines, set(EXAMPLE_PATHS[kind]))
    return "\n".join(lines) + "\n"


def _render(obj, indent: str, lines: list[str], examples: set[str]) -> None:
    choices = {k.split(".")[1]: v for k, v in CHOICES.items() if k.startswith(type(obj).__name__)}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        meaning = f.metadata["meaning"]
        if f.name in choices:
            meaning += f" One of: {', '.join(choices[f.name])}."
        if f.name in examples:
            meaning += " (example path)"
        lines.extend(f"{indent}# {x}" for x in _wrap(meaning, 96 - len(indent)))
        if dataclasses.is_dataclass(value):
            lines.append(f"{indent}{f.name}:")
            _render(value, indent + "  ", lines, examples)
        elif value and isinstance(value, list) and dataclasses.is_dataclass(value[0]):
            lines.append(f"{indent}{f.name}:")
            for item in value:
                lines.append(f"{indent}  -")
                _render(item, indent + "    ", lines, examples)
        else:
            lines.append(f"{indent}{f.name}: {_yaml_value(value)}")


def _yaml_value(value) -> str:
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("...").strip()


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)
