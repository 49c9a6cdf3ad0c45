"""``plamo-fast sample``: N candidate answers per prompt, resumable."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.errors import UsageError
from plamo_fast.sample.backends import SamplingOptions
from plamo_fast.sample.records import ResumableJsonl, read_prompts

BACKENDS = ("auto", "vllm", "hf", "openai")


def make_backend(
    backend: str,
    model: str,
    *,
    base_url=None,
    api_key=None,
    tensor_parallel_size: int = 1,
    timeout: float = 600.0,
    retries: int = 4,
):
    if backend == "auto":
        backend = "openai" if base_url else "vllm" if _vllm_usable() else "hf"
    if backend == "openai":
        if not base_url:
            raise UsageError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        from plamo_fast.sample.backends import OpenAIBackend

        return backend, OpenAIBackend(base_url, model, api_key, timeout=timeout, retries=retries)
    if backend == "vllm":
        from plamo_fast.sample.backends import VLLMBackend

        return backend, VLLMBackend(model, tensor_parallel_size)
    if backend == "hf":
        from plamo_fast.sample.backends import HFBackend

        return backend, HFBackend(model)
    raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}")


def _vllm_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def parse_shard(shard: str | None) -> tuple[int, int]:
    """``K/N``: this process takes prompts whose index % N == K (data parallelism)."""
    if not shard:
        return 0, 1
    k, _, n = shard.partition("/")
    if not (k.isdigit() and n.isdigit()) or not 0 <= int(k) < int(n):
        raise UsageError(f"--shard takes K/N with 0 <= K < N, got {shard!r}")
    return int(k), int(n)


def sample(
    prompts_path: Path,
    model: str,
    output: Path,
    *,
    backend: str = "auto",
    options: SamplingOptions | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    concurrency: int = 8,
    tensor_parallel_size: int = 1,
    timeout: float = 600.0,
    retries: int = 4,
    shard: str | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Write one record per prompt (the input record plus ``index``, ``prompt_messages``,
    ``candidates`` and ``sampling``) to ``output``; ``stop_after`` prompts ends early without
    finishing (the tests' stand-in for a kill)."""
    options = options or SamplingOptions()
    if options.n < 1:
        raise UsageError("-n must be at least 1")
    if options.temperature == 0 and options.n > 1 and backend in ("hf", "auto"):
        raise UsageError("--temperature 0 is greedy: every candidate would be the same; use -n 1")
    prompts, bad = read_prompts(Path(prompts_path), skip_bad)
    k, n_shards = parse_shard(shard)
    meta = {"model": model, "backend": backend, **vars(options)}
    writer = ResumableJsonl(Path(output), overwrite, meta)
    todo = [i for i in range(len(prompts)) if i % n_shards == k and i not in writer.done]
    name, engine = make_backend(
        backend,
        model,
        base_url=base_url,
        api_key=api_key,
        tensor_parallel_size=tensor_parallel_size,
        timeout=timeout,
        retries=retries,
    )
    reasons: Counter = Counter()
    tokens = 0
    update, stop = progress_bar("sample", len(todo), transfer=False, show=progress)
    started = time.perf_counter()
    finished = 0
    try:
        for index, candidates in _generate(name, engine, prompts, todo, options, concurrency):
            record, messages = prompts[index]
            writer.write(
                {
                    **record,
                    "prompt_index": index,
                    "prompt_messages": messages,
                    "candidates": candidates,
                    "sampling": meta,
                }
            )
            reasons.update(c["finish_reason"] for c in candidates)
            tokens += sum(c["tokens"] for c in candidates)
            finished += 1
            if finished % 16 == 0:
                writer.sync()
            elapsed = time.perf_counter() - started
            update(finished, f"{tokens / elapsed:,.0f} tok/s" if elapsed > 0 else "")
            if stop_after is not None and finished >= stop_after:
                writer.close()
                return {"prompts": len(prompts), "sampled": finished, "finished": False}
        writer.finish()
    finally:
        stop()
        writer.close()
    seconds = time.perf_counter() - started
    return {
        "prompts": len(prompts),
        "shard": f"{k}/{n_shards}",
        "already_done": len(writer.done),
        "sampled": finished,
        "candidates": finished * options.n,
        "tokens": tokens,
        "finish_reasons": dict(reasons),
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
        "bad_records_skipped": len(bad),
        "output": str(output),
    }


def _generate(name, engine, prompts, todo, options, concurrency):
    """``(index, candidates)`` in prompt order."""
    if name == "openai":
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for start in range(0, len(todo), concurrency * 4):
                chunk = todo[start : start + concurrency * 4]
                results = pool.map(lambda i: engine.generate(i, prompts[i][1], options), chunk)
                yield from zip(chunk, results, strict=True)
    elif name == "vllm":
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            outs = engine.generate_batch(chunk, [prompts[i][1] for i in chunk], options)
            yield from zip(chunk, outs, strict=True)
    else:
        for i in todo:
            yield i, engine.generate(i, prompts[i][1], options)
