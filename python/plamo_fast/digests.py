"""Content digests of files and folders, one way for every command: sha256 of a file; a model
folder by its config, index, plamo-fast marker and shards (large shards by header); any other
folder by every file's content."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from plamo_fast.outputs import MARKER

# Above this size a safetensors shard is identified by its name, size and header (tensor names,
# shapes, dtypes, offsets) instead of its bytes: hashing a 5 GB shard at every plan would cost
# more than the plan. Small files, and every file that is not a shard, are hashed whole.
WHOLE_FILE_LIMIT = 64 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _shard_digest(path: Path) -> str:
    """A large safetensors shard: its size and header (the 8-byte length and the JSON)."""
    with open(path, "rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else 0
        header = f.read(min(length, 100 << 20))
    digest = hashlib.sha256(head + header)
    digest.update(str(path.stat().st_size).encode())
    return "header:" + digest.hexdigest()


def file_digest(path: Path) -> str:
    path = Path(path)
    if path.suffix == ".safetensors" and path.stat().st_size > WHOLE_FILE_LIMIT:
        return _shard_digest(path)
    return sha256_file(path)


def folder_digest(folder: Path) -> str:
    """A folder's digest: for a model folder (config.json) its config, safetensors index,
    plamo-fast marker and shards (small ones by content, large ones by header); for any other
    folder every file by content. Hidden partials and ``step*.json`` records are left out."""
    folder = Path(folder)
    model = (folder / "config.json").is_file()
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") and part != MARKER for part in Path(rel).parts):
            continue
        if model and rel != MARKER and "/" in rel:
            continue  # a model is its top-level files
        if rel == MARKER:
            digest.update(f"{rel}\0{_marker_digest(path)}\n".encode())
            continue
        digest.update(f"{rel}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()


def _marker_digest(path: Path) -> str:
    """The marker without its time of writing (the same output written again is the same)."""
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return sha256_file(path)
    if isinstance(marker, dict):
        marker.pop("written", None)
    return hashlib.sha256(json.dumps(marker, sort_keys=True).encode()).hexdigest()


def path_digest(path: str | os.PathLike) -> str | None:
    """The digest of a file or folder; None when it does not exist."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    if path.is_dir():
        return folder_digest(path)
    return None
