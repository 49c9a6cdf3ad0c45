"""``pack`` through the real chat templates of 29 models (``../shared/chat_templates``), each
with a tiny byte-level tokenizer that knows the model's special tokens and its stop set.

For every template: no crash; every packed document's labels equal the independent reference
(spans by prefix rendering, the labelling rule token by token, the model's stop set), so every
trained run is exactly an answer as the template renders it, followed only by special tokens and
whitespace; every refusal is one record's, naming FILE:LINE, the message and what changed.
Qwen3, SmolLM3 and Gemma 2 (system messages refused, skipped with --skip-bad) pack exactly.
Skipped when ../shared is absent; each defect is also covered by an inline template in
test_pack_masks.py and test_pack_cli.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from chat_fixtures import packed_documents, write_jsonl

from plamo_fast.data.chat_template import render
from plamo_fast.data.conversation import IGNORE_INDEX, sft_conversation
from plamo_fast.data.pack import pack
from plamo_fast.reference.masking import assistant_spans, labels_for

tokenizers = pytest.importorskip("tokenizers")
pq = pytest.importorskip("pyarrow.parquet")

TEMPLATES = Path(__file__).resolve().parents[2] / "shared" / "chat_templates"


@dataclass(frozen=True)
class Model:
    bos: str | None
    eos: str
    special: tuple[str, ...]
    # generation_config.json's eos_token_id, as tokens; None: the model's stop is its eos token.
    stops: tuple[str, ...] | None = None


CHATML = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
LLAMA3 = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
          "<|eot_id|>", "<|eom_id|>", "<|python_tag|>")  # fmt: skip
DEEPSEEK = ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
            "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
            "<｜tool▁call▁end｜>", "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>",
            "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>", "<｜tool▁sep｜>")  # fmt: skip
PHI3 = ("<s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>")
MISTRAL = ("<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
           "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]")  # fmt: skip
GRANITE = ("<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>", "<|tool_call|>")

# Special tokens as the models' tokenizers define them; stop sets from SOURCE.md.
MODELS = {
    "Apertus-8B-Instruct": Model("<s>", "<|assistant_end|>", (
        "<s>", "<|system_start|>", "<|system_end|>", "<|developer_start|>", "<|developer_end|>",
        "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
        "<|inner_prefix|>", "<|inner_suffix|>", "<|tools_prefix|>", "<|tools_suffix|>")),
    "ByteDance-Seed-OSS": Model("<seed:bos>", "<seed:eos>", (
        "<seed:bos>", "<seed:eos>", "<seed:pad>", "<seed:think>", "</seed:think>",
        "<seed:tool_call>", "</seed:tool_call>", "<seed:cot_budget_reflect>",
        "</seed:cot_budget_reflect>")),
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use": Model("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", (
        "<BOS_TOKEN>", "<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>", "<|USER_TOKEN|>",
        "<|CHATBOT_TOKEN|>", "<|SYSTEM_TOKEN|>", "<|START_RESPONSE|>", "<|END_RESPONSE|>",
        "<|START_THINKING|>", "<|END_THINKING|>", "<|START_ACTION|>", "<|END_ACTION|>",
        "<|START_TOOL_RESULT|>", "<|END_TOOL_RESULT|>"), ("<|END_OF_TURN_TOKEN|>",)),
    "GLM-4.6": Model(None, "<|endoftext|>", (
        "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
        "<|endoftext|>"), ("<|endoftext|>", "<|user|>", "<|observation|>")),
    "HuggingFaceTB-SmolLM3-3B": Model("<|begin_of_text|>", "<|im_end|>",
                                      ("<|begin_of_text|>", *CHATML), ("<|im_end|>",)),
    "Mistral-Small-3.2-24B-Instruct-2506": Model("<s>", "</s>", (
        *MISTRAL, "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[ARGS]", "[CALL_ID]", "[IMG]")),
    "NVIDIA-Nemotron-Nano-v2": Model("<s>", "<SPECIAL_12>", (
        "<s>", "<SPECIAL_10>", "<SPECIAL_11>", "<SPECIAL_12>")),
    "Qwen-QwQ-32B": Model(None, "<|im_end|>", CHATML),
    "Qwen-Qwen2.5-7B-Instruct": Model(None, "<|im_end|>", CHATML, ("<|im_end|>", "<|endoftext|>")),
    "Qwen-Qwen3-0.6B": Model(None, "<|im_end|>", CHATML, ("<|im_end|>", "<|endoftext|>")),
    "chujiezheng-falcon-instruct": Model(None, "<|endoftext|>", ("<|endoftext|>",)),
    "chujiezheng-llama-2-chat": Model("<s>", "</s>", ("<s>", "</s>")),
    "chujiezheng-mistral-instruct": Model("<s>", "</s>", ("<s>", "</s>", "[INST]", "[/INST]")),
    "chujiezheng-phi-3": Model("<s>", "<|endoftext|>", PHI3,
                               ("<|endoftext|>", "<|assistant|>", "<|end|>")),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": Model(DEEPSEEK[0], DEEPSEEK[1], DEEPSEEK,
                                                      (DEEPSEEK[1],)),
    "deepseek-ai-DeepSeek-V3.1": Model(DEEPSEEK[0], DEEPSEEK[1], DEEPSEEK),
    "google-gemma-2-2b-it": Model("<bos>", "<eos>", (
        "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"), ("<eos>", "<end_of_turn>")),
    "google-gemma-4-31B-it": Model("<bos>", "<eos>", (
        "<bos>", "<eos>", "<|turn>", "<turn|>", "<|think|>", "<|channel>", "<channel|>", "<|tool>",
        "<tool|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>",
        "<|image|>", "<|audio|>", "<|video|>"), ("<eos>", "<turn|>", "<|tool_response>")),
    "ibm-granite-granite-3.3-2B-Instruct": Model(None, "<|end_of_text|>", (
        *GRANITE, "<|start_of_cite|>", "<|end_of_cite|>")),
    "ibm-granite-granite-4.0": Model(None, "<|end_of_text|>", GRANITE, ("<|end_of_text|>",)),
    "llm-jp-3-instruct": Model("<s>", "</s>", ("<s>", "</s>")),
    "meetkai-functionary-medium-v3.2": Model("<|begin_of_text|>", "<|eot_id|>", LLAMA3),
    "meta-llama-Llama-3.1-8B-Instruct": Model("<|begin_of_text|>", "<|eot_id|>", LLAMA3,
                                              ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")),
    "meta-llama-Llama-3.2-3B-Instruct": Model("<|begin_of_text|>", "<|eot_id|>", LLAMA3,
                                              ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")),
    "microsoft-Phi-3.5-mini-instruct": Model("<s>", "<|endoftext|>", PHI3,
                                             ("<|end|>", "<|assistant|>", "<|endoftext|>")),
    "mistralai-Mistral-Nemo-Instruct-2407": Model("<s>", "</s>", MISTRAL),
    "moonshotai-Kimi-K2": Model("[BOS]", "[EOS]", (
        "[BOS]", "[EOS]", "<|im_system|>", "<|im_user|>", "<|im_assistant|>", "<|im_middle|>",
        "<|im_end|>", "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>",
        "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>",
        "<|media_start|>", "<|media_content|>", "<|media_end|>", "<|media_pad|>"),
        ("<|im_end|>",)),
    "openai-gpt-oss-120b": Model("<|startoftext|>", "<|return|>", (
        "<|startoftext|>", "<|endoftext|>", "<|start|>", "<|end|>", "<|message|>", "<|channel|>",
        "<|constrain|>", "<|return|>", "<|call|>"), ("<|return|>", "<|endoftext|>", "<|call|>")),
    "pfnet-plamo-2-translate": Model("<|plamo:bos|>", "<|plamo:op|>", (
        "<|plamo:bos|>", "<|plamo:op|>")),
}  # fmt: skip


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


THINK_1 = "<think>\n2 + 2 を計算する。\n</think>\n\n2 + 2 = 4 です。"
THINK_2 = "<think>\nこれも足し算。3 + 3 = 6。\n</think>\n\n答えは 6 です。"
# SFT records as users write them; the index is the line number minus one.
RECORDS = [
    {"messages": [user("日本の首都はどこですか？"), assistant("日本の首都は東京です。")]},
    {"messages": [
        user("Say hello."), assistant("Hello! How can I help you today?"),
        user("Now in Japanese, please."), assistant("こんにちは！ご用件は何ですか？"),
        user("Thanks."), assistant("どういたしまして。"),
    ]},
    {"messages": [
        {"role": "system", "content": "You are a concise assistant. 簡潔に答えてください。"},
        user("富士山の高さは？"), assistant("3776 メートルです。"),
        user("どこにありますか？"), assistant("静岡県と山梨県の境です。"),
    ]},
    {"messages": [
        user("Write a list."), assistant("Sure.\n"),
        user("Go on."), assistant("\nHere it is:\n\n- apples\n- pears\n"),
    ]},
    {"messages": [user("2 + 2 は？"), assistant(THINK_1)]},
    {"messages": [user("2 + 2 は？"), assistant(THINK_1), user("3 + 3 は？"), assistant(THINK_2)]},
    {"prompt": [user("Q: 1 + 1?"), assistant("2"), user("Q: 2 + 3?")], "completion": "5"},
    {"conversations": [
        {"from": "human", "value": "Translate 'cat' into Japanese."},
        {"from": "gpt", "value": "猫"},
        {"from": "human", "value": "And 'dog'?"},
        {"from": "gpt", "value": "犬"},
    ]},
]  # fmt: skip
SYSTEM_RECORDS = {2}
EARLIER_THINK_RECORDS = {5}
# Exactly what pack does with the models the issue names: (--last-turn-only, refused records).
EXACT = {
    "Qwen-Qwen3-0.6B": {False: {5: "template_rewrites"}, True: {}},
    "HuggingFaceTB-SmolLM3-3B": {False: {}, True: {}},
    "google-gemma-2-2b-it": {False: {2: "template_error"}, True: {2: "template_error"}},
}
REFUSAL = re.compile(
    r"(?:message (?P<message>\d+) \(assistant\) cannot be located in the rendering: the template "
    r"(?:rewrites it \(it renders .+ where the answer reads .+\)|drops it \(.+\)); plamo-fast "
    r"refuses rather than mislabel it(?: \(--last-turn-only trains only the final answer\))?"
    r"|the template refused this conversation: .+)"
)


def model_folder(folder: Path, name: str) -> Path:
    """A byte-level tokenizer without merges (each byte one token, so spans map to tokens
    exactly) that knows the model's special tokens, its config and its stop set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    model = MODELS[name]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    raw = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens(list(model.special))
    folder.mkdir(parents=True)
    raw.save(str(folder / "tokenizer.json"))
    config = {"eos_token": model.eos, "chat_template": (TEMPLATES / f"{name}.jinja").read_text()}
    if model.bos:
        config["bos_token"] = model.bos
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    if model.stops is not None:
        ids = [raw.token_to_id(t) for t in model.stops]
        (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": ids}))
    return folder


def renderer(name: str):
    """``render(messages) -> text`` with the model's template and named special tokens."""
    model = MODELS[name]
    template = (TEMPLATES / f"{name}.jinja").read_text()
    special = {"eos_token": model.eos, **({"bos_token": model.bos} if model.bos else {})}
    return lambda messages: render(template, messages, special) if messages else ""


def check_documents(folder: Path, name: str, out: Path, last_turn_only: bool) -> None:
    """Each document's tokens are the template's rendering, and its labels the reference's."""
    model = MODELS[name]
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    stops = model.stops if model.stops is not None else (model.eos,)
    stop_ids = {raw.token_to_id(t) for t in stops}
    for doc, (ids, labels) in packed_documents(out).items():
        conversation = sft_conversation(RECORDS[doc], last_turn_only)
        text, spans = assistant_spans(renderer(name), conversation.messages, conversation.trained)
        expected_ids, expected_labels = labels_for(raw, text, spans, stop_ids)
        assert ids == expected_ids, (name, doc)
        assert labels[1:] == expected_labels[1:], (name, doc, text)  # packing masks the first
        for (start, end), i in zip(spans, conversation.trained, strict=True):
            assert text[start:end] in _trims(conversation.messages[i]["content"])  # as written
        assert any(label != IGNORE_INDEX for label in labels[1:])


def _trims(content: str) -> set[str]:
    return {content, content.strip(), content.lstrip(), content.rstrip()}


def check_refusals(name: str, data: Path, report: dict) -> dict[int, str]:
    """Every refusal is one record's: FILE:LINE, then what the template did (to the message
    named, which the reference cannot locate either). Returns {record index: drop reason}."""
    refused = {}
    for line in report["bad_records"]:
        found = re.fullmatch(rf"{re.escape(str(data))}:(\d+): {REFUSAL.pattern}", line)
        assert found, line
        record = int(found[1]) - 1
        refused[record] = "template_rewrites" if found["message"] else "template_error"
        if found["message"] is not None:
            message = int(found["message"])
            messages = sft_conversation(RECORDS[record]).messages
            assert messages[message]["role"] == "assistant", line
            with pytest.raises(AssertionError, match="not in the rendering"):
                assistant_spans(renderer(name), messages, [message])
    assert sum(report["dropped"].values()) == len(refused) == len(report["bad_records"])
    assert report["examples_packed"] + len(refused) == len(RECORDS)
    return refused


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "sft.jsonl", RECORDS)


@pytest.mark.skipif(not TEMPLATES.is_dir(), reason=f"{TEMPLATES} absent (needs ../shared)")
@pytest.mark.parametrize("last_turn_only", [False, True], ids=["every-answer", "last-turn-only"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_vendor_template_packs_exactly_or_refuses_per_record(
    tmp_path: Path, data: Path, name: str, last_turn_only: bool
):
    assert (TEMPLATES / f"{name}.jinja").is_file()
    folder = model_folder(tmp_path / "model", name)
    out = tmp_path / "packed"
    report = pack(
        [data], folder, out, max_length=4096, skip_bad=True, last_turn_only=last_turn_only
    )
    refused = check_refusals(name, data, report)
    check_documents(folder, name, out, last_turn_only)
    if name in EXACT:
        assert refused == EXACT[name][last_turn_only], report["bad_records"]


@pytest.mark.skipif(not TEMPLATES.is_dir(), reason=f"{TEMPLATES} absent (needs ../shared)")
def test_every_shared_template_is_covered():
    assert sorted(p.stem for p in TEMPLATES.glob("*.jinja")) == sorted(MODELS)
