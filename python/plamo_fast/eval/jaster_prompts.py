"""Jaster prompts: llm-jp-eval's layout, or the model's chat template (``--chat``).

llm-jp-eval (v1.x from evaluator commit ``52ff89fa`` on, ``get_evaluation_prompt`` with no
custom template, Japanese) sends one plain text prompt, no chat template: the header and
``### 指示:``, then per few-shot example ``"\n\n### 入力:\n" + input + "\n\n### 応答:\n" +
output``, then ``"\n\n### 入力:\n{input}\n\n### 応答:\n"``; 0-shot is the same without the
examples. Checked against the copy of ``get_evaluation_prompt`` in wandb/llm-leaderboard
``scripts/evaluator/evaluate_utils/to_be_deprecated.py`` @06c718a3 (its few-shot blocks and
closing template; W&B replaced the header there) and llm-jp-eval's own PROMPTS.md (PR #91).
llm-jp-eval builds it as a langchain ``PromptTemplate``: few-shot inputs are brace-escaped, so
they come out as written; the instruction and few-shot outputs are not, so a doubled brace in
them would come out single and a lone brace would stop llm-jp-eval. Here every text is taken as
written (that llm-jp-eval quirk is not emulated). The earlier v1.0-era prompt had another
header (``以下はタスクを説明する指示と、追加の背景情報を提供する入力の組み合わせです。…``,
``### 指示``, ``### 入力：``/``### 回答：``; swallow-llm/swallow-evaluation
``llm-jp-eval/src/llm_jp_eval/utils.py`` @13eacc8a, sbintuitions/flexeval
``preset_configs/EvalSetup/ja_generation/jcommonsenseqa.jsonnet``), not reproduced::

    以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。

    ### 指示:
    {instruction}

    ### 入力:
    {shot input}

    ### 応答:
    {shot output}            <- one such pair per few-shot example

    ### 入力:
    {input}

    ### 応答:
    (the prompt ends with this newline)

With ``--chat`` the same pieces become a conversation for the model's own chat template: the
instruction and the first input in the first user turn (separated by a blank line), each
few-shot answer an assistant turn, each later input a user turn (:data:`CHAT_LAYOUT`).
"""

from __future__ import annotations

from collections.abc import Sequence

HEADER = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。"
    "要求を適切に満たす応答を書きなさい。"
)
INPUT_HEADING = "### 入力:"
RESPONSE_HEADING = "### 応答:"

LAYOUT = "llm-jp-eval: one plain-text prompt (Alpaca-style header, ### 指示:, ### 入力:/### 応答:)"
CHAT_LAYOUT = (
    "chat: the model's chat template; first user turn = instruction + blank line + input; "
    "each few-shot example a user turn (its input) and an assistant turn (its output)"
)


def _exchange(text_in: str) -> str:
    return f"\n\n{INPUT_HEADING}\n{text_in}\n\n{RESPONSE_HEADING}\n"


def build_prompt(instruction: str, shots: Sequence[dict], text_in: str) -> str:
    """llm-jp-eval's prompt for one item (``shots``: ``{"input", "output"}`` records)."""
    parts = [f"{HEADER}\n\n### 指示:\n{instruction}"]
    parts += [_exchange(shot["input"]) + shot["output"] for shot in shots]
    parts.append(_exchange(text_in))
    return "".join(parts)


def build_messages(instruction: str, shots: Sequence[dict], text_in: str) -> list[dict]:
    """The conversation sent through the model's chat template with ``--chat``."""
    inputs = [shot["input"] for shot in shots] + [text_in]
    messages: list[dict] = []
    for k, item_input in enumerate(inputs):
        content = f"{instruction}\n\n{item_input}" if k == 0 else item_input
        messages.append({"role": "user", "content": content})
        if k < len(shots):
            messages.append({"role": "assistant", "content": shots[k]["output"]})
    return messages
