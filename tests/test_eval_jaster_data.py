"""Jaster dataset files: where the few-shot examples come from (jaster_data.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plamo_fast.errors import UsageError
from plamo_fast.eval.jaster_data import read_dataset, read_datasets

OWN_SHOTS = [{"input": f"own {k}", "output": f"o{k}"} for k in range(4)]
TRAIN = [{"input": f"train {k}", "output": f"t{k}"} for k in range(6)]


def _dataset(shots: list[dict], metrics: tuple[str, ...] = ("exact_match",)) -> dict:
    return {
        "instruction": "答えてください。",
        "output_length": 5,
        "metrics": list(metrics),
        "few_shots": shots,
        "samples": [{"input": "q", "output": "a"}],
    }


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def evaluation(tmp_path: Path) -> Path:
    """llm-jp-eval's own layout: evaluation/{train,dev,test}/NAME.json."""
    root = tmp_path / "evaluation"
    _write(root / "test" / "jnli.json", _dataset(OWN_SHOTS))
    _write(root / "dev" / "jnli.json", _dataset(OWN_SHOTS))
    _write(root / "train" / "jnli.json", {**_dataset([]), "samples": TRAIN})
    return root


@pytest.mark.parametrize("split", ["test", "dev"])
def test_llm_jp_eval_layout_takes_the_train_samples(evaluation: Path, split: str):
    # get_few_shot_samples reads parent.parent / "train" / NAME.json and returns samples[:n];
    # the evaluated file's own few_shots key plays no part.
    ds = read_dataset(evaluation / split / "jnli.json", 4)
    assert list(ds.few_shots) == TRAIN
    assert ds.few_shots_from == str(evaluation / "train" / "jnli.json")


def test_a_file_outside_that_layout_uses_its_few_shots(tmp_path: Path):
    path = _write(tmp_path / "out" / "jnli.json", _dataset(OWN_SHOTS))
    _write(tmp_path / "train" / "jnli.json", {**_dataset([]), "samples": TRAIN})
    ds = read_dataset(path, 4)
    assert list(ds.few_shots) == OWN_SHOTS and ds.few_shots_from == str(path)


def test_too_few_train_samples_name_the_train_file(evaluation: Path):
    with pytest.raises(UsageError, match=r"train/jnli\.json has 6"):
        read_dataset(evaluation / "test" / "jnli.json", 8)


def test_exact_match_figure_files_are_accepted(tmp_path: Path):
    _write(tmp_path / "mawps.json", _dataset(OWN_SHOTS, ("exact_match_figure",)))
    [ds] = read_datasets(tmp_path, 0)
    assert ds.metrics == ("exact_match_figure",)
