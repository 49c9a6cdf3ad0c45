"""The slower path for Python-only tokenizers: same labels as the native path on a fast
tokenizer, and a custom tokenizer class (loaded with trust_remote_code, like PLaMo's) packs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from char_tokenizer_code import SOURCE
from chat_fixtures import (
    COMMAND_R7B_STYLE,
    CONVERSATIONS,
    SYSTEM_CONVERSATION,
    TEMPLATES,
    make_tokenizer,
    token_id,
    write_generation_config,
    write_jsonl,
)

from plamo_fast.data.conversation import Conversation
from plamo_fast.data.pack import _Packer, load_tokenizer, pack
from plamo_fast.data.slow_tokenizer import SlowChatTokenizer
from plamo_fast.errors import UsageError

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("style", [*sorted(TEMPLATES), "command_r7b"])
def test_slow_path_labels_equal_the_native_path(tmp_path: Path, style: str):
    """Also with a stop token after another special token (the spans carry that rule)."""
    folder = make_tokenizer(tmp_path / style, TEMPLATES.get(style, COMMAND_R7B_STYLE))
    if style == "command_r7b":
        write_generation_config(folder, token_id(folder, "<|END_OF_TURN_TOKEN|>"))
    native = load_tokenizer(folder)
    slow = load_tokenizer(folder)
    slow.native = SlowChatTokenizer(transformers.AutoTokenizer.from_pretrained(folder))
    conversations = CONVERSATIONS + ([] if style == "gemma" else [SYSTEM_CONVERSATION])
    batch = [
        Conversation(m, [i for i, x in enumerate(m) if x["role"] == "assistant"])
        for m in conversations
    ]
    for (ids_n, labels_n), (ids_s, labels_s) in zip(
        _Packer(native, 4096, "drop", False).encode(batch),
        _Packer(slow, 4096, "drop", False).encode(batch),
        strict=True,
    ):
        assert np.array_equal(ids_n, ids_s)
        assert np.array_equal(labels_n, labels_s)


def custom_tokenizer_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "tokenization_char.py").write_text(SOURCE)
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CharTokenizer",
                "auto_map": {"AutoTokenizer": ["tokenization_char.CharTokenizer", None]},
                "bos_token": "<s>",
                "eos_token": "</s>",
                "chat_template": TEMPLATES["plamo"],
            }
        )
    )
    return folder


def test_python_only_tokenizer_packs_with_a_warning(tmp_path: Path):
    folder = custom_tokenizer_folder(tmp_path)
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": c} for c in CONVERSATIONS])
    with pytest.raises(UsageError, match="--trust-remote-code"):
        pack([data], folder, tmp_path / "o", max_length=512)
    with pytest.warns(UserWarning, match="slower Python tokenizer path"):
        report = pack([data], folder, tmp_path / "o", max_length=512, trust_remote_code=True)
    assert report["examples_packed"] == len(CONVERSATIONS)
    hf = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    import pyarrow.parquet as pq

    for row in pq.read_table(tmp_path / "o" / "data.parquet").to_pylist():
        cursor = 0
        for doc, n in zip(row["doc_ids"], row["seq_lengths"], strict=True):
            expected = hf.apply_chat_template(CONVERSATIONS[doc], tokenize=True, return_dict=True)[
                "input_ids"
            ]
            assert row["input_ids"][cursor : cursor + n] == list(expected)
            trained = [t for t in row["labels"][cursor : cursor + n] if t != -100]
            text = hf.decode(trained)
            assert CONVERSATIONS[doc][-1]["content"] in text
            cursor += n
