"""Jaster dataset files (llm-jp-eval's evaluation format), read and checked before any request.

A dataset file is JSON: ``instruction`` (str), ``output_length`` (int > 0), ``metrics`` (names
from :data:`plamo_fast.eval.jaster_metrics.METRICS`), ``few_shots`` and ``samples`` (lists of
``{"input": str, "output": str}``); other keys are ignored. ``--data`` names one such file or a
folder of them (``NAME.json``; JSON files holding none of these keys, such as jaster-convert's
``SOURCES.json``, are skipped).

Few-shot examples: a file in llm-jp-eval's own layout (``evaluation/test/NAME.json`` or
``evaluation/dev/NAME.json`` beside ``evaluation/train/NAME.json``) takes them from the train
file's first samples and ignores its own ``few_shots`` key, as llm-jp-eval's
``get_few_shot_samples`` does (``parent.parent / "train" / NAME.json``, ``samples[:n]``; copies of
it: wandb/llm-leaderboard ``scripts/evaluator/evaluate_utils/to_be_deprecated.py`` @06c718a3, and
the llm-jp-eval evaluator that ``scripts/mmlu_eval.py`` @6e5cb557 of the same repository adapts).
Any other file (jaster-convert's output) uses its ``few_shots`` key, which jaster-convert fills
from the train split the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.digests import sha256_file
from plamo_fast.errors import InvalidFileError, UsageError
from plamo_fast.eval.jaster_metrics import METRICS

_KEYS = ("instruction", "output_length", "metrics", "few_shots", "samples")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity
class Dataset:
    name: str
    path: Path
    sha256: str
    instruction: str
    output_length: int
    metrics: tuple[str, ...]
    few_shots: tuple[dict, ...]
    samples: tuple[dict, ...]
    few_shots_from: str  # the file the few-shots came from


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidFileError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise InvalidFileError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _pairs(path: Path, data: dict, key: str) -> tuple[dict, ...]:
    items = data.get(key, [] if key == "few_shots" else None)
    if not isinstance(items, list):
        raise InvalidFileError(f"{path}: {key!r} must be a list of {{input, output}} records")
    for k, item in enumerate(items):
        for field in ("input", "output"):
            if not isinstance(item, dict) or not isinstance(item.get(field), str):
                raise InvalidFileError(f"{path}: {key}[{k}]: {field!r} must be a string")
    return tuple({"input": x["input"], "output": x["output"]} for x in items)


def _check(path: Path, data) -> None:
    if not isinstance(data, dict):
        raise InvalidFileError(f"{path}: expected a JSON object with {', '.join(_KEYS)}")
    if not isinstance(data.get("instruction"), str):
        raise InvalidFileError(f"{path}: 'instruction' must be a string")
    length = data.get("output_length")
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise InvalidFileError(f"{path}: 'output_length' must be a positive integer")
    metrics = data.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise InvalidFileError(f"{path}: 'metrics' must be a non-empty list")
    for metric in metrics:
        if metric not in METRICS:
            raise InvalidFileError(
                f"{path}: metric {metric!r} is not supported (supported: {', '.join(METRICS)})"
            )


def read_dataset(path: Path, shots_needed: int) -> Dataset:
    """One dataset file, checked; its few-shots resolved (at least ``shots_needed``)."""
    path = Path(path)
    data = _load_json(path)
    _check(path, data)
    samples = _pairs(path, data, "samples")
    if not samples:
        raise InvalidFileError(f"{path}: 'samples' is empty")
    few_shots, source = _pairs(path, data, "few_shots"), path
    train = path.parent.parent / "train" / path.name
    if path.parent.name in ("test", "dev") and train.is_file():
        few_shots, source = _pairs(train, _load_json(train), "samples"), train
    if len(few_shots) < shots_needed:
        raise UsageError(
            f"{path}: {shots_needed}-shot needs {shots_needed} few-shot examples, {source} has "
            f"{len(few_shots)} (jaster-convert needs the upstream training file for few-shots)"
        )
    return Dataset(
        name=path.stem,
        path=path,
        sha256=sha256_file(path),
        instruction=data["instruction"],
        output_length=data["output_length"],
        metrics=tuple(data["metrics"]),
        few_shots=few_shots,
        samples=samples,
        few_shots_from=str(source),
    )


def _is_dataset_file(path: Path) -> bool:
    data = _load_json(path)
    return isinstance(data, dict) and any(k in data for k in _KEYS)


def read_datasets(data: Path, shots_needed: int, names: list[str] | None = None) -> list[Dataset]:
    """The datasets of ``data`` (a dataset file or a folder of them), sorted by name;
    ``names`` keeps only those."""
    data = Path(data)
    if data.is_file():
        files = [data]
    elif data.is_dir():
        files = [p for p in sorted(data.glob("*.json")) if _is_dataset_file(p)]
    else:
        raise UsageError(f"--data {data}: no such file or folder")
    if names:
        wanted = set(names)
        unknown = sorted(wanted - {p.stem for p in files})
        if unknown:
            raise UsageError(f"--data {data}: no dataset {unknown[0]!r}")
        files = [p for p in files if p.stem in wanted]
    if not files:
        raise UsageError(f"--data {data}: no jaster dataset file (NAME.json)")
    return [read_dataset(p, shots_needed) for p in files]
