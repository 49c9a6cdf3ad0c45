"""Which fields of a record are translated, in the record shapes of
:mod:`plamo_fast.data.conversation`: the ``content`` (ShareGPT ``value``) of every message of
``messages`` / ``conversations`` / ``conversation`` and of ``prompt``, ``completion``,
``chosen`` and ``rejected`` given as messages (or those fields as strings), and Alpaca/Dolly
``instruction``, ``input`` / ``context``, ``output`` / ``response`` and ``system``. System
prompts are translated unless ``system=False``; tool messages never (they hold data). A field is
named by its path, e.g. ``("messages", 2, "content")``, shown as ``messages[2].content``."""

from __future__ import annotations

from plamo_fast.data.conversation import (
    ALPACA_INPUT,
    ALPACA_OUTPUT,
    BadRecordError,
    is_alpaca,
    message_role,
    messages_field,
    read_messages,
)

Path = tuple  # keys and list indices
PAIR_FIELDS = (("prompt", "user"), ("completion", "assistant"), ("chosen", "assistant"),
               ("rejected", "assistant"))  # fmt: skip
ALPACA_FIELDS = ("instruction", *ALPACA_INPUT, *ALPACA_OUTPUT)


def text_paths(record, system: bool = True) -> list[Path]:
    """The paths of the texts to translate; :class:`BadRecordError` for a record of no known
    shape or with a malformed conversation."""
    if not isinstance(record, dict):
        raise BadRecordError("expected a JSON object")
    paths: list[Path] = []
    shaped = False
    field = messages_field(record)
    if field is not None:
        shaped = True
        paths += _message_paths(record[field], field, "user", system)
    for key, role in PAIR_FIELDS:
        if record.get(key) is not None:
            shaped = True
            paths += _message_paths(record[key], key, role, system)
    if is_alpaca(record):
        shaped = True
        names = [*ALPACA_FIELDS, *(["system"] if system else [])]
        for key in names:
            value = record.get(key)
            if value is not None and not isinstance(value, str):
                raise BadRecordError(f"{key!r} must be a string, got {type(value).__name__}")
            if value is not None:
                paths.append((key,))
    if not shaped:
        raise BadRecordError(
            "nothing to translate: expected 'messages' (or ShareGPT 'conversations'), "
            "'prompt' / 'completion' / 'chosen' / 'rejected', or 'instruction' (Alpaca/Dolly)"
        )
    return paths


def _message_paths(value, field: str, role: str, system: bool) -> list[Path]:
    if isinstance(value, str):
        return [(field,)]
    read_messages(value, role, field)  # checks the messages (raises BadRecordError)
    paths = []
    for i, message in enumerate(value):
        kind = message_role(message)
        if kind == "tool" or (kind == "system" and not system):
            continue
        paths.append((field, i, "content" if "content" in message else "value"))
    return paths


def get(record: dict, path: Path):
    for key in path:
        record = record[key]
    return record


def put(record: dict, path: Path, value) -> None:
    for key in path[:-1]:
        record = record[key]
    record[path[-1]] = value


def name(path: Path) -> str:
    """``messages[2].content``."""
    out = str(path[0])
    for key in path[1:]:
        out += f"[{key}]" if isinstance(key, int) else f".{key}"
    return out
