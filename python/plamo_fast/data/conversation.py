"""What a conversation is, for every command that reads one: ``pack`` (SFT and DPO), ``sample``
and ``pairs`` (the prompt to answer, SPIN's reference answer), and the user-text reading of
``decontaminate`` / ``dedup``.

A record holds its conversation in one of these shapes:

* **messages**: ``messages`` (or ``conversations`` / ``conversation``), a list of messages, each
  ``{"role": ..., "content": ...}`` (OpenAI / TRL) or ``{"from": ..., "value": ...}`` (ShareGPT,
  where ``human`` is the user and ``gpt`` the assistant). Every assistant message is trained
  (with ``last_turn_only``, the last one).
* **prompt / completion** (TRL's prompt-completion format): each a string or messages; a string
  prompt is one user message, a string completion one assistant message. Only the completion is
  trained (TRL's convention), even when the prompt holds assistant turns.
* **prompt / chosen / rejected** (TRL's preference format): two conversations sharing the prompt;
  only the assistant messages of ``chosen`` and ``rejected`` are trained.
* **instruction / input / output** (Alpaca, Dolly-ja; the original Dolly's ``context`` and
  ``response`` are read as ``input`` and ``output``): one user turn, the instruction followed by
  a newline and the input when the input is not empty (LLaMA-Factory's rule, and the text
  ``dedup --key prompt`` compares), then one trained assistant turn, the output. A string
  ``system`` field becomes a leading system message.

Roles are ``system``, ``user``, ``assistant`` and ``tool``; contents are strings. Other keys of
a message (``tool_calls``, ``reasoning_content``, ...) are kept for the chat template. A record
that fits none of this raises :class:`BadRecordError` with the reason; callers add FILE:LINE.
"""

from __future__ import annotations

from dataclasses import dataclass

from plamo_fast.errors import PlamoFastError

# The label of a token that is not trained (PyTorch's cross-entropy ``ignore_index``).
IGNORE_INDEX = -100

ROLES = ("system", "user", "assistant", "tool")
# ShareGPT's speaker names.
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system", "tool": "tool"}
MESSAGE_FIELDS = ("messages", "conversations", "conversation")


class BadRecordError(PlamoFastError, ValueError):
    """A malformed or unusable input record. The message names the file and line once a caller
    has added them; ``drop_reason`` is the key it is counted under when skipped."""

    drop_reason = "malformed"


@dataclass
class Conversation:
    messages: list[dict]
    trained: list[int]  # indices of the assistant messages whose tokens are trained

    def without_oldest_exchange(self) -> Conversation | None:
        """The conversation without its oldest user/assistant exchange (a leading system message
        is kept, trained messages keep their status); None when only the final exchange is
        left."""
        head = 1 if self.messages and self.messages[0]["role"] == "system" else 0
        rest = self.messages[head:]
        for i in range(1, len(rest)):
            if rest[i]["role"] == "user" and any(m["role"] == "assistant" for m in rest[:i]):
                trained = [k - i for k in self.trained if k >= head + i]
                return Conversation(self.messages[:head] + rest[i:], trained)
        return None


def message_role(message: dict) -> str | None:
    """The role of a message in either shape (``role``, or ShareGPT ``from``), or None."""
    role = message.get("role")
    if role is None and message.get("from") is not None:
        speaker = str(message["from"]).lower()
        role = SHAREGPT_ROLES.get(speaker, speaker)
    return role if isinstance(role, str) else None


def message_text(message: dict) -> str | None:
    """The text of a message (``content``, ShareGPT ``value``, or ``text``; the text parts of an
    OpenAI-style content list joined by newlines), or None when it has none."""
    content = next(
        (message[k] for k in ("content", "value", "text") if message.get(k) is not None), None
    )
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
        return "\n".join(parts) if parts else None
    return None


def read_messages(value, default_role: str, field: str) -> list[dict]:
    """A string (one message of ``default_role``) or a list of messages, checked and in the
    ``role``/``content`` shape."""
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if isinstance(value, list):
        return [_read_message(m, f"{field}[{i}]") for i, m in enumerate(value)]
    raise BadRecordError(
        f"{field}: expected a string or a list of messages, got {type(value).__name__}"
    )


def _read_message(message, where: str) -> dict:
    if not isinstance(message, dict):
        raise BadRecordError(f"{where}: a message must be an object, got {message!r:.60}")
    sharegpt = "role" not in message and "from" in message
    if "role" not in message and not sharegpt:
        raise BadRecordError(f"{where}: the message has no 'role': {message!r:.80}")
    text_key = "value" if sharegpt else "content"
    if text_key not in message:
        raise BadRecordError(f"{where}: the message has no {text_key!r}: {message!r:.80}")
    role = message_role(message)
    if role not in ROLES:
        shown = message["from"] if sharegpt else message["role"]
        raise BadRecordError(
            f"{where}: unknown role {shown!r} (expected one of {', '.join(ROLES)}"
            + (", or ShareGPT's human and gpt)" if sharegpt else ")")
        )
    if not isinstance(message[text_key], str):
        raise BadRecordError(f"{where}: message {text_key} must be a string")
    if not sharegpt:
        return message
    rest = {k: v for k, v in message.items() if k not in ("from", "value")}
    return {"role": role, "content": message["value"], **rest}


