"""Seed tasks: Self-Instruct's layout (``instruction``, ``instances: [{input, output}]``,
``is_classification``), plain ``{"instruction": ...}`` records, or conversations (the first
user turn), read with the one record reader (:func:`plamo_fast.data.curation_io.iter_input`).
A seed's title is its ``title`` field, else Self-Instruct's ``name`` (``breakfast_suggestion``
shown as ``breakfast suggestion``), else its instruction's first line.

Without ``--seeds`` the run uses the Japanese seed tasks shipped with the package
(``seeds_ja.jsonl`` beside this module, written for it), named ``package:seeds_ja.jsonl`` in
provenance."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from plamo_fast.data.conversation import BadRecordError, prompt_messages
from plamo_fast.data.curation_io import check_input, iter_input, where
from plamo_fast.digests import path_digest
from plamo_fast.errors import UsageError

SHIPPED = "seeds_ja.jsonl"
TITLE_FROM_TEXT = 40  # characters of the first line used as a title when a task has none


@dataclass(frozen=True)
class Task:
    title: str
    instruction: str  # the user's text: the instruction, and its input when there is one


@dataclass(frozen=True)
class SeedSet:
    tasks: list[Task]
    label: str  # the path, or package:seeds_ja.jsonl
    sha256: str
    bad: list[str]  # records skipped with --skip-bad, FILE:LINE: reason

    @property
    def provenance(self) -> dict:
        return {"path": self.label, "sha256": self.sha256}


def shipped_seeds() -> Path:
    return Path(str(resources.files("plamo_fast.synth.instruct") / SHIPPED))


def read_seeds(path: Path | None, skip_bad: bool = False) -> SeedSet:
    """The tasks of ``path`` (the shipped Japanese seeds when None); a malformed record is an
    error naming FILE:LINE, or skipped and listed with ``skip_bad``."""
    label = str(path) if path is not None else f"package:{SHIPPED}"
    path = check_input(Path(path)) if path is not None else shipped_seeds()
    tasks, bad = [], []
    for row in iter_input(path):
        try:
            if row.error is not None:
                raise BadRecordError(row.error)
            tasks.append(seed_task(row.record))
        except BadRecordError as exc:
            message = f"{where(path, row)}: {exc}"
            if not skip_bad:
                raise BadRecordError(message + " (pass --skip-bad to skip it)") from None
            bad.append(message)
    if not tasks:
        first = f" (first bad record: {bad[0]})" if bad else ""
        raise UsageError(f"{label}: no seed task in it{first}")
    return SeedSet(tasks, label, path_digest(path) or "", bad)


def seed_task(record: object) -> Task:
    """One seed record as a task (see the module text)."""
    if not isinstance(record, dict):
        raise BadRecordError("expected a JSON object")
    instances = record.get("instances")
    if instances is not None and record.get("input") is None:
        if not isinstance(instances, list) or not all(isinstance(i, dict) for i in instances):
            raise BadRecordError("'instances' must be a list of {input, output} objects")
        first = instances[0].get("input") if instances else None
        if first is not None and not isinstance(first, str):
            raise BadRecordError("instances[0].input must be a string")
        record = {**record, "input": first or ""}
    messages = prompt_messages(record)
    users = [m["content"] for m in messages if m["role"] == "user" and m["content"].strip()]
    if not users:
        raise BadRecordError("no user text")
    instruction = users[0].strip()
    return Task(_title(record, instruction), instruction)


def _title(record: dict, instruction: str) -> str:
    for key in ("title", "name"):
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.replace("_", " ").strip() if key == "name" else value.strip()
    first = instruction.splitlines()[0].strip()
    return first if len(first) <= TITLE_FROM_TEXT else first[:TITLE_FROM_TEXT] + "…"
