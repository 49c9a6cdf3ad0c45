"""Tokens equal transformers' apply_chat_template; labels equal the independent reference, for
ChatML, Llama 3, Gemma and PLaMo-style templates, with Japanese text and BPE seams; answers
located one by one under templates that trim them (Qwen3, SmolLM3) or re-make their reasoning
block (Qwen3); the stop token trained after other special tokens (Command R7B)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chat_fixtures import (
    COMMAND_R7B_STYLE,
    CONVERSATIONS,
    DROPS_THINK,
    QWEN3_STYLE,
    SMOLLM3_STYLE,
    SYSTEM_CONVERSATION,
    TEMPLATES,
    WITH_GENERATION,
    make_tokenizer,
    token_id,
    trained_runs,
    write_generation_config,
)

from plamo_fast.data.chat_template import (
    TemplateRefusedError,
    TemplateRewritesContentError,
    render_with_spans,
)
from plamo_fast.data.conversation import Conversation
from plamo_fast.data.pack import _Packer, load_tokenizer
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
    with pytest.raises(TemplateRewritesContentError, match="message 1 .*rewrites it"):
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


def reference_labels(folder: Path, template: str, messages, trained, stop_ids=()):
    from plamo_fast.data.chat_template import render

    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    text, spans = assistant_spans(
        lambda m: render(template, m, {"bos_token": "<s>"}), messages, trained
    )
    return labels_for(raw, text, spans, stop_ids)[1]


NEWLINE_ANSWERS = [
    {"role": "user", "content": "富士山について教えて。"},
    {"role": "assistant", "content": "富士山は日本で一番高い山です。\n"},
    {"role": "user", "content": "もっと詳しく。"},
    {"role": "assistant", "content": "\n高さは3776メートルです。\n\n- 静岡県\n- 山梨県\n"},
]


@pytest.mark.parametrize(
    "template,rendered",
    [
        # Qwen3 strips the leading newlines of the last answer only.
        (
            QWEN3_STYLE,
            [
                "富士山は日本で一番高い山です。\n",
                "高さは3776メートルです。\n\n- 静岡県\n- 山梨県\n",
            ],
        ),
        # SmolLM3 strips the leading newlines of every answer, never the trailing ones.
        (
            SMOLLM3_STYLE,
            [
                "富士山は日本で一番高い山です。\n",
                "高さは3776メートルです。\n\n- 静岡県\n- 山梨県\n",
            ],
        ),
    ],
    ids=["qwen3", "smollm3"],
)
def test_each_answer_is_located_by_itself(tmp_path: Path, template: str, rendered: list[str]):
    """One answer ends with a newline and the next starts with one: neither "all as written"
    nor "all stripped" reproduces the rendering, yet each answer is located exactly."""
    text, spans = render_with_spans(template, NEWLINE_ANSWERS, {}, [1, 3])
    assert [text[s:e] for s, e in spans] == rendered
    folder = make_tokenizer(tmp_path / "tok", template)
    ((ids, labels),) = _Packer(load_tokenizer(folder), 4096, "drop", False).encode(
        [Conversation(NEWLINE_ANSWERS, [1, 3])]
    )
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert trained_runs(raw, ids, labels) == [r + "<|im_end|>" for r in rendered]
    assert labels.tolist() == reference_labels(folder, template, NEWLINE_ANSWERS, [1, 3])


REASONING = [
    {"role": "user", "content": "2 + 2 は？"},
    {"role": "assistant", "content": "<think>\n足し算です。\n</think>\n\n4 です。"},
    {"role": "user", "content": "では 3 + 3 は？"},
    {"role": "assistant", "content": "<think>\nこれも足し算。\n</think>\n\n6 です。"},
]


def test_final_reasoning_answer_is_trained_as_the_template_renders_it(tmp_path: Path):
    """Qwen3 re-makes the final answer's <think> block, which renders it unchanged: it is
    trained; an earlier answer whose <think> block the template drops is refused, naming it."""
    with pytest.raises(TemplateRewritesContentError, match="message 1 .*rewrites it") as refusal:
        render_with_spans(QWEN3_STYLE, REASONING, {}, [1, 3])
    assert "'4 です。'" in str(refusal.value) and "--last-turn-only" in str(refusal.value)
    text, spans = render_with_spans(QWEN3_STYLE, REASONING, {}, [3])
    assert [text[s:e] for s, e in spans] == [REASONING[3]["content"]]
    folder = make_tokenizer(tmp_path / "tok", QWEN3_STYLE)
    ((ids, labels),) = _Packer(load_tokenizer(folder), 4096, "drop", True).encode(
        [Conversation(REASONING, [3])]
    )
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert trained_runs(raw, ids, labels) == [REASONING[3]["content"] + "<|im_end|>"]
    assert labels.tolist() == reference_labels(folder, QWEN3_STYLE, REASONING, [3])


def test_a_reasoning_block_the_template_rewrites_is_refused():
    """A final answer written ``<think>R</think>A`` is rendered with newlines added: a real
    rewrite, refused with what changed."""
    messages = REASONING[:3] + [{"role": "assistant", "content": "<think>R</think>6"}]
    with pytest.raises(TemplateRewritesContentError, match="message 3 .*rewrites it"):
        render_with_spans(QWEN3_STYLE, messages, {}, [3])


@pytest.mark.parametrize("stop_set", ["generation_config", "generation_config_list", "eos_token"])
def test_the_stop_token_after_other_special_tokens_is_trained(tmp_path: Path, stop_set: str):
    """Command R7B ends an answer <|END_RESPONSE|><|END_OF_TURN_TOKEN|> and stops on the second:
    training stops after it, not after <|END_RESPONSE|>. The stop set is generation_config's
    eos_token_id (an id or a list), else the tokenizer's eos token."""
    import json

    folder = make_tokenizer(tmp_path / "r7b", COMMAND_R7B_STYLE)
    eot = token_id(folder, "<|END_OF_TURN_TOKEN|>")
    if stop_set == "generation_config":
        write_generation_config(folder, eot)
    elif stop_set == "generation_config_list":
        write_generation_config(folder, [token_id(folder, "</s>"), eot])
    else:
        config = json.loads((folder / "tokenizer_config.json").read_text())
        (folder / "tokenizer_config.json").write_text(
            json.dumps({**config, "eos_token": "<|END_OF_TURN_TOKEN|>"})
        )
    bundle = load_tokenizer(folder)
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    packer = _Packer(bundle, 4096, "drop", False)
    for messages in CONVERSATIONS:
        trained = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        ((ids, labels),) = packer.encode([Conversation(messages, trained)])
        assert trained_runs(raw, ids, labels) == [
            messages[i]["content"] + "<|END_RESPONSE|><|END_OF_TURN_TOKEN|>" for i in trained
        ]
        expected = reference_labels(folder, COMMAND_R7B_STYLE, messages, trained, {eot})
        assert labels.tolist() == expected
    assert bundle.stop_rule.stops[-1] == "<|END_OF_TURN_TOKEN|>"


