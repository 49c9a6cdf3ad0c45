"""Outputs that appear only when complete: written under a hidden partial name beside the
target and renamed into place at the end, so an interrupted run never leaves a finished-looking
result."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from plamo_fast.errors import UsageError


def check_free(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise UsageError(f"output {out} already exists (pass --overwrite to replace it)")


@contextmanager
def atomic_path(out: Path, *, overwrite: bool, folder: bool) -> Iterator[Path]:
    """Yield a partial path (a created folder when ``folder``) that becomes ``out`` on success
    and is removed on failure."""
    out = Path(out)
    check_free(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if folder:
        partial.mkdir()
    try:
        yield partial
        if out.exists():
            if out.is_dir() and not out.is_symlink():
                shutil.rmtree(out)
            else:
                out.unlink()
        os.rename(partial, out)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.exists():
            partial.unlink()
