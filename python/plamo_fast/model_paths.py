"""Where a model or a tokenizer named on the command line lives, found at once and without the
network; and the one-line message when the packages that load it are missing.

Given a path that does not exist, transformers takes it for a hub name and retries the hub for
about a minute before it reports that it "couldn't connect". :func:`resolve_model` answers
before anything is loaded:

- an existing folder is used as it is, once it holds what is asked for (``config.json`` and
  tokenizer files for a model, tokenizer files for a tokenizer);
- a value that looks like a path (it starts with ``/``, ``.`` or ``~``, holds a backslash or more
  than one ``/``, or its first part exists here, as ``models`` in ``models/x``) and does not
  exist is "not found";
- anything else is a Hugging Face hub name (``org/name``), looked up first in the local hub
  cache (``HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``; what ``hf download`` fills).
  Offline (``HF_HUB_OFFLINE=1``) that is the only place: not there, it is "not found", with the
  command that downloads it. Online, a name not in the cache is handed to the loader as it is
  (transformers or vLLM download it).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from plamo_fast.errors import PlamoFastError

KINDS = ("model", "tokenizer")
# One of them is enough to tell a tokenizer is there (tokenizer_config.json names the class of a
# tokenizer whose files have other names, such as a remote-code one).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
)
# A hub repository id as huggingface_hub validates it: ``name`` or ``org/name``.
_HUB_NAME = re.compile(r"[\w.-]+(/[\w.-]+)?")


def resolve_model(name_or_path: str | os.PathLike, what: str = "model") -> str:
    """The local folder of ``name_or_path``: the folder itself, or the snapshot of a hub name in
    the local hub cache. ``what`` is ``model`` (needs ``config.json`` and tokenizer files) or
    ``tokenizer`` (needs tokenizer files). Raises ``FileNotFoundError`` ("not found") at once
    for anything else; never touches the network."""
    if what not in KINDS:
        raise ValueError(f"what must be one of {KINDS}, got {what!r}")
    name = os.fspath(name_or_path)
    if not name.strip():
        raise FileNotFoundError(f"{what} {name!r}: not found (an empty name)")
    path = Path(name).expanduser()
    if path.exists():
        folder = path
    elif _looks_like_path(name):
        raise FileNotFoundError(f"{what} {name}: not found (no such folder)")
    else:
        cached = _from_hub_cache(name, what, required=_offline())
        if cached is None:
            return name  # online: the loader downloads it
        folder = Path(cached)
    _check_folder(folder, name, what)
    return str(folder)


def _offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    return bool(constants.HF_HUB_OFFLINE)


def _looks_like_path(name: str) -> bool:
    if name.startswith(("/", ".", "~")) or "\\" in name or not _HUB_NAME.fullmatch(name):
        return True
    if "--" in name or ".." in name:  # not allowed in a hub name either
        return True
    first, slash, _ = name.partition("/")
    return bool(slash) and Path(first).exists()


def _from_hub_cache(name: str, what: str, required: bool) -> str | None:
    """The snapshot folder of hub name ``name`` in the local hub cache (its ``main`` revision);
    None when it is absent and not ``required``."""
    try:
        from huggingface_hub import constants, errors, snapshot_download
    except ImportError:
        raise FileNotFoundError(
            f"{what} {name}: not found (no such folder; huggingface_hub, which finds models "
            "downloaded from the hub, is not installed)"
        ) from None
    try:
        return snapshot_download(name, local_files_only=True)
    except FileNotFoundError as exc:  # LocalEntryNotFoundError and IncompleteSnapshotError
        if not required:
            return None
        incomplete = getattr(errors, "IncompleteSnapshotError", ())
        state = "only partly" if isinstance(exc, incomplete) else "not"
        raise FileNotFoundError(
            f"{what} {name}: not found: no such folder, and {state} in the local Hugging Face "
            f"cache ({constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE is set: run "
            f"`hf download {name}` first, or give the model's folder"
        ) from None


def _check_folder(folder: Path, name: str, what: str) -> None:
    place = name if str(folder) == name else f"{name} ({folder})"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{what} {place}: is a file; give the folder that holds the {what}'s files"
        )
    if what == "model" and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{what} {place}: no config.json in it (not a model folder)")
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{what} {place}: no tokenizer in it (none of {', '.join(TOKENIZER_FILES)})"
        )


def require_transformers(purpose: str, also: tuple[str, ...] = ()) -> None:
    """Raises one line naming the extra to install when torch, transformers or one of ``also``
    (e.g. accelerate) is missing (a check that imports none of them)."""
    missing = [p for p in ("torch", "transformers", *also) if not _installed(p)]
    if missing:
        raise PlamoFastError(
            f"{purpose} needs {' and '.join(missing)}: pip install 'plamo-fast[train]'"
        )


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # in sys.modules without a spec: imported some other way
        return True
