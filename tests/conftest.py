from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plamo_fast.merge.synthetic import SHAPES, write_random_model
from plamo_fast.reference.safetensors_io import write_safetensors
from plamo_fast.reference.slerp import encode


def write_model(
    folder: Path,
    tensors: dict[str, tuple[str, np.ndarray]],
    *,
    vocab_size: int | None = None,
    shards: int = 1,
) -> Path:
    """A model folder from storage arrays, split into ``shards`` files with an index."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "llama"}
    if vocab_size is not None:
        config["vocab_size"] = vocab_size
    (folder / "config.json").write_text(json.dumps(config))
    names = list(tensors)
    if shards == 1:
        write_safetensors(folder / "model.safetensors", tensors)
        return folder
    weight_map = {}
    for i in range(shards):
        part = names[i::shards]
        file_name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(folder / file_name, {n: tensors[n] for n in part})
        weight_map.update({n: file_name for n in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


def random_storage(rng: np.random.Generator, dtype: str, shape, scale: float = 1.0) -> np.ndarray:
    return encode(dtype, (rng.standard_normal(shape) * scale).astype(np.float32))


@pytest.fixture
def tiny_pair(tmp_path: Path) -> tuple[Path, Path]:
    shape = SHAPES["tiny"]
    shard = shape.num_bytes() // 3
    a = write_random_model(tmp_path / "a", shape, seed=1, max_shard_bytes=shard)
    b = write_random_model(tmp_path / "b", shape, seed=2, max_shard_bytes=shard)
    (a / "tokenizer_config.json").write_text('{"model_max_length": 256}')
    return a, b
