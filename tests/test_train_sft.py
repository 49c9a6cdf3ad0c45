"""SFT on CPU with a tiny model: packed = unpacked loss, accumulation equivalence, the loss
falls, every parameter moves, two stages from the CLI, resume equivalence, guards."""

from __future__ import annotations

import json

import pytest
from train_fixtures import SFT_RECORDS, packed, tiny_model, torch, write_config

from plamo_fast.cli import main


def sft_config(tmp_path, data, model, **stage):
    return {
        "kind": "sft",
        "plot": False,
        "stages": [
            {
                "name": "s1",
                "model": str(model),
                "output": str(tmp_path / "out1"),
                "data": {"packed": [str(data)], "shuffle": False},
                "optim": {"lr": 1e-3, "schedule": "constant"},
                "micro_batch_rows": 1,
                "grad_accum": 2,
                "max_steps": 3,
                **stage,
            }
        ],
    }


def test_two_stage_sft_from_the_cli_loads_in_transformers(tmp_path):
    from transformers import AutoModelForCausalLM

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = sft_config(tmp_path, data, model)
    second = dict(config["stages"][0], name="s2", output=str(tmp_path / "out2"))
    del second["model"]
    config["stages"].append(second)
    path = write_config(tmp_path / "c.yaml", config)
    assert main(["sft", str(path), "-q", "stages.1.max_steps=2"]) == 0
    for name, steps in (("out1", 3), ("out2", 2)):
        out = tmp_path / name
        AutoModelForCausalLM.from_pretrained(out)
        assert (out / "tokenizer.json").exists()
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in lines] == list(range(1, steps + 1))
        assert {"loss", "lr", "grad_norm", "tokens_per_s", "trained_tokens"} <= set(lines[0])
