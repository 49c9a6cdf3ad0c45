"""plamo-fast: a Rust-accelerated post-training toolkit for large language models.

The base install covers the CPU data and checkpoint tools (``merge`` and ``pack`` now; ``dedup``
and ``decontaminate`` with their issue). Training and sampling live in the ``[train]`` and
``[vllm]`` extras and are imported lazily, so ``import plamo_fast`` never loads torch.
"""

from plamo_fast._native import __version__
from plamo_fast.errors import InvalidFileError, ModelMismatchError, PlamoFastError

__all__ = ["InvalidFileError", "ModelMismatchError", "PlamoFastError", "__version__"]