def messages_field(record: dict) -> str | None:
    """The field holding a record's list of messages, if it has one."""
    return next((k for k in MESSAGE_FIELDS if record.get(k) is not None), None)


# The Alpaca/Dolly layout: (field, alternative field) for the instruction's context and answer.
ALPACA_INPUT = ("input", "context")
ALPACA_OUTPUT = ("output", "response")


def is_alpaca(record: dict) -> bool:
    """Whether a record is in the instruction / input / output layout."""
    return record.get("instruction") is not None


def _alpaca_field(record: dict, names: tuple[str, ...]) -> str | None:
    present = [n for n in names if record.get(n) is not None]
    if len(present) > 1:
        raise BadRecordError(f"both {present[0]!r} and {present[1]!r}: keep one of them")
    if not present:
        return None
    value = record[present[0]]
    if not isinstance(value, str):
        raise BadRecordError(f"{present[0]!r} must be a string, got {type(value).__name__}")
    return value


def alpaca_prompt(record: dict) -> list[dict]:
    """The messages before the answer of an instruction / input record: an optional system
    message, then the user turn ``instruction`` + ``"\n"`` + ``input`` (the input only when it
    is not blank)."""
    instruction = _alpaca_field(record, ("instruction",))
    context = _alpaca_field(record, ALPACA_INPUT)
    parts = [t for t in (instruction, context) if t is not None and t.strip()]
    if not parts:
        raise BadRecordError("'instruction' and 'input' are both empty")
    messages = [{"role": "user", "content": "\n".join(parts)}]
    system = record.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise BadRecordError(f"'system' must be a string, got {type(system).__name__}")
        if system.strip():
            messages.insert(0, {"role": "system", "content": system})
    return messages


def _trained(messages: list[dict], first: int, last_turn_only: bool) -> list[int]:
    trained = [i for i in range(first, len(messages)) if messages[i]["role"] == "assistant"]
    return trained[-1:] if last_turn_only else trained


def sft_conversation(record, last_turn_only: bool = False) -> Conversation:
    """An SFT record's conversation: messages (every assistant message trained), or prompt and
    completion (only the completion trained)."""
    if not isinstance(record, dict):
        raise BadRecordError("expected a JSON object")
    field = messages_field(record)
    if field is not None:
        messages = read_messages(record[field], "user", field)
        first = 0
    elif record.get("prompt") is not None and record.get("completion") is not None:
        prompt = read_messages(record["prompt"], "user", "prompt")
        messages = prompt + read_messages(record["completion"], "assistant", "completion")
        first = len(prompt)
    elif is_alpaca(record):
        answer = _alpaca_field(record, ALPACA_OUTPUT)
        if answer is None:
            raise BadRecordError("'instruction' without 'output' (or Dolly's 'response')")
        prompt = alpaca_prompt(record)
        messages, first = [*prompt, {"role": "assistant", "content": answer}], len(prompt)
    else:
        raise BadRecordError(
            "expected 'messages' (or ShareGPT 'conversations'), 'prompt' and 'completion', "
            "'instruction' and 'output' (Alpaca/Dolly), or pre-tokenized 'input_ids'"
        )
    if not messages:
        raise BadRecordError("empty conversation")
    return Conversation(messages, _trained(messages, first, last_turn_only))


def preference_conversations(record) -> tuple[Conversation, Conversation]:
    """A preference record's two conversations, prompt + chosen and prompt + rejected, each
    training only its answer."""
    if not isinstance(record, dict) or any(
        record.get(k) is None for k in ("prompt", "chosen", "rejected")
    ):
        raise BadRecordError("DPO records need 'prompt', 'chosen' and 'rejected'")
    prompt = read_messages(record["prompt"], "user", "prompt")
    pair = []
    for key in ("chosen", "rejected"):
        messages = prompt + read_messages(record[key], "assistant", key)
        pair.append(Conversation(messages, _trained(messages, len(prompt), False)))
    return pair[0], pair[1]


def prompt_messages(record) -> list[dict]:
    """The conversation to answer: ``prompt`` (a string or messages), or a conversation's
    messages without its trailing assistant turns."""
    if not isinstance(record, dict):
        raise BadRecordError("expected a JSON object")
    if record.get("prompt") is not None:
        messages = read_messages(record["prompt"], "user", "prompt")
    elif messages_field(record) is not None:
        field = messages_field(record)
        messages = read_messages(record[field], "user", field)
    elif is_alpaca(record):
        messages = alpaca_prompt(record)
    else:
        raise BadRecordError(
            "expected 'prompt' (a string or messages), 'messages', or 'instruction' (Alpaca/Dolly)"
        )
    messages = [dict(m) for m in messages]
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    if not messages:
        raise BadRecordError("no turn to answer (only assistant messages)")
    if all(not m["content"].strip() for m in messages):
        raise BadRecordError("empty prompt")
    return messages
