"""The one way every command writes its output.

- **Atomic**: the output is written under a hidden temporary sibling (``.OUT.partial-…``) and
  renamed into place only when complete, so an interrupted run never leaves a finished-looking
  result. Files are fsynced before the rename and the parent folder after it.
- **Never destroys an input or an unrelated folder**: ``OUT`` may not be an input, hold an input,
  or lie inside an input folder; nor be the current directory, a home directory, the file-system
  root, or a folder above one of them.
- **``--overwrite`` replaces only our own earlier output of the same command**: a folder output
  carries a marker file (:data:`MARKER`, JSON naming the command); an existing folder without it,
  or made by another command, is refused even with ``--overwrite``. A file output may replace an
  existing regular file (never a folder).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from plamo_fast.errors import UsageError

MARKER = ".plamo-fast-output.json"


class UnsafeOutputError(UsageError):
    """An output that would overwrite or delete something that is not ours to delete."""


def read_marker(folder: Path) -> dict | None:
    """The marker of an output folder written by plamo-fast, or None."""
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _protected() -> list[Path]:
    places = [Path.cwd().resolve(), Path.home().resolve()]
    for key in ("HOME", "PWD"):
        if os.environ.get(key):
            places.append(Path(os.environ[key]).resolve())
    return places


def check_output(
    out: str | os.PathLike,
    *,
    command: str,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    folder: bool = True,
) -> Path:
    """Refuses an unsafe ``out`` before any work starts (see the module text); returns it."""
    out = Path(out)
    target = out.resolve()
    for place in _protected():
        if target == place or place.is_relative_to(target):
            what = "the current directory" if place == Path.cwd().resolve() else "a home directory"
            raise UnsafeOutputError(
                f"output {out} is {what} or a folder above it; an output there would replace it. "
                "Name a new folder (e.g. -o runs/pack-1)"
            )
    for given in inputs:
        source = Path(given).resolve()
        if target == source:
            raise UnsafeOutputError(f"output {out} is the input {given}; choose another output")
        if source.is_relative_to(target):
            raise UnsafeOutputError(
                f"output {out} holds the input {given}; replacing it would delete the input"
            )
        if Path(given).is_dir() and target.is_relative_to(source):
            raise UnsafeOutputError(
                f"output {out} is inside the input folder {given}; put it elsewhere"
            )
    if not (out.exists() or out.is_symlink()):
        return out
    if not overwrite:
        raise UsageError(f"output {out} already exists (pass --overwrite to replace it)")
    if out.is_symlink():
        raise UnsafeOutputError(f"output {out} is a symbolic link; remove it or choose another")
    if folder:
        if not out.is_dir():
            raise UnsafeOutputError(f"output {out} exists and is not a folder; choose another")
        marker = read_marker(out)
        if marker is None:
            raise UnsafeOutputError(
                f"--overwrite refused: {out} is not an output of plamo-fast (it has no {MARKER}); "
                "delete it yourself if you mean it, or choose another output"
            )
        if marker.get("command") != command:
            raise UnsafeOutputError(
                f"--overwrite refused: {out} is the output of plamo-fast "
                f"{marker.get('command')}, not of {command}; choose another output"
            )
    elif out.is_dir():
        raise UnsafeOutputError(f"output {out} is a folder; name a file")
    return out


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            for name in files:
                _fsync_file(Path(root) / name)
            _fsync_dir(Path(root))
    elif path.is_file():
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    # Windows flushes only a file opened for writing (fsync of a read-only descriptor: EBADF).
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory
    finally:
        os.close(fd)


def read_appended(path: Path, required: tuple[str, ...] = ()) -> list[dict]:
    """The complete records of an append-only JSON-lines file (a partial output, a cache),
    which is cut after the last of them: what follows (a line torn by a kill, or one that does
    not parse or lacks a ``required`` key) is dropped with everything after it."""
    data, good, records = Path(path).read_bytes(), 0, []
    for line in data.split(b"\n")[:-1]:  # the piece after the last newline is torn
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            break
        if not isinstance(record, dict) or any(key not in record for key in required):
            break
        records.append(record)
        good += len(line) + 1
    if good != len(data):
        with open(path, "r+b") as f:
            f.truncate(good)
    return records


def write_json_atomic(path: str | os.PathLike, value, *, fsync: bool = True) -> None:
    """``path`` appears complete or not at all: a temporary sibling (fsynced unless ``fsync``
    is false) renamed over it (a reader, another process included, never sees half of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_marker(
    folder: Path, command: str, extra: dict | None = None, *, fsync: bool = True
) -> None:
    from plamo_fast import _native

    record = {
        "command": command,
        "plamo_fast_version": _native.__version__,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    write_json_atomic(folder / MARKER, record, fsync=fsync)


def publish(
    partial: Path,
    out: Path,
    *,
    command: str,
    overwrite: bool,
    inputs: Iterable[str | os.PathLike] = (),
    marker: dict | None = None,
    fsync: bool = True,
) -> None:
    """Moves a finished ``partial`` (a folder or a file on the same file system) to ``out``.
    A folder gets the marker first. An existing ``out`` is checked again (it may have appeared
    since the run started), set aside, and deleted only once the new output is in place."""
    partial, out = Path(partial), Path(out)
    folder = partial.is_dir()
    if folder:
        write_marker(partial, command, marker, fsync=fsync)
    check_output(out, command=command, inputs=inputs, overwrite=overwrite, folder=folder)
    if fsync:
        _fsync_tree(partial)
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    try:
        os.rename(partial, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if fsync:
        _fsync_dir(out.parent)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()


def partial_path(out: Path) -> Path:
    """A hidden, unique sibling of ``out`` (same file system, so the final rename is atomic)."""
    return out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextmanager
def atomic_output(
    out: str | os.PathLike,
    *,
    command: str,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    folder: bool = True,
    marker: dict | None = None,
    fsync: bool = True,
) -> Iterator[Path]:
    """Yields a partial path (a created folder when ``folder``) that becomes ``out`` when the
    block ends without error, and is removed when it raises. ``out`` is checked before the block
    runs; see :func:`check_output` and :func:`publish`."""
    out = Path(out)
    inputs = list(inputs)
    check_output(out, command=command, inputs=inputs, overwrite=overwrite, folder=folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(out)
    if folder:
        partial.mkdir()
    try:
        yield partial
        publish(
            partial,
            out,
            command=command,
            overwrite=overwrite,
            inputs=inputs,
            marker=marker,
            fsync=fsync,
        )
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.exists():
            partial.unlink()
