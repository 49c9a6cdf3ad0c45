"""A tiny model built on the spot, with no download and no torch: a character tokenizer
(``tokenizer.json`` written directly: every character of the corpus is one token, ChatML
template) and a randomly initialised Llama of that vocabulary (numpy,
:func:`plamo_fast.merge.synthetic.write_random_model`)."""

from __future__ import annotations

import json
import string
from pathlib import Path

SPECIAL = ["<s>", "</s>", "<|im_start|>", "<|im_end|>", "<unk>"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def corpus_characters(files: list[str | Path]) -> list[str]:
    """Every character of the text fields of the JSONL records in ``files``, plus printable
    ASCII, sorted."""
    chars = set(string.printable)
    for file in files:
        with open(file, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    _collect(json.loads(line), chars)
    return sorted(chars)


def _collect(value, chars: set[str]) -> None:
    if isinstance(value, str):
        chars.update(value)
    elif isinstance(value, list):
        for v in value:
            _collect(v, chars)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, chars)


def write_char_tokenizer(folder: Path, characters: list[str]) -> int:
    """``tokenizer.json`` (a BPE without merges: one token per character, ``<unk>`` for
    others) and ``tokenizer_config.json`` with the ChatML template; returns the vocab size."""
    vocab = {token: i for i, token in enumerate(SPECIAL)}
    for ch in characters:
        vocab.setdefault(ch, len(vocab))
    added = [
        {
            "id": i,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, token in enumerate(SPECIAL)
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [],
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(
        json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8"
    )
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "<|im_end|>",
        "pad_token": "</s>",
        "unk_token": "<unk>",
        "chat_template": CHATML,
        "model_max_length": 1 << 20,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return len(vocab)


def write_tiny_model(
    folder: Path,
    corpus: list[str | Path],
    *,
    layers: int,
    hidden: int,
    intermediate: int,
    heads: int,
    kv_heads: int,
    max_positions: int,
    seed: int,
) -> dict:
    """The tokenizer and a random float32 Llama in ``folder``; returns its shape."""
    from plamo_fast.merge.synthetic import LlamaShape, write_random_model

    vocab = write_char_tokenizer(folder, corpus_characters(corpus))
    shape = LlamaShape(
        layers=layers,
        hidden=hidden,
        intermediate=intermediate,
        vocab=vocab,
        heads=heads,
        kv_heads=kv_heads,
    )
    write_random_model(folder, shape, seed=seed, dtype="F32")
    eos = SPECIAL.index("<|im_end|>")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(
        max_position_embeddings=max_positions,
        bos_token_id=SPECIAL.index("<s>"),
        eos_token_id=eos,
        pad_token_id=SPECIAL.index("</s>"),
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    generation = {"bos_token_id": 0, "eos_token_id": eos, "pad_token_id": 1}
    (folder / "generation_config.json").write_text(
        json.dumps(generation, indent=2), encoding="utf-8"
    )
    return {"vocab": vocab, "layers": layers, "hidden": hidden, "parameters": _count(shape)}


def _count(shape) -> int:
    import numpy as np

    return int(sum(np.prod(dims) for _, dims in shape.tensors()))
