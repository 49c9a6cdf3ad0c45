"""Reading training records (JSONL or Parquet) and turning each into a conversation to render
or a pre-tokenized document. Every problem names the file and line (1-based; Parquet: row)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.errors import PlamoFastError

ROLES = ("system", "user", "assistant", "tool")


class RecordError(PlamoFastError, ValueError):
    """A malformed training record (the message names the file and line)."""


@dataclass
class Conversation:
    messages: list[dict]
    trained: list[int]  # indices of the assistant messages whose tokens are trained


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]


def iter_rows(path: Path) -> Iterator[tuple[int, object]]:
    """``(line_or_row_number, record)`` for each record; a bad line (malformed JSON, invalid
    UTF-8, a lone surrogate, not an object) yields a :class:`RecordError` instead. Reading is
    :func:`plamo_fast.data.curation_io.iter_input`'s; an empty file yields nothing."""
    from plamo_fast.data.curation_io import iter_input

    for row in iter_input(Path(path)):
        if row.number == 0:
            continue  # the empty-file marker: callers report empty inputs themselves
        if row.error is not None:
            yield row.number, RecordError(f"{path}:{row.number}: {row.error}")
        else:
            yield row.number, row.record


def _as_messages(value, default_role: str, where: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if isinstance(value, list):
        return [_check_message(m, where) for m in value]
    raise RecordError(
        f"{where}: expected a string or a list of messages, got {type(value).__name__}"
    )


def _check_message(message, where: str) -> dict:
    if not isinstance(message, dict):
        raise RecordError(f"{where}: a message must be an object, got {message!r:.60}")
    for key in ("role", "content"):
        if key not in message:
            raise RecordError(f"{where}: a message has no {key!r}: {message!r:.80}")
    if message["role"] not in ROLES:
        raise RecordError(
            f"{where}: unknown role {message['role']!r} (expected one of {', '.join(ROLES)})"
        )
    if not isinstance(message["content"], str):
        raise RecordError(f"{where}: message content must be a string")
    return message


def sft_example(record, where: str, last_turn_only: bool) -> Conversation | Tokenized:
    """One SFT record: ``messages``, ``prompt``/``completion``, or pre-tokenized ``input_ids``."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object")
    if "input_ids" in record:
        ids = record["input_ids"]
        if "labels" in record:
            labels = record["labels"]
        elif "assistant_masks" in record:
            labels = [
                t if m else -100 for t, m in zip(ids, record["assistant_masks"], strict=False)
            ]
        else:
            raise RecordError(f"{where}: pre-tokenized rows need 'labels' or 'assistant_masks'")
        if len(labels) != len(ids):
            raise RecordError(f"{where}: input_ids and labels have different lengths")
        return Tokenized(list(ids), list(labels))
    if "messages" in record:
        messages = _as_messages(record["messages"], "user", where)
    elif "prompt" in record and "completion" in record:
        messages = _as_messages(record["prompt"], "user", where) + _as_messages(
            record["completion"], "assistant", where
        )
    else:
        raise RecordError(
            f"{where}: expected 'messages', 'prompt' and 'completion', or 'input_ids'"
        )
    if not messages:
        raise RecordError(f"{where}: empty conversation")
    trained = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if last_turn_only:
        trained = trained[-1:]
    return Conversation(messages, trained)
