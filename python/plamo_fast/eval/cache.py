"""Answers cached by a content hash of what produced them.

Each answer is stored under the sha256 of a canonical JSON record of everything that made it:
the model's fingerprint (:func:`model_fingerprint`), the backend, the exact prompt (text or
messages) and the sampling settings. A rerun with the same settings finds every answer and
generates nothing; a killed run keeps what it had answered; a changed model (other weights, a
retrained folder) has another fingerprint, so none of its answers are reused.

The cache is a folder (``answers.jsonl``, one ``{"key", ...answer}`` line per answer, appended
and flushed as each answer arrives; ``cache.json`` marks the folder as ours; ``files.json``
remembers file hashes so that a model's weights are hashed once per version of each file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from plamo_fast.digests import DigestMemo, content_key, sha256_file
from plamo_fast.errors import UsageError
from plamo_fast.outputs import read_appended

CACHE_MARKER = "cache.json"
_KIND = "plamo-fast eval answer cache"


def model_fingerprint(model: str, backend: str, base_url: str | None, memo: Path | None) -> dict:
    """What identifies the model under test. A local folder: the sha256 of every file in it
    (weights, config, tokenizer, chat template), each large file hashed once per version and
    remembered in ``memo`` (:class:`plamo_fast.digests.DigestMemo`). Anything else (a hub id,
    a served model): its name, and the server's URL for the openai backend; such a name cannot
    tell changed weights apart."""
    folder = Path(model)
    if not folder.is_dir():
        name = {"kind": "name", "model": model}
        if backend == "openai":
            name["base_url"] = base_url
        return name
    memo_file = DigestMemo(memo) if memo is not None else None
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative.startswith("."):
            continue
        files[relative] = memo_file.sha256(path) if memo_file else sha256_file(path)
    if not files:
        raise UsageError(f"--model {model}: the folder is empty")
    return {"kind": "files", "sha256": content_key(files), "files": len(files)}


class AnswerCache:
    """The answers of earlier runs by key; :meth:`put` appends one and hands it to the OS at
    once (a killed run loses nothing it wrote; a torn last line is cut off on the next open).
    The folder may not be, hold, or lie inside one of ``protected`` (the inputs and the
    output), and an existing folder must be an answer cache already (or empty)."""

    def __init__(self, folder: Path, protected: list[Path]):
        self.folder = Path(folder)
        _check_place(self.folder, protected)
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self.folder / CACHE_MARKER
        if not marker.exists():
            marker.write_text(json.dumps({"kind": _KIND, "version": 1}) + "\n", encoding="utf-8")
        self.path = self.folder / "answers.jsonl"
        self.answers: dict[str, dict] = {}
        if self.path.exists():
            self._recover()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)

    @property
    def memo(self) -> Path:
        return self.folder / "files.json"

    def _recover(self) -> None:
        for record in read_appended(self.path, ("key",)):
            self.answers[record.pop("key")] = record

    def get(self, key: str) -> dict | None:
        return self.answers.get(key)

    def put(self, key: str, answer: dict) -> None:
        self.answers[key] = answer
        self._file.write(json.dumps({"key": key, **answer}, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _check_place(folder: Path, protected: list[Path]) -> None:
    target = folder.resolve()
    for given in protected:
        place = Path(given).resolve()
        if target == place or place.is_relative_to(target) or target.is_relative_to(place):
            raise UsageError(
                f"--cache {folder} would be, hold or lie inside {given}; choose another folder"
            )
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UsageError(f"--cache {folder} exists and is not a folder; choose another")
    if folder.is_dir() and any(folder.iterdir()):
        marker = folder / CACHE_MARKER
        try:
            kind = json.loads(marker.read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind != _KIND:
            raise UsageError(
                f"--cache {folder} is a folder that is not an answer cache (no {CACHE_MARKER}); "
                "choose a new or empty folder"
            )
