"""Type stubs of the native module (rust/py). Keep in sync with rust/py/src/*.rs."""

from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import final

from typing_extensions import Buffer

__all__ = [
    "ChatTokenizer",
    "ColumnKeys",
    "Deduper",
    "LeakIndex",
    "InvalidFileError",
    "LabelMaskSpill",
    "ModelMismatchError",
    "ParquetListWriter",
    "PlamoFastError",
    "RougeFilter",
    "SafetensorsModel",
    "__version__",
    "best_fit_decreasing_rows",
    "check_models_compatible",
    "gather_chunks",
    "gather_documents",
    "gather_spilled",
    "labels_from_mask",
    "merge",
    "normalize_text",
    "normalize_with_spans",
    "pretokenized_trained_counts",
    "rouge_l",
    "rouge_tokens",
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
def best_fit_decreasing_rows(lengths: Buffer, capacity: int, seed: int) -> tuple[bytes, bytes]: ...

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
def gather_chunks(
    tokens: list[Buffer],
    labels: list[Buffer],
    doc_offsets: Buffer,
    order: Buffer,
    out_ids: Buffer,
    out_labels: Buffer,
    out_positions: Buffer,
) -> None: ...
def gather_spilled(
    tokens_path: str | PathLike[str],
    labels_path: str | PathLike[str],
    doc_offsets: Buffer,
    order: Buffer,
    out_ids: Buffer,
    out_labels: Buffer,
    out_positions: Buffer,
    *,
    labels_masked: bool = False,
) -> None: ...
def labels_from_mask(
    tokens_path: str | PathLike[str],
    mask_path: str | PathLike[str],
    values: int,
    out: str | PathLike[str],
) -> None: ...
def normalize_text(text: str) -> str: ...
def pretokenized_trained_counts(
    ids: Buffer,
    ids_offsets: Buffer,
    labels: Buffer,
    label_offsets: Buffer,
    limit: int,
) -> bytes | None: ...

@final
class LabelMaskSpill:
    """pack's label spill as one bit per token while each label is its token or -100."""

    def __new__(cls, path: str | PathLike[str]) -> LabelMaskSpill: ...
    def append(self, ids: Buffer, labels: Buffer) -> bool: ...
    @property
    def bits(self) -> int: ...
    def close(self) -> int: ...

@final
class ParquetListWriter:
    """A Parquet file of non-null list<int32>/list<int64> columns being written (pack's output):
    one row group per ``write_row_group`` (none for no rows), then ``close`` (footer, fsync)."""

    def __new__(
        cls,
        path: str | PathLike[str],
        columns: list[tuple[str, str]],
        *,
        compression: str = "snappy",
        key_value_metadata: list[tuple[str, str]] = ...,
        page_bytes: int = ...,
    ) -> ParquetListWriter: ...
    def write_row_group(self, columns: list[tuple[Buffer, Buffer]]) -> None: ...
    def close(self) -> None: ...

def normalize_with_spans(text: str) -> tuple[str, list[tuple[int, int]]]: ...

@final
class LeakIndex:
    """An index of benchmark items (one string per item) for the leak filter."""

    def __new__(
        cls,
        items: list[str],
        *,
        ngram: int = 5,
        candidate_containment: float = 0.3,
        min_item_len: int = 10,
        min_contained_len: int = 10,
        min_near_len: int = 30,
        edit_rate: float = 0.2,
        edit_free_len: int = 5,
    ) -> LeakIndex: ...
    def __len__(self) -> int: ...
    def item_len(self, item: int) -> int: ...
    def scan(self, texts: list[str]) -> list[tuple[int, int, str, float, float, int, int]]: ...

@final
class Deduper:
    """Exact and MinHash-LSH near-duplicate clustering over streamed texts."""

    def __new__(
        cls,
        spill_path: str | PathLike[str],
        *,
        near: bool,
        threshold: float = 0.8,
        ngram: int = 5,
        num_perm: int = 128,
        seed: int = 0,
        min_recall: float = 0.995,
    ) -> Deduper: ...
    def add(
        self,
        texts: list[str],
        near: list[bool],
        questions: list[str | None] | None = None,
        answers: list[str | None] | None = None,
    ) -> None: ...
    def __len__(self) -> int: ...
    def finish(
        self,
    ) -> tuple[bytes, bytes, tuple[bytes, bytes, bytes], tuple[int, int, int, int, int]]: ...
    @staticmethod
    def lsh_shape(
        threshold: float, num_perm: int, min_recall: float = 0.995
    ) -> tuple[int, int]: ...

@final
class ColumnKeys:
    """How dedup's key text of a row is built from a record batch's Arrow string columns, read
    in place (``plamo_fast.data.dedup._TableKeys``)."""

    def __new__(
        cls,
        *,
        prompt: bool,
        plain: list[int],
        alpaca: list[int],
        roles: list[int],
        answers: list[int],
        near: bool,
    ) -> ColumnKeys: ...
    def add(
        self,
        deduper: Deduper,
        columns: list[tuple[Buffer, Buffer, tuple[Buffer, int] | None]],
        alpaca_rows: tuple[Buffer, int] | None,
        quoted: Callable[[str], str | None],
    ) -> tuple[list[int], int]: ...

def rouge_l(a: str, b: str, unit: str = "auto") -> float: ...
def rouge_tokens(text: str, unit: str = "auto") -> list[str]: ...

@final
class RougeFilter:
    """A pool of token-id lists that texts are checked against by ROUGE-L F1."""

    def __new__(cls, threshold: float = 0.7, unit: str = "auto") -> RougeFilter: ...
    def __len__(self) -> int: ...
    @property
    def threshold(self) -> float: ...
    def add(self, text: str) -> None: ...
    def check(self, text: str) -> tuple[bool, float, int]: ...
    def add_if_novel(self, text: str) -> tuple[bool, float, int]: ...
    def filter(self, texts: list[str]) -> list[tuple[bool, float, int]]: ...
