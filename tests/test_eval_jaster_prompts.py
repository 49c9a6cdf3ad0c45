"""Jaster prompts are byte-identical to llm-jp-eval's layout (jaster_prompts.py)."""

from __future__ import annotations

from plamo_fast.eval.jaster_prompts import build_messages, build_prompt

INSTRUCTION = "質問を入力とし、回答を出力してください。"
SHOTS = [
    {"input": "質問：日本の首都は？", "output": "東京"},
    {"input": "質問：{braces} stay as written", "output": "YES"},
    {"input": "質問：富士山の高さは？", "output": "3776m"},
    {"input": "前提：A\n仮説：B", "output": "neutral"},
    {"input": "unused fifth shot", "output": "x"},
]

# llm-jp-eval v1.x get_evaluation_prompt (language ja, no custom template), written out by hand
# from its f-strings: the header; "\n\n### 指示:\n" + instruction; per shot "\n\n### 入力:\n"
# + input + "\n\n### 応答:\n" + output; then "\n\n### 入力:\n{input}\n\n### 応答:\n".
ZERO_SHOT = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
    "\n\n### 指示:\n質問を入力とし、回答を出力してください。"
    "\n\n### 入力:\n質問：東京タワーの高さは？"
    "\n\n### 応答:\n"
)
FOUR_SHOT = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
    "\n\n### 指示:\n質問を入力とし、回答を出力してください。"
    "\n\n### 入力:\n質問：日本の首都は？\n\n### 応答:\n東京"
    "\n\n### 入力:\n質問：{braces} stay as written\n\n### 応答:\nYES"
    "\n\n### 入力:\n質問：富士山の高さは？\n\n### 応答:\n3776m"
    "\n\n### 入力:\n前提：A\n仮説：B\n\n### 応答:\nneutral"
    "\n\n### 入力:\n質問：東京タワーの高さは？"
    "\n\n### 応答:\n"
)


def test_zero_shot_prompt_is_byte_identical():
    got = build_prompt(INSTRUCTION, [], "質問：東京タワーの高さは？")
    assert got.encode("utf-8") == ZERO_SHOT.encode("utf-8")


def test_four_shot_prompt_is_byte_identical():
    got = build_prompt(INSTRUCTION, SHOTS[:4], "質問：東京タワーの高さは？")
    assert got.encode("utf-8") == FOUR_SHOT.encode("utf-8")


def test_chat_layout():
    assert build_messages(INSTRUCTION, [], "Q") == [
        {"role": "user", "content": f"{INSTRUCTION}\n\nQ"}
    ]
    assert build_messages(INSTRUCTION, SHOTS[:2], "Q") == [
        {"role": "user", "content": f"{INSTRUCTION}\n\n質問：日本の首都は？"},
        {"role": "assistant", "content": "東京"},
        {"role": "user", "content": "質問：{braces} stay as written"},
        {"role": "assistant", "content": "YES"},
        {"role": "user", "content": "Q"},
    ]
