"""Tokens equal transformers' apply_chat_template; labels equal the independent reference, for
ChatML, Llama 3, Gemma and PLaMo-style templates, with Japanese text and BPE seams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chat_fixtures import (
    CONVERSATIONS,
    DROPS_THINK,
    SYSTEM_CONVERSATION,
    TEMPLATES,
    WITH_GENERATION,
    make_tokenizer,
)

from plamo_fast.data.chat_template import TemplateRewritesContentError, render_with_spans
from plamo_fast.data.pack import _Packer, load_tokenizer
from plamo_fast.data.records import Conversation
from plamo_fast.reference.masking import IGNORE_INDEX, assistant_spans, labels_for

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


def conversations_for(style: str) -> list[list[dict]]:
    return CONVERSATIONS + ([] if style == "gemma" else [SYSTEM_CONVERSATION])


@pytest.fixture(params=sorted(TEMPLATES))
def style(request, tmp_path: Path):
    folder = make_tokenizer(tmp_path / request.param, TEMPLATES[request.param])
    return request.param, folder


@pytest.mark.parametrize("last_turn_only", [False, True])
def test_tokens_and_labels_match_transformers_and_reference(style, last_turn_only):
    name, folder = style
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    bundle = load_tokenizer(folder)
    packer = _Packer(bundle, 4096, "drop", last_turn_only)
    for messages in conversations_for(name):
        trained = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        if last_turn_only:
            trained = trained[-1:]
        ((ids, labels),) = packer.encode([Conversation(messages, trained)])

        expected_ids = hf.apply_chat_template(messages, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        assert ids.tolist() == list(expected_ids), name

        def render(msgs):
            return hf.apply_chat_template(msgs, tokenize=False) if msgs else ""

        text, spans = assistant_spans(render, messages, trained)
        ref_ids, ref_labels = labels_for(raw, text, spans)
        assert ref_ids == ids.tolist()
        assert labels.tolist() == ref_labels, (name, messages)
        trained_text = raw.decode(
            [t for t in ref_labels if t != IGNORE_INDEX], skip_special_tokens=False
        )
        for i in trained:
            assert messages[i]["content"].strip() in trained_text
        untrained = [m for i, m in enumerate(messages) if i not in trained]
        for m in untrained:
            if m["role"] != "assistant" and len(m["content"]) > 8:
                assert m["content"].strip() not in trained_text


END_OF_TURN = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "gemma": "<end_of_turn>"}


def test_end_of_turn_is_trained_and_following_whitespace_is_not(style):
    name, folder = style
    bundle = load_tokenizer(folder)
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    messages = CONVERSATIONS[1]
    ((ids, labels),) = _Packer(bundle, 4096, "drop", False).encode([Conversation(messages, [1, 3])])
    tokens = [raw.id_to_token(int(i)) for i in ids]
    trained = [t for t, label in zip(tokens, labels, strict=False) if label != IGNORE_INDEX]
    if name in END_OF_TURN:
        assert trained.count(END_OF_TURN[name]) == 2
        for k, token in enumerate(tokens):
            if token == END_OF_TURN[name] and k + 1 < len(tokens):
                assert labels[k + 1] == IGNORE_INDEX  # the newline after it is not trained
    else:
        # PLaMo style: the first turn ends at the next header, which is trained (once, with the
        # newline before it); the last turn has nothing after it, so no stop token exists.
        assert trained.count("<|plamo:op|>") == 1
        header_positions = [k for k, t in enumerate(tokens) if t == "<|plamo:op|>"]
        assert labels[header_positions[0]] == IGNORE_INDEX  # the first (user) header
        assert labels[header_positions[2]] != IGNORE_INDEX  # the header after the answer


def test_rewriting_template_is_refused(tmp_path: Path):
    messages = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "<think>hmm</think>A1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2"},
    ]
    with pytest.raises(TemplateRewritesContentError, match="rewrites"):
        render_with_spans(DROPS_THINK, messages, {}, [1, 3])
    # Training only the last turn is fine: its content is rendered verbatim.
    text, spans = render_with_spans(DROPS_THINK, messages, {}, [3])
    assert [text[s:e] for s, e in spans] == ["A2"]


def test_generation_tags_agree_with_transformers_assistant_masks(tmp_path: Path):
    folder = make_tokenizer(tmp_path / "gen", WITH_GENERATION)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    ((ids, labels),) = _Packer(load_tokenizer(folder), 4096, "drop", False).encode(
        [Conversation(CONVERSATIONS[2], [1, 3])]
    )
    out = hf.apply_chat_template(
        CONVERSATIONS[2], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert ids.tolist() == list(out["input_ids"])
    # transformers marks content + <|im_end|> inside {% generation %}: exactly what we train.
    ours = (labels != IGNORE_INDEX).astype(int).tolist()
    assert ours == list(out["assistant_masks"])


def test_identical_user_and_assistant_text_is_masked_right(tmp_path: Path):
    folder = make_tokenizer(tmp_path / "chatml", TEMPLATES["chatml"])
    messages = [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hello!"}]
    ((ids, labels),) = _Packer(load_tokenizer(folder), 4096, "drop", False).encode(
        [Conversation(messages, [1])]
    )
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    trained = np.flatnonzero(labels != IGNORE_INDEX)
    # Only the second "Hello!" (and its end of turn) is trained.
    assert raw.decode(ids[trained].tolist(), skip_special_tokens=False) == "Hello!<|im_end|>"
    first_hello = raw.decode(ids[: trained[0]].tolist(), skip_special_tokens=False)
    assert "user\nHello!" in first_hello


@pytest.mark.parametrize("style", ["chatml", "plamo"])
def test_bpe_seams_across_the_span_edge(tmp_path: Path, style: str):
    """With merges across segment boundaries, tokens straddle span edges: they are trained (they
    carry trained text), tokens still equal transformers', labels equal the reference."""
    folder = make_tokenizer(tmp_path / style, TEMPLATES[style], split_words=False)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    packer = _Packer(load_tokenizer(folder), 4096, "drop", False)
    straddling = 0
    for messages in CONVERSATIONS + [SYSTEM_CONVERSATION]:
        trained = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        ((ids, labels),) = packer.encode([Conversation(messages, trained)])
        assert ids.tolist() == list(
            hf.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        )

        def render(msgs):
            return hf.apply_chat_template(msgs, tokenize=False) if msgs else ""

        text, spans = assistant_spans(render, messages, trained)
        assert labels.tolist() == labels_for(raw, text, spans)[1]
        offsets = raw.encode(text, add_special_tokens=False).offsets
        straddling += sum(1 for s, e in offsets for a, b in spans if s < a < e or s < b < e)
    assert straddling > 0  # the seam case really occurs
