"""Prompt records and the JSONL files that sample / score / pairs pass along."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from plamo_fast.data.conversation import BadRecordError, prompt_messages
from plamo_fast.data.curation_io import iter_input, where
from plamo_fast.errors import UsageError
from plamo_fast.outputs import read_appended

# Keys that sample adds to each record; an input record holding one is refused rather than
# silently overwritten.
RESERVED = ("prompt_index", "prompt_messages", "candidates", "sampling")


def read_prompts(path: Path, skip_bad: bool) -> tuple[list[tuple[dict, list[dict]]], list[str]]:
    """``[(record, messages)]`` and the bad records skipped (``skip_bad``) or raised."""
    prompts, bad = [], []
    for row in iter_input(Path(path)):
        try:
            if row.error is not None:
                raise BadRecordError(row.error)
            clash = [k for k in RESERVED if k in row.record]
            if clash:
                raise BadRecordError(f"field {clash[0]!r} is one sample writes; rename it")
            prompts.append((row.record, prompt_messages(row.record)))
        except BadRecordError as exc:
            message = f"{where(Path(path), row)}: {exc}"
            if not skip_bad:
                raise BadRecordError(message + " (pass --skip-bad to skip it)") from None
            bad.append(message)
    return prompts, bad


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadRecordError(f"{path}:{number}: malformed JSON: {exc}") from None


class ResumableJsonl:
    """Appends one JSON line per finished prompt to ``OUT.partial`` (flushed and fsynced), and
    publishes it as ``OUT`` when everything is done (:func:`plamo_fast.outputs.publish`). A
    rerun after a kill keeps the complete lines (a torn last line is cut off) and reports which
    indices are done. ``OUT`` and ``OUT.partial`` are checked like every output
    (:func:`plamo_fast.outputs.check_output`): never an input, a folder or a link."""

    def __init__(self, out: Path, overwrite: bool, meta: dict, *, command: str, inputs: list[Path]):
        from plamo_fast.outputs import check_output

        self.out = Path(out)
        self.command, self.inputs, self.overwrite = command, list(inputs), overwrite
        check_output(
            self.out, command=command, inputs=self.inputs, overwrite=overwrite, folder=False
        )
        self.partial = self.out.with_name(self.out.name + ".partial")
        # Ours to resume or replace, unless it is an input (or a folder, or a link).
        check_output(
            self.partial, command=command, inputs=self.inputs, overwrite=True, folder=False
        )
        self.done: set[int] = set()
        self.meta = json.loads(json.dumps(meta))
        if self.partial.exists() and overwrite:
            self.partial.unlink()
        if self.partial.exists():
            self._recover()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.partial, "a", encoding="utf-8")  # noqa: SIM115 (closed in finish)

    def _recover(self) -> None:
        for record in read_appended(self.partial, ("prompt_index",)):
            if record.get("sampling") != self.meta:
                raise UsageError(
                    f"{self.partial} was started with other settings ({record.get('sampling')}); "
                    "resume with the same ones, or pass --overwrite to start over"
                )
            self.done.add(record["prompt_index"])

    def write(self, record: dict) -> None:
        """One finished prompt, handed to the OS at once (a killed process loses nothing
        written; ``sync`` makes it durable against a power loss)."""
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def finish(self) -> None:
        from plamo_fast.outputs import publish

        self.sync()
        self._file.close()
        publish(
            self.partial,
            self.out,
            command=self.command,
            overwrite=self.overwrite,
            inputs=self.inputs,
        )

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()
