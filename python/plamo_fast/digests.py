"""Content digests of files and folders, one way for every command: sha256 of a file; a model
folder by its config, index, plamo-fast marker and shards (large shards by header); any other
folder by every file's content.

A :class:`DigestMemo` (a JSON file) remembers the sha256 of each file of at least
:data:`MEMO_MIN` bytes under its resolved path, size, modification and change times and inode,
so that a multi-GB input is hashed once per version, not at every ``recipe plan``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from plamo_fast.outputs import MARKER, write_json_atomic

# Above this size a safetensors shard is identified by its name, size and header (tensor names,
# shapes, dtypes, offsets) instead of its bytes: hashing a 5 GB shard at every plan would cost
# more than the plan. Small files, and every file that is not a shard, are hashed whole.
WHOLE_FILE_LIMIT = 64 << 20
# Smaller files are hashed again each time (cheaper than remembering them).
MEMO_MIN = 1 << 20


class DigestMemo:
    """sha256 of files remembered in the JSON file ``path`` (see the module text). Several
    processes may share one: each rewrites it atomically, and an update lost to another writer
    only means hashing that file again. Where the file cannot be written (its folder does not
    exist yet, a read-only place), digests are remembered for this object's life only."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            known = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        self.known: dict = known if isinstance(known, dict) else {}

    def sha256(self, path: Path) -> str:
        stat = path.stat()
        if stat.st_size < MEMO_MIN:
            return sha256_file(path)
        key = str(path.resolve())
        stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        hit = self.known.get(key)
        if isinstance(hit, list) and len(hit) == 2 and hit[0] == stamp:
            return hit[1]
        digest = sha256_file(path)
        self.known[key] = [stamp, digest]
        if self.path.parent.is_dir():
            with contextlib.suppress(OSError):  # a cache: hashing again is the price
                write_json_atomic(self.path, self.known, fsync=False)
        return digest


def content_key(record: dict) -> str:
    """sha256 of ``record`` as canonical JSON (what cached answers are keyed by)."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


def file_digest(path: Path, memo: DigestMemo | None = None) -> str:
    path = Path(path)
    if path.suffix == ".safetensors" and path.stat().st_size > WHOLE_FILE_LIMIT:
        return _shard_digest(path)
    return memo.sha256(path) if memo is not None else sha256_file(path)


def folder_digest(folder: Path, memo: DigestMemo | None = None) -> str:
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
        digest.update(f"{rel}\0{file_digest(path, memo)}\n".encode())
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


def path_digest(path: str | os.PathLike, memo: DigestMemo | None = None) -> str | None:
    """The digest of a file or folder; None when it does not exist."""
    path = Path(path)
    if path.is_file():
        return file_digest(path, memo)
    if path.is_dir():
        return folder_digest(path, memo)
    return None
