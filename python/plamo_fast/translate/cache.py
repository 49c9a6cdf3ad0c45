"""The translation cache: model outputs keyed by what the model was asked, so that a chunk met
again (in another record, or in a rerun) is not sent again. The key is a SHA-256 of the exact
text sent (the masked chunk, which the source chunk determines), the model, the prompt's
template and target language, and the sampling settings. The file is JSON lines, one
``{"key", "text", "finish_reason"}`` an entry, appended and flushed as answers come (a torn last
line after a kill is cut off); by default ``OUT-stem.cache.jsonl`` beside the output, kept after
the run."""

from __future__ import annotations

import json
from pathlib import Path

from plamo_fast.digests import content_key
from plamo_fast.outputs import read_appended


def cache_key(text: str, settings: dict) -> str:
    return content_key({"text": text, "settings": settings})


class Cache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, tuple[str, str]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._load()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)

    def _load(self) -> None:
        for entry in read_appended(self.path, ("key", "text", "finish_reason")):
            self.entries[entry["key"]] = (entry["text"], entry["finish_reason"])

    def get(self, key: str) -> tuple[str, str] | None:
        return self.entries.get(key)

    def put(self, key: str, text: str, finish_reason: str) -> None:
        self.entries[key] = (text, finish_reason)
        entry = {"key": key, "text": text, "finish_reason": finish_reason}
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
