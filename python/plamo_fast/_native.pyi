"""Type stubs of the native module (rust/py). Keep in sync with rust/py/src/*.rs."""

from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import final

from typing_extensions import Buffer

__all__ = [
    "ChatTokenizer",
    "InvalidFileError",
    "ModelMismatchError",
    "PlamoFastError",
    "SafetensorsModel",
    "__version__",
    "best_fit_decreasing_rows",
    "check_models_compatible",
    "gather_documents",
    "merge",
]
__version__: str

class PlamoFastError(Exception): ...
class InvalidFileError(PlamoFastError): ...
class ModelMismatchError(PlamoFastError): ...

@final
class SafetensorsModel:
    """An opened, validated model folder (memory-mapped safetensors)."""

    def __new__(cls, path: str | PathLike[str]) -> SafetensorsModel: ...
    @property
    def path(self) -> Path: ...
    def tensors(self) -> list[tuple[str, str, list[int]]]: ...
    def nbytes(self) -> int: ...
    def shard_files(self) -> list[Path]: ...

def check_models_compatible(models: list[SafetensorsModel]) -> None: ...
def merge(
    models: list[SafetensorsModel],
    method: str,
    recipes: dict[str, list[float]],
    out_dir: str | PathLike[str],
    *,
    max_shard_size: int,
    fsync: bool = True,
    threads: int = 0,
    normalize: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, object]: ...
def best_fit_decreasing_rows(
    lengths: list[int], capacity: int, seed: int
) -> tuple[bytes, bytes]: ...

@final
class ChatTokenizer:
    """A fast tokenizer (tokenizer.json) that labels response tokens from character spans."""

    def __new__(cls, path: str | PathLike[str]) -> ChatTokenizer: ...
    def encode_ids(self, text: str) -> list[int]: ...
    def encode_masked_batch(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[bytes, bytes, bytes]: ...

def gather_documents(
    tokens: Buffer,
    labels: Buffer,
    doc_offsets: Buffer,
    order: Buffer,
    out_ids: Buffer,
    out_labels: Buffer,
    out_positions: Buffer,
) -> None: ...
