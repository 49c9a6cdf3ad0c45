"""What a step was run from and what it made: digests of files and model folders, the
fingerprint of resolved parameters, and the step record (``step.json``) written atomically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

RECORD = "step.json"
STARTED = "step.started.json"


def count_records(path: Path) -> int | None:
    """Lines of a JSONL file; rows of a Parquet file or of a folder of Parquet files."""
    path = Path(path)
    if path.is_file() and path.suffix == ".jsonl":
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    parquet = [path] if path.suffix == ".parquet" else sorted(path.glob("*.parquet"))
    if path.is_dir() and (path / "config.json").is_file():
        return None  # a model
    if parquet and all(p.is_file() for p in parquet):
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(p).metadata.num_rows for p in parquet)
    return None


def fingerprint(kind: str, params: dict) -> str:
    """sha256 of the step's kind and parameters as written after repeat expansion (references
    stay ``${steps.X.output}``: the run folder may move; what a reference points at is covered
    by the input digests)."""
    text = json.dumps({"kind": kind, "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_json(path: Path) -> dict | None:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def param_changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``a.b: OLD -> NEW`` for every parameter that differs."""
    changes = []
    for key in sorted(set(old) | set(new)):
        where = f"{prefix}{key}"
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            changes += param_changes(a, b, where + ".")
        elif a != b:
            changes.append(
                f"{where}: {json.dumps(a, ensure_ascii=False)} -> "
                f"{json.dumps(b, ensure_ascii=False)}"
            )
    return changes
