"""One notion of a conversation for every command: which shapes a record may take, which
messages are trained, and the prompt that sample and pairs read from the same records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from chat_fixtures import write_jsonl

from plamo_fast.data.conversation import (
    BadRecordError,
    Conversation,
    preference_conversations,
    prompt_messages,
    sft_conversation,
)
from plamo_fast.data.curation_io import user_texts

PROMPT = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "Q2"},
]
SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "S"},
        {"from": "human", "value": "Q1"},
        {"from": "gpt", "value": "A1"},
        {"from": "human", "value": "Q2"},
        {"from": "gpt", "value": "A2"},
    ]
}


def test_messages_train_every_answer_or_the_last():
    record = {"messages": [*PROMPT, {"role": "assistant", "content": "A2"}]}
    assert sft_conversation(record).trained == [2, 4]
    assert sft_conversation(record, last_turn_only=True).trained == [4]


def test_prompt_completion_trains_only_the_completion():
    record = {"prompt": PROMPT, "completion": "A2"}
    conversation = sft_conversation(record)
    assert conversation.messages[-1] == {"role": "assistant", "content": "A2"}
    assert conversation.trained == [4]
    completion = [
        {"role": "assistant", "content": "A2"},
        {"role": "user", "content": "Q3"},
        {"role": "assistant", "content": "A3"},
    ]
    assert sft_conversation({"prompt": "Q", "completion": completion}).trained == [1, 3]


def test_preference_pairs_train_only_their_answers():
    chosen, rejected = preference_conversations({"prompt": PROMPT, "chosen": "A", "rejected": "B"})
    assert chosen.trained == rejected.trained == [4]
    assert chosen.messages[:4] == rejected.messages[:4] == PROMPT


def test_sharegpt_is_the_same_conversation():
    conversation = sft_conversation(SHAREGPT)
    assert conversation.messages == [
        {"role": r, "content": c}
        for r, c in (("system", "S"), ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"))
    ] + [{"role": "assistant", "content": "A2"}]
    assert conversation.trained == [2, 4]
    assert prompt_messages(SHAREGPT) == conversation.messages[:4]
    assert [t for _, t in user_texts(SHAREGPT)] == ["Q1", "Q2"]


def test_the_oldest_exchange_goes_first_and_trained_answers_keep_their_status():
    record = {"prompt": PROMPT, "completion": "A2"}
    shorter = sft_conversation(record).without_oldest_exchange()
    assert [m["content"] for m in shorter.messages] == ["S", "Q2", "A2"]
    assert shorter.trained == [2]
    assert shorter.without_oldest_exchange() is None
    both = Conversation(sft_conversation(record).messages, [2, 4]).without_oldest_exchange()
    assert both.trained == [2]


@pytest.mark.parametrize(
    "record,message",
    [
        ({"messages": [{"content": "x"}]}, "messages[0]: the message has no 'role'"),
        ({"messages": [{"role": "user"}]}, "messages[0]: the message has no 'content'"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "unknown role 'bot'"),
        ({"conversations": [{"from": "bot", "value": "x"}]}, "unknown role 'bot'"),
        ({"conversations": [{"from": "human"}]}, "has no 'value'"),
        ({"messages": [{"role": "user", "content": None}]}, "content must be a string"),
        ({"messages": "hi"}, None),  # a string is one user message
        ({"prompt": 3, "completion": "x"}, "prompt: expected a string or a list of messages"),
        ({"text": "x"}, "expected 'messages'"),
        ({"messages": []}, "empty conversation"),
    ],
)
def test_bad_shapes_say_what_is_wrong(record, message):
    if message is None:
        assert sft_conversation(record).messages == [{"role": "user", "content": "hi"}]
        return
    with pytest.raises(BadRecordError, match=re.escape(message)):
        sft_conversation(record)


def test_prompts_for_sampling():
    assert prompt_messages({"prompt": "Q"}) == [{"role": "user", "content": "Q"}]
    record = {"messages": [*PROMPT, {"role": "assistant", "content": "A2"}]}
    assert prompt_messages(record) == PROMPT
    for bad, reason in (
        ({"prompt": "  "}, "empty prompt"),
        ({"messages": [{"role": "assistant", "content": "A"}]}, "no turn to answer"),
        ({"answer": "x"}, "expected 'prompt'"),
        ({"prompt": [{"role": "wizard", "content": "x"}]}, "unknown role 'wizard'"),
    ):
        with pytest.raises(BadRecordError, match=reason):
            prompt_messages(bad)


def test_spin_reads_every_conversation_shape(tmp_path: Path):
    """SPIN's reference answer is the record's last trained answer, whatever its shape."""
    from plamo_fast.sample.pairs import spin_pairs

    sft = write_jsonl(
        tmp_path / "sft.jsonl",
        [SHAREGPT, {"prompt": PROMPT, "completion": "A2"}, {"messages": PROMPT[1:2]}],
    )
    samples = write_jsonl(
        tmp_path / "c.jsonl",
        [{"prompt_messages": prompt_messages(SHAREGPT), "candidates": [{"text": "mine"}]}],
    )
    report = spin_pairs(sft, samples, tmp_path / "spin.jsonl")
    assert report == {"records_in": 3, "pairs_out": 2, "dropped": {"no_assistant_turn": 1}}
    pairs = [json.loads(x) for x in (tmp_path / "spin.jsonl").read_text().splitlines()]
    assert [p["chosen"][0]["content"] for p in pairs] == ["A2", "A2"]
    assert pairs[0]["prompt"] == pairs[1]["prompt"] == PROMPT


def test_the_ignore_index_is_defined_once():
    package = Path(__file__).resolve().parents[1] / "python" / "plamo_fast"
    definitions = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*IGNORE_INDEX\s*(:[^=]+)?=", line)
    ]
    assert definitions == ["data/conversation.py"]


def test_alpaca_and_dolly_records_are_one_user_turn_and_a_trained_answer():
    alpaca = {"instruction": "Summarize.", "input": "A long text.", "output": "Short."}
    conversation = sft_conversation(alpaca)
    assert conversation.messages == [
        {"role": "user", "content": "Summarize.\nA long text."},
        {"role": "assistant", "content": "Short."},
    ]
    assert conversation.trained == [1]
    dolly = {"instruction": "Summarize.", "context": "A long text.", "response": "Short."}
    assert sft_conversation(dolly) == conversation
    # An empty input adds nothing; a system field leads.
    no_input = sft_conversation({"instruction": "Hi.", "input": "", "output": "Hello."})
    assert no_input.messages[0] == {"role": "user", "content": "Hi."}
    with_system = sft_conversation({**alpaca, "system": "Be brief."})
    assert with_system.messages[0] == {"role": "system", "content": "Be brief."}
    assert with_system.trained == [2]
    assert prompt_messages(alpaca) == conversation.messages[:1]


@pytest.mark.parametrize(
    "record,message",
    [
        ({"instruction": "Q"}, "'instruction' without 'output'"),
        ({"instruction": "Q", "input": "a", "context": "b", "output": "A"}, "both 'input'"),
        ({"instruction": " ", "input": "", "output": "A"}, "both empty"),
        ({"instruction": ["Q"], "output": "A"}, "'instruction' must be a string"),
        ({"instruction": "Q", "output": 3}, "'output' must be a string"),
    ],
)
def test_bad_alpaca_records_say_why(record, message):
    with pytest.raises(BadRecordError, match=re.escape(message)):
        sft_conversation(record)
