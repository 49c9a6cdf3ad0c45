"""Model FLOPs for tokens/s → TFLOP/s → MFU: the parameter count a matmul sees, PaLM's
per-document formula, and the metrics a run logs."""

from __future__ import annotations

import json

import pytest
from train_fixtures import SFT_RECORDS, packed, tiny_model, torch, write_config

from plamo_fast.cli import main
from plamo_fast.train.flops import matmul_parameters, training_flops


@pytest.mark.parametrize("tied", [False, True])
def test_matmul_parameters_of_a_llama(tied):
    from transformers import LlamaConfig, LlamaForCausalLM

    h, i, layers, vocab, heads, kv_heads = 64, 160, 3, 500, 8, 2
    config = LlamaConfig(vocab_size=vocab, hidden_size=h, intermediate_size=i,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, tie_word_embeddings=tied)  # fmt: skip
    model = LlamaForCausalLM(config)
    kv = h // heads * kv_heads
    per_layer = h * h + 2 * h * kv + h * h + 3 * h * i + 2 * h  # q, k, v, o, MLP, two norms
    expected = layers * per_layer + h + vocab * h  # final norm, output head
    assert matmul_parameters(model) == expected
    stored = sum(p.numel() for p in model.parameters())  # a tied matrix is listed once
    assert expected == (stored if tied else stored - vocab * h)


def test_training_flops_follows_palm_per_document():
    n, layers, h = 1000, 2, 16
    assert training_flops(n, layers, h, [10]) == 6 * n * 10 + 12 * layers * h * 100
    # Two packed documents cost what they cost apart: attention never spans them.
    assert training_flops(n, layers, h, [10, 30]) == (
        training_flops(n, layers, h, [10]) + training_flops(n, layers, h, [30])
    )
    assert training_flops(n, layers, h, [40]) > training_flops(n, layers, h, [10, 30])


def test_a_run_logs_tflops_and_mfu(tmp_path):
    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = {
        "kind": "sft",
        "plot": False,
        "peak_tflops": 0.5,
        "stages": [
            {
                "name": "s1",
                "model": str(model),
                "output": str(tmp_path / "out"),
                "data": {"packed": [str(data)]},
                "max_steps": 2,
            }
        ],
    }
    assert main(["sft", "-q", str(write_config(tmp_path / "c.yaml", config))]) == 0
    records = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    from transformers import AutoModelForCausalLM

    params = matmul_parameters(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32))
    for record in records:
        assert record["tflops_per_s"] > 0
        assert record["mfu"] == pytest.approx(record["tflops_per_s"] / 0.5)
        # tokens/s and TFLOP/s describe the same run: their ratio is the FLOPs per token,
        # at least 6 per matmul parameter.
        per_token = record["tflops_per_s"] * 1e12 / record["tokens_per_s"]
        assert 6 * params * 0.5 < per_token < 6 * params * 2
