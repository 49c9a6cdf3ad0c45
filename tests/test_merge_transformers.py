"""Merged checkpoints load in transformers and run (needs the [train] extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plamo_fast.cli import main
from plamo_fast.reference import slerp as ref
from plamo_fast.reference.safetensors_io import read_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.torch


def tiny_llama(folder: Path, seed: int, dtype) -> Path:
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    model = transformers.LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(folder, max_shard_size="40KB")
    return folder


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_sharded_merge_loads_and_runs(tmp_path: Path, dtype: str):
    torch_dtype = getattr(torch, dtype)
    a = tiny_llama(tmp_path / "a", 1, torch_dtype)
    b = tiny_llama(tmp_path / "b", 2, torch_dtype)
    assert (a / "model.safetensors.index.json").exists()  # the inputs are sharded too
    out = tmp_path / "merged"
    assert (
        main(
            [
                "merge",
                str(a),
                str(b),
                "--t",
                "0.5",
                "-o",
                str(out),
                "-q",
                "--max-shard-size",
                "50KB",
            ]
        )
        == 0
    )
    assert len(list(out.glob("model-*.safetensors"))) > 2

    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch_dtype)
    ids = torch.tensor([[1, 5, 7, 11, 13]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, 5, 300)
    assert torch.isfinite(logits).all()

    # The loaded weights are the reference SLERP of the inputs.
    ta, tb = read_model(a), read_model(b)
    code = {"bfloat16": "BF16", "float16": "F16"}[dtype]
    state = model.state_dict()
    for name, (_, storage_a) in ta.items():
        expected = ref.slerp(0.5, code, storage_a, tb[name][1])
        got = state[name].contiguous().view(torch.int16).numpy().view(np.uint16)
        want = expected.view(np.uint16)
        assert np.array_equal(got, want), name
