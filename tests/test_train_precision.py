"""Which precision a run trains in. On GPU the default keeps fp32 master weights and AdamW
state and computes in bf16 (bf16-mixed): pure bf16 weights lose every update smaller than bf16's
resolution of the weight, which at SFT learning rates is most of them. Shown here on CPU, where
both modes run the same code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from train_fixtures import SFT_RECORDS, packed, tiny_model, torch, write_config

from plamo_fast.errors import PlamoFastError
from plamo_fast.train.launch import resolve_precision


@pytest.mark.parametrize(
    ("dtype", "cuda", "launcher", "deepspeed", "expected"),
    [
        ("auto", False, "no", False, ("no", "float32")),
        ("auto", True, "no", False, ("bf16", "float32")),
        ("auto", True, "bf16", False, ("bf16", "float32")),
        ("auto", False, "bf16", False, ("bf16", "float32")),
        ("float32", True, "no", False, ("no", "float32")),
        ("bf16-mixed", False, "no", False, ("bf16", "float32")),
        ("bfloat16", True, "no", False, ("no", "bfloat16")),
        # DeepSpeed's bf16 mode: a bf16 module, fp32 master weights inside its optimizer.
        ("auto", True, "bf16", True, ("bf16", "bfloat16")),
        ("auto", True, "no", True, ("no", "float32")),
        ("bf16-mixed", True, "bf16", True, ("bf16", "bfloat16")),
    ],
)
def test_precision_table(dtype, cuda, launcher, deepspeed, expected):
    assert resolve_precision(dtype, cuda, launcher, deepspeed) == expected


@pytest.mark.parametrize(
    ("dtype", "launcher", "deepspeed", "message"),
    [
        ("float32", "bf16", False, "asks for mixed_precision bf16 but dtype is float32"),
        ("bfloat16", "bf16", False, "asks for mixed_precision bf16 but dtype is bfloat16"),
        ("bf16-mixed", "no", True, "set mixed_precision: bf16"),
        ("float32", "bf16", True, "dtype float32 but the DeepSpeed launch"),
        ("auto", "fp16", False, "'fp16' is not supported"),
        ("bfloat16", "bf16", True, "not available under DeepSpeed"),
    ],
)
def test_contradicting_precisions_are_refused(dtype, launcher, deepspeed, message):
    with pytest.raises(PlamoFastError, match=message):
        resolve_precision(dtype, True, launcher, deepspeed)


def changed_fraction(start: dict, end: dict) -> float:
    """The fraction of weights that moved (embedding rows of tokens absent from the data get
    no gradient, so the embedding is left out)."""
    changed = total = 0
    for name, before in start.items():
        if "embed_tokens" in name:
            continue
        changed += int((end[name].float() != before.float()).sum())
        total += before.numel()
    return changed / total


def test_bf16_mixed_keeps_small_updates_that_pure_bf16_loses(tmp_path):
    from safetensors.torch import load_file

    model = tiny_model(tmp_path / "model")
    # The starting weights in bf16, so both runs start from the very same values.
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16).to(torch.float32)\
        .save_pretrained(model)  # fmt: skip
    start = load_file(model / "model.safetensors")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    fractions, losses = {}, {}
    for dtype in ("bf16-mixed", "bfloat16", "float32"):
        config = {
            "kind": "sft",
            "plot": False,
            "dtype": dtype,
            "stages": [
                {
                    "name": "s1",
                    "model": str(model),
                    "output": str(tmp_path / dtype),
                    "data": {"packed": [str(data)]},
                    # Adam moves every weight by about lr on its first step: 1e-5 is below
                    # bf16's resolution for weights of this model's size (~0.02 → 2^-8·0.02).
                    "optim": {"lr": 1e-5, "schedule": "constant", "weight_decay": 0.0},
                    "micro_batch_rows": 2,
                    "max_steps": 1,
                }
            ],
        }
        path = write_config(tmp_path / f"{dtype}.yaml", config)
        # A process per run: accelerate fixes the mixed precision once per process.
        subprocess.run([sys.executable, "-m", "plamo_fast.cli", "sft", "-q", str(path)],
                       check=True, capture_output=True)  # fmt: skip
        end = load_file(tmp_path / dtype / "model.safetensors")
        fractions[dtype] = changed_fraction(start, end)
        losses[dtype] = json.loads((tmp_path / dtype / "metrics.jsonl").read_text())["loss"]
        if dtype != "bfloat16":  # master weights are what is saved
            assert {v.dtype for v in end.values()} == {torch.float32}
    assert fractions["float32"] > 0.99
    assert fractions["bf16-mixed"] > 0.99
    assert fractions["bfloat16"] < 0.5, fractions
    assert losses["bf16-mixed"] == pytest.approx(losses["float32"], rel=1e-2)
    assert losses["bf16-mixed"] != losses["float32"]  # autocast did compute in bf16
