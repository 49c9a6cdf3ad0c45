"""Tiny tokenizers trained in-process and real chat-template styles, for the pack tests."""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + "
    "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{'<start_of_turn>model\\n'}}{% endif %}"
)
# PLaMo style: a turn ends where the next role header starts; generation stops at <|plamo:op|>.
PLAMO = (
    "{% for message in messages %}{{ '<|plamo:op|>' + message['role'] + '\\n' + "
    "message['content'] }}"
    "{% if not loop.last %}{{ '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "{{ '\\n<|plamo:op|>assistant\\n' }}{% endif %}"
)
# Qwen3 style: earlier assistant turns lose their <think> block (rewrites content).
DROPS_THINK = (
    "{% for message in messages %}{% set content = message['content'] %}"
    "{% if message['role'] == 'assistant' and not loop.last and '</think>' in content %}"
    "{% set content = content.split('</think>')[-1].lstrip('\\n') %}{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ content }}<|im_end|>\n{% endfor %}"
)
WITH_GENERATION = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
)
# Qwen3 style: the final answer is rendered with its <think> block re-made by the template and
# its leading newlines stripped; earlier answers lose their <think> block.
QWEN3_STYLE = (
    "{%- for message in messages %}{%- if message.role == 'assistant' %}"
    "{%- set content = message.content %}{%- set reasoning = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1]"
    ".lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
    "{%- if loop.last %}{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + "
    "'\\n</think>\\n\\n' + content.lstrip('\\n') }}"
    "{%- else %}{{- '<|im_start|>assistant\\n' + content }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
)
# SmolLM3 style: every answer loses its leading newlines (and only those).
SMOLLM3_STYLE = (
    "{% for message in messages %}{% if message.role == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' + message.content.lstrip('\\n') + '<|im_end|>\\n' }}"
    "{% else %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{% endif %}{% endfor %}"
)
# Command R7B style: an answer ends <|END_RESPONSE|><|END_OF_TURN_TOKEN|>; the model stops on
# <|END_OF_TURN_TOKEN|>.
COMMAND_R7B_STYLE = (
    "{{ bos_token }}{% for message in messages %}{% if message.role == 'assistant' %}"
    "{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>' + message.content + "
    "'<|END_RESPONSE|><|END_OF_TURN_TOKEN|>' }}{% else %}"
    "{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + message.content + '<|END_OF_TURN_TOKEN|>' }}"
    "{% endif %}{% endfor %}"
)
TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3, "gemma": GEMMA, "plamo": PLAMO}

SPECIAL = [
    "<s>",
    "</s>",
    "<|im_start|>",
    "<|im_end|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|plamo:op|>",
    "<|START_OF_TURN_TOKEN|>",
    "<|END_OF_TURN_TOKEN|>",
    "<|USER_TOKEN|>",
    "<|CHATBOT_TOKEN|>",
    "<|START_RESPONSE|>",
    "<|END_RESPONSE|>",
]

CORPUS = [
    "Hello! How can I help you today?",
    "The capital of Japan is Tokyo.",
    "日本の首都は東京です。",
    "富士山は日本で一番高い山です。",
    "ありがとうございます。",
    "Sure, here is a short poem about the sea.",
    "1 + 1 = 2, and 2 * 3 = 6.",
    "東京タワーの高さは333メートルです。",
    "Please explain packing of sequences.",
    "assistant user system model",
    "  leading spaces and\ttabs\n\nnew lines",
]

CONVERSATIONS = [
    [
        {"role": "user", "content": "日本の首都はどこですか？"},
        {"role": "assistant", "content": "日本の首都は東京です。"},
    ],
    [
        {"role": "user", "content": "Say hello."},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Now in Japanese, please."},
        {"role": "assistant", "content": " こんにちは！ ご用件は何ですか？\n"},
    ],
    [
        {"role": "user", "content": "What is 1 + 1?"},
        {"role": "assistant", "content": "\n1 + 1 = 2"},
        {"role": "user", "content": "And 2 * 3?"},
        {"role": "assistant", "content": "2 * 3 = 6."},
    ],
]
SYSTEM_CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "富士山について教えて。"},
    {"role": "assistant", "content": "富士山は日本で一番高い山です。"},
]


def make_tokenizer(folder: Path, template: str, *, split_words: bool = True) -> Path:
    """``split_words=False`` trains merges across word and segment boundaries (BPE seams)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=split_words
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = (
        CORPUS
        if split_words
        else CORPUS + [f"assistant\n{m['content']}" for c in CONVERSATIONS for m in c]
    )
    tokenizer.train_from_iterator(corpus * 20, trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "chat_template": template,
            }
        )
    )
    return folder


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


def write_generation_config(folder: Path, eos_token_id) -> None:
    """The model's stop set: ``eos_token_id`` (an id or a list), as transformers writes it."""
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": eos_token_id}))


def token_id(folder: Path, token: str) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).token_to_id(token)


def trained_runs(raw, ids, labels) -> list[str]:
    """The texts of the runs of consecutive trained tokens (labels other than -100)."""
    runs, current = [], []
    for token, label in zip(list(ids), list(labels), strict=True):
        if label != -100:
            current.append(int(token))
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [raw.decode(run, skip_special_tokens=False) for run in runs]


def packed_documents(out: Path) -> dict[int, tuple[list[int], list[int]]]:
    """``{doc_id: (input_ids, labels)}`` of each document in a pack output folder's rows."""
    import pyarrow.parquet as pq

    docs = {}
    for row in pq.read_table(out / "data.parquet").to_pylist():
        cursor = 0
        for doc, n in zip(row["doc_ids"], row["seq_lengths"], strict=True):
            docs[doc] = (row["input_ids"][cursor : cursor + n], row["labels"][cursor : cursor + n])
            cursor += n
    return docs