def test_where_no_stop_token_is_reached_the_first_special_token_ends_the_answer(tmp_path: Path):
    folder = make_tokenizer(tmp_path / "r7b", COMMAND_R7B_STYLE)
    write_generation_config(folder, token_id(folder, "</s>"))  # never rendered
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    messages = CONVERSATIONS[2]
    ((ids, labels),) = _Packer(load_tokenizer(folder), 4096, "drop", False).encode(
        [Conversation(messages, [1, 3])]
    )
    assert trained_runs(raw, ids, labels) == [
        messages[i]["content"] + "<|END_RESPONSE|>" for i in (1, 3)
    ]


@pytest.mark.parametrize(
    "template,error,message",
    [
        (  # drops the answer
            "{% for m in messages %}<{{ m.role }}>{% if m.role == 'user' %}{{ m.content }}"
            "{% endif %}</>{% endfor %}",
            TemplateRewritesContentError,
            "message 1 (assistant) cannot be located in the rendering: the template drops it",
        ),
        (  # rewrites it
            "{% for m in messages %}<{{ m.role }}>{{ m.content | upper }}</>{% endfor %}",
            TemplateRewritesContentError,
            "message 1 (assistant) cannot be located in the rendering: the template rewrites it "
            "(it renders 'FINE.' where the answer reads 'fine.')",
        ),
        (  # repeats it
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ m.content }}</>{% endfor %}",
            TemplateRewritesContentError,
            "message 1 (assistant) cannot be located in the rendering",
        ),
        (  # raises on a role
            "{% for m in messages %}{% if m.role == 'assistant' %}{{ raise_exception('no "
            "answers') }}{% endif %}{% endfor %}",
            TemplateRefusedError,
            "the template refused this conversation: no answers",
        ),
        (  # a TypeError inside the template
            "{% for m in messages %}{{ m.content + 1 }}{% endfor %}",
            TemplateRefusedError,
            "the template refused this conversation: ",
        ),
    ],
    ids=["drops", "rewrites", "repeats", "raises", "type-error"],
)
def test_a_template_that_does_not_render_the_answer_is_refused_saying_what_it_did(
    template, error, message
):
    messages = [{"role": "user", "content": "how?"}, {"role": "assistant", "content": "fine."}]
    with pytest.raises(error) as refusal:
        render_with_spans(template, messages, {}, [1])
    assert str(refusal.value).startswith(message)
