"""mergekit YAML configs for ``slerp`` and ``linear``, resolved to one value per tensor.

The semantics follow mergekit 0.1.5 so that existing configs give the model they gave there:

- a parameter is a number, a list of numbers (a *gradient* interpolated across the layer
  index: layer ``i`` of ``N`` sits at ``i / (N - 1)``), or a list of ``{filter, value}``
  conditions where ``filter`` is a substring of the tensor name (first match wins, a missing
  filter or ``"*"`` matches everything);
- tensors outside the layer stack (embeddings, final norm, ``lm_head``) sit at position 0;
- precedence: the model's own ``parameters`` (per-model parameters such as linear ``weight``),
  then the slice's, then the top-level ``parameters``.

Layer-range slicing (frankenmerges), ``modules``, tokenizer surgery and dtype conversion are
refused with an explanation rather than approximated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plamo_fast.errors import UsageError

SUPPORTED_METHODS = ("slerp", "linear")
LAYER_INDEX = re.compile(r"\.(?:layers|h|blocks|block|layer)\.(\d+)\.")
DTYPE_NAMES = {
    "bfloat16": "BF16",
    "bf16": "BF16",
    "float16": "F16",
    "fp16": "F16",
    "half": "F16",
    "float32": "F32",
    "fp32": "F32",
    "float": "F32",
}


class ConfigError(UsageError):
    """A mergekit config that is malformed or asks for something plamo-fast does not do."""


@dataclass
class ModelEntry:
    path: Path
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class MergeConfig:
    method: str
    models: list[ModelEntry]  # the base model first for slerp
    parameters: dict[str, Any]
    slice_parameters: dict[str, Any]
    dtype: str | None  # safetensors dtype name asked for, if any
    source: Path

    def t_for(self, tensor: str, position: float) -> float:
        return _require(self._resolve("t", tensor, position, None), "t", tensor)

    def weights_for(self, tensor: str, position: float) -> list[float]:
        return [
            _require(self._resolve("weight", tensor, position, m), "weight", tensor, m.path)
            for m in self.models
        ]

    def normalize(self) -> bool:
        value = self._resolve("normalize", "", 0.0, None)
        return True if value is None else bool(value)

    def _resolve(self, name: str, tensor: str, position: float, model: ModelEntry | None):
        scopes = ([model.parameters] if model else []) + [self.slice_parameters, self.parameters]
        for scope in scopes:
            if name in scope:
                value = evaluate_setting(tensor, scope[name], position)
                if value is not None:
                    return value
        return None


def _require(value, name: str, tensor: str, model: Path | None = None) -> float:
    if value is None:
        where = f" of model {model}" if model else ""
        raise ConfigError(f"no value of {name!r}{where} applies to tensor {tensor!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"parameter {name!r} must be a number, got {value!r}")
    return float(value)


def evaluate_setting(tensor: str, setting: Any, position: float) -> Any:
    """One parameter for one tensor at layer position ``position`` in [0, 1] (mergekit rules)."""
    if isinstance(setting, dict):
        setting = [setting]
    if isinstance(setting, (int, float, bool, str)):
        return setting
    if not isinstance(setting, list):
        raise ConfigError(f"unexpected parameter value {setting!r}")
    if not setting:
        return None
    if all(isinstance(e, (int, float, bool, str)) for e in setting):
        if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in setting):
            return setting[int(position * (len(setting) - 1))]
        scaled = position * (len(setting) - 1)
        i0 = int(scaled)
        i1 = min(len(setting) - 1, i0 + 1)
        frac = scaled - i0
        return (1 - frac) * setting[i0] + frac * setting[i1]
    for condition in setting:
        if not isinstance(condition, dict) or "value" not in condition:
            raise ConfigError(
                f"a conditional parameter needs 'value' (and 'filter'): {condition!r}"
            )
        unknown = set(condition) - {"filter", "value"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)} in conditional parameter")
        pattern = condition.get("filter")
        if pattern is None or pattern == "*" or (tensor and pattern in tensor):
            return evaluate_setting(tensor, condition["value"], position)
    return None


def layer_positions(tensor_names: list[str]) -> dict[str, float]:
    """Each tensor's position in the layer stack, as mergekit computes gradients: layer ``i`` of
    ``N`` at ``i / (N - 1)`` (1 when there is a single layer), everything else at 0."""
    indices = {}
    for name in tensor_names:
        match = LAYER_INDEX.search(name)
        if match:
            indices[name] = int(match.group(1))
    count = max(indices.values()) + 1 if indices else 0
    positions = {}
    for name in tensor_names:
        if name in indices:
            positions[name] = indices[name] / (count - 1) if count > 1 else 1.0
        else:
            positions[name] = 0.0
    return positions


def _model_path(reference: Any, config_dir: Path) -> Path:
    if isinstance(reference, dict):  # mergekit's long form {model: {path: ...}}
        reference = reference.get("path", reference.get("model"))
    if not isinstance(reference, str):
        raise ConfigError(f"a model reference must be a path, got {reference!r}")
    if "+" in reference:
        raise ConfigError(
            f"LoRA references ({reference!r}) are not supported: merge the LoRA first"
        )
    for candidate in (Path(reference), config_dir / reference):
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        f"model {reference!r} not found as a local folder (plamo-fast reads local "
        "checkpoints only; download it first, e.g. with `huggingface-cli download`)"
    )


def load_config(path: str | Path) -> MergeConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a mergekit config is a YAML mapping")
    known = {
        "merge_method",
        "models",
        "slices",
        "modules",
        "base_model",
        "parameters",
        "dtype",
        "out_dtype",
        "tokenizer_source",
        "tokenizer",
        "chat_template",
        "name",
    }
    problems = [f"unknown key {k!r}" for k in raw if k not in known]
    method = raw.get("merge_method")
    if method not in SUPPORTED_METHODS:
        problems.append(
            f"merge_method {method!r} is not supported (plamo-fast merges with "
            f"{' or '.join(SUPPORTED_METHODS)})"
        )
    if "modules" in raw:
        problems.append("'modules' configs are not supported")
    if raw.get("tokenizer") or raw.get("tokenizer_source") not in (None, "base"):
        problems.append("tokenizer merging is not supported (the base model's tokenizer is copied)")
    if raw.get("chat_template"):
        problems.append("'chat_template' is not supported (the base model's template is copied)")
    if ("models" in raw) == ("slices" in raw):
        problems.append("exactly one of 'models' or 'slices' must be given")
    config_dir = path.parent

    entries: list[tuple[Any, dict]] = []
    slice_parameters: dict = {}
    if isinstance(raw.get("models"), list):
        for item in raw["models"]:
            if not isinstance(item, dict) or "model" not in item:
                problems.append(f"each entry of 'models' needs 'model': {item!r}")
                continue
            entries.append((item["model"], item.get("parameters") or {}))
    elif isinstance(raw.get("slices"), list):
        slices = raw["slices"]
        if len(slices) != 1:
            problems.append("several output slices (layer stacking) are not supported")
        else:
            out_slice = slices[0] or {}
            slice_parameters = out_slice.get("parameters") or {}
            ranges = set()
            for source in out_slice.get("sources") or []:
                entries.append((source.get("model"), source.get("parameters") or {}))
                ranges.add(tuple(source.get("layer_range") or ()))
            if len(ranges) > 1:
                problems.append(
                    f"sources use different layer ranges {sorted(ranges)}; "
                    "layer-range slicing is not supported"
                )
            if out_slice.get("base_model"):
                raw.setdefault("base_model", out_slice["base_model"])
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))

    models = [ModelEntry(_model_path(ref, config_dir), dict(params)) for ref, params in entries]
    if method == "slerp":
        if len(models) != 2:
            raise ConfigError(f"{path}: slerp merges exactly two models, got {len(models)}")
        if "base_model" not in raw:
            raise ConfigError(f"{path}: slerp needs 'base_model' (the model at t = 0)")
        base = _model_path(raw["base_model"], config_dir).resolve()
        order = [m.path.resolve() for m in models]
        if base not in order:
            raise ConfigError(f"{path}: base_model {raw['base_model']!r} is not one of the models")
        models.sort(key=lambda m: m.path.resolve() != base)
    elif len(models) < 2:
        raise ConfigError(f"{path}: linear merges two or more models, got {len(models)}")

    dtype_name = raw.get("out_dtype") or raw.get("dtype")
    dtype = None
    if dtype_name is not None:
        dtype = DTYPE_NAMES.get(str(dtype_name).lower())
        if dtype is None:
            raise ConfigError(f"{path}: unknown dtype {dtype_name!r}")
    return MergeConfig(
        method=method,
        models=models,
        parameters=raw.get("parameters") or {},
        slice_parameters=slice_parameters,
        dtype=dtype,
        source=path,
    )
