"""Front end of ``plamo-fast merge``: checks the inputs, resolves one recipe per tensor, runs the
native streaming merge into a temporary folder beside the output, copies the base model's
config and tokenizer, and publishes the folder through :mod:`plamo_fast.outputs` (atomic,
fsynced, never over an input or a folder that is not an earlier merge output)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from plamo_fast import _native
from plamo_fast._progress import progress_bar
from plamo_fast.errors import ModelMismatchError, UsageError
from plamo_fast.merge.config import MergeConfig, layer_positions
from plamo_fast.outputs import atomic_output

DEFAULT_MAX_SHARD_SIZE = "5GB"
# Files copied from the base model next to the merged weights.
METADATA_PATTERNS = (
    "config.json",
    "generation_config.json",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.*",
    "merges.txt",
    "chat_template*",
    "*.tiktoken",
    "spiece.model",
    "preprocessor_config.json",
)
PROVENANCE_FILE = "plamo_fast_merge.json"
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(text: str | int) -> int:
    """``"5GB"`` -> 5_000_000_000 (decimal units as in transformers; ``GiB`` for binary)."""
    if isinstance(text, int):
        value = text
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
        if not match or match.group(2).upper() not in _UNITS:
            raise UsageError(f"cannot read size {text!r} (examples: 5GB, 500MB, 2GiB, 1000000)")
        value = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if value <= 0:
        raise UsageError(f"size must be positive, got {text!r}")
    return value


@dataclass
class MergeResult:
    output: Path
    tensors: int
    total_bytes: int
    shard_files: list[str]
    linear_fallbacks: int
    copied: int
    seconds: float


def _read_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (expected a Hugging Face model folder)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return config


def _vocab_size(config: dict):
    return config.get("vocab_size", (config.get("text_config") or {}).get("vocab_size"))


def _check_models(folders: list[Path], models: list) -> None:
    """Refusals with a clearer message than a generic tensor mismatch."""
    configs = [_read_config(f) for f in folders]
    vocab = [_vocab_size(c) for c in configs]
    if len({v for v in vocab if v is not None}) > 1:
        sizes = ", ".join(f"{f} has {v}" for f, v in zip(folders, vocab, strict=False))
        raise ModelMismatchError(
            f"different vocabulary sizes ({sizes}); plamo-fast does not resize embeddings"
        )
    names = [{name for name, _, _ in m.tensors()} for m in models]
    for head in ("lm_head.weight",):
        having = [f for f, n in zip(folders, names, strict=False) if head in n]
        if having and len(having) != len(folders):
            missing = [str(f) for f, n in zip(folders, names, strict=False) if head not in n]
            raise ModelMismatchError(
                f"{head} is stored in {', '.join(map(str, having))} but not in "
                f"{', '.join(missing)} (tied word embeddings); untie the embeddings of one model "
                "or merge models that agree"
            )
    _native.check_models_compatible(models)


def default_output(folders: Sequence[Path], method: str, t: float | None) -> Path:
    stem = "+".join(f.resolve().name for f in folders)
    suffix = f"slerp-t{t:g}" if method == "slerp" and t is not None else method
    return Path.cwd() / f"{stem}.{suffix}"


def _copy_metadata(base: Path, dest: Path) -> list[str]:
    copied = []
    for pattern in METADATA_PATTERNS:
        for src in sorted(base.glob(pattern)):
            if src.is_file() and not (dest / src.name).exists():
                shutil.copy2(src, dest / src.name)
                copied.append(src.name)
    return copied


def _progress_reporter(total: int, show: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    return progress_bar("merging", total, transfer=True, show=show)


def merge(
    models: Sequence[str | os.PathLike],
    *,
    method: str = "slerp",
    t: float | None = 0.5,
    weights: Sequence[float] | None = None,
    config: MergeConfig | None = None,
    output: str | os.PathLike | None = None,
    max_shard_size: str | int = DEFAULT_MAX_SHARD_SIZE,
    overwrite: bool = False,
    threads: int = 0,
    fsync: bool = True,
    progress: bool = False,
) -> MergeResult:
    """Merges checkpoints. SLERP: ``models = [A, B]``, A is the base (t = 0 gives A exactly).
    Linear: two or more models and one weight each (default: equal weights). A ``config`` (from
    :func:`plamo_fast.merge.config.load_config`) supplies method, models and per-tensor values."""
    started = time.perf_counter()
    if config is not None:
        method = config.method
        models = [m.path for m in config.models]
    if method not in ("slerp", "linear"):
        raise UsageError(f"unknown merge method {method!r} (expected slerp or linear)")
    folders = [Path(m) for m in models]
    if method == "slerp" and len(folders) != 2:
        raise UsageError(f"slerp merges exactly two models, got {len(folders)}")
    if method == "linear":
        if len(folders) < 2:
            raise UsageError(f"linear merges two or more models, got {len(folders)}")
        if config is None:
            weights = list(weights) if weights else [1.0] * len(folders)
            if len(weights) != len(folders):
                raise UsageError(f"{len(weights)} weights given for {len(folders)} models")
    if method == "slerp" and config is None and (t is None or not (0.0 <= t <= 1.0)):
        raise UsageError(f"t must be between 0 and 1, got {t}")
    if threads < 0:
        raise UsageError(f"threads must be 0 (all cores) or positive, got {threads}")
    shard_limit = parse_size(max_shard_size)

    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: model folder not found")
    handles = [_native.SafetensorsModel(f) for f in folders]
    _check_models(folders, handles)
    tensors = handles[0].tensors()
    if config is not None and config.dtype is not None:
        stored = {dtype for _, dtype, _ in tensors if dtype in ("BF16", "F16", "F32", "F64")}
        if stored and stored != {config.dtype}:
            raise UsageError(
                f"{config.source}: dtype {config.dtype} asked for but the models store "
                f"{', '.join(sorted(stored))}; plamo-fast writes the stored dtype (remove 'dtype')"
            )

    names = [name for name, _, _ in tensors]
    if config is None:
        recipes = {n: ([t] if method == "slerp" else list(weights)) for n in names}
        normalize = True
    else:
        positions = layer_positions(names)
        if method == "slerp":
            recipes = {n: [config.t_for(n, positions[n])] for n in names}
        else:
            recipes = {n: config.weights_for(n, positions[n]) for n in names}
        normalize = config.normalize()

    out = Path(output) if output is not None else default_output(folders, method, t)
    inputs = [*folders, *([config.source] if config is not None else [])]
    # The native writer flushes the shards in parallel (writeback starts as they are written);
    # publishing then fsyncs every file of the folder, which is cheap for the already clean
    # shards and covers the index, config and provenance files, and the parent after the rename.
    with atomic_output(
        out, command="merge", inputs=inputs, overwrite=overwrite, fsync=fsync
    ) as partial:
        update, stop = _progress_reporter(handles[0].nbytes(), progress)
        try:
            report = _native.merge(
                handles,
                method,
                recipes,
                partial,
                max_shard_size=shard_limit,
                fsync=fsync,
                threads=threads,
                normalize=normalize,
                progress=update,
            )
        finally:
            stop()
        _copy_metadata(folders[0], partial)
        provenance = {
            "plamo_fast_version": _native.__version__,
            "method": method,
            "models": [str(f.resolve()) for f in folders],
            "t": t if method == "slerp" and config is None else None,
            "weights": list(weights) if method == "linear" and config is None else None,
            "config": str(config.source.resolve()) if config is not None else None,
            "tensors": report["tensors"],
            "linear_fallbacks": report["linear_fallbacks"],
        }
        (partial / PROVENANCE_FILE).write_text(
            json.dumps(provenance, indent=2) + "\n", encoding="utf-8"
        )
    return MergeResult(
        output=out,
        tensors=report["tensors"],
        total_bytes=report["total_bytes"],
        shard_files=report["shard_files"],
        linear_fallbacks=report["linear_fallbacks"],
        copied=report["copied"],
        seconds=time.perf_counter() - started,
    )


def print_summary(result: MergeResult, file=sys.stderr) -> None:
    gb = result.total_bytes / 1e9
    rate = result.total_bytes / 1e6 / max(result.seconds, 1e-9)
    extra = f", {result.linear_fallbacks} by linear fallback" if result.linear_fallbacks else ""
    print(
        f"merged {result.tensors} tensors{extra} ({gb:.2f} GB, {len(result.shard_files)} shards) "
        f"in {result.seconds:.1f} s ({rate:.0f} MB/s) -> {result.output}",
        file=file,
    )
