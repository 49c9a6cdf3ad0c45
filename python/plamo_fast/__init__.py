"""plamo-fast: a Rust-accelerated post-training toolkit for large language models.

The base install covers the CPU data and checkpoint tools (``merge`` and ``pack`` now; ``dedup``
and ``decontaminate`` with their issue). Training and sampling live in the ``[train]`` and
``[vllm]`` extras and are imported lazily, so ``import plamo_fast`` never loads torch.
``plamo_fast.dedup``, ``plamo_fast.decontaminate`` and ``plamo_fast.pack`` take and return
polars/Arrow tables and 🤗 datasets (:mod:`plamo_fast.frames`, also loaded on first use).
"""

from plamo_fast._native import __version__
from plamo_fast.errors import InvalidFileError, ModelMismatchError, PlamoFastError

__all__ = [
    "InvalidFileError",
    "ModelMismatchError",
    "PlamoFastError",
    "__version__",
    "decontaminate",
    "dedup",
    "pack",
    "to_arrow",
]
# The data-frame API (plamo_fast.frames), imported on first use: polars, pyarrow and datasets
# load only when a function is called.
_FRAMES = ("decontaminate", "dedup", "pack", "to_arrow")


def __getattr__(name: str):
    if name in _FRAMES:
        from plamo_fast import frames

        return getattr(frames, name)
    raise AttributeError(f"module 'plamo_fast' has no attribute {name!r}")
