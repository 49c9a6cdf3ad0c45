"""The translation cache: model outputs keyed by what the model was asked, so that a chunk met
again (in another record, or in a rerun) is not sent again. The key is a SHA-256 of the exact
text sent (the masked chunk, which the source chunk determines), the model, the prompt's
template and target language, and the sampling settings. The file is JSON lines, one
``{"key", "text", "finish_reason"}`` an entry, appended and flushed as answers come (a torn last
line after a kill is cut off); by default ``OUT-stem.cache.jsonl`` beside the output, kept after
the run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def cache_key(text: str, settings: dict) -> str:
    blob = json.dumps([text, settings], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, tuple[str, str]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._load()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)

    def _load(self) -> None:
        data = self.path.read_bytes()
        good = 0
        for line in data.split(b"\n")[:-1]:
            try:
                entry = json.loads(line)
                self.entries[entry["key"]] = (entry["text"], entry["finish_reason"])
            except (ValueError, KeyError, TypeError):
                break
            good += len(line) + 1
        if good != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good)

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
