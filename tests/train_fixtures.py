"""A tiny Llama-style model and tokenizer built in the test, packed SFT/DPO data, configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_fixtures import CHATML, CONVERSATIONS, make_tokenizer, write_jsonl

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

SFT_RECORDS = [{"messages": c} for c in CONVERSATIONS] * 4
DPO_RECORDS = [
    {
        "prompt": [{"role": "user", "content": q}],
        "chosen": [{"role": "assistant", "content": good}],
        "rejected": [{"role": "assistant", "content": bad}],
    }
    for q, good, bad in [
        ("日本の首都はどこですか？", "日本の首都は東京です。", "大阪です。"),
        ("What is 1 + 1?", "1 + 1 = 2", "1 + 1 = 3, I think."),
        ("Say hello.", "Hello! How can I help you today?", "No."),
        ("富士山について教えて。", "富士山は日本で一番高い山です。", "知りません。"),
    ]
] * 2


def tiny_model(folder: Path, seed: int = 0, architecture: str = "llama", **config) -> Path:
    """A 2-layer Llama (or Phi-3, whose residual dropout is an ``nn.Dropout``) with the test
    tokenizer, saved as a Hugging Face folder; ``config`` overrides its config (dropout)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Phi3Config, Phi3ForCausalLM

    make_tokenizer(folder, CHATML)
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    shape = {
        "vocab_size": len(vocab) + 32,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    }
    if architecture == "phi3":  # its default special token ids lie outside this vocabulary
        shape.update(pad_token_id=None, bos_token_id=None, eos_token_id=None)
    config_class, model_class = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "phi3": (Phi3Config, Phi3ForCausalLM),
    }[architecture]
    torch.manual_seed(seed)
    model_class(config_class(**shape, **config)).save_pretrained(folder)
    return folder


def packed(folder: Path, model: Path, records: list, kind: str, max_length: int = 96) -> Path:
    from plamo_fast.data.pack import pack

    data = write_jsonl(folder.parent / f"{folder.name}.jsonl", records)
    pack([str(data)], model, folder, max_length=max_length, kind=kind, progress=False)
    return folder


def write_config(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config))
    return path
