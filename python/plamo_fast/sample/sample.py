"""``plamo-fast sample``: N candidate answers per prompt, resumable.

A run with no prompt to sample (every record skipped as bad, or a ``--shard`` that takes none
of the prompts) fails before anything is written or loaded, unless ``allow_empty``; more than
10% of the records skipped as bad gets a warning line
(:func:`plamo_fast.data.accounting.check_kept`)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.data.accounting import check_kept
from plamo_fast.errors import UsageError
from plamo_fast.generation.backends import Backend, SamplingOptions, check_backend, load_backend
from plamo_fast.sample.records import ResumableJsonl, read_prompts


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
    allow_empty: bool = False,
) -> dict:
    """Write one record per prompt (the input record plus ``index``, ``prompt_messages``,
    ``candidates`` and ``sampling``) to ``output``; ``stop_after`` prompts ends early without
    finishing (the tests' stand-in for a kill)."""
    options = options or SamplingOptions()
    if options.n < 1:
        raise UsageError("-n must be at least 1")
    if options.temperature == 0 and options.n > 1 and backend in ("hf", "auto"):
        raise UsageError("--temperature 0 is greedy: every candidate would be the same; use -n 1")
    k, n_shards = parse_shard(shard)
    # A missing package or model fails here, at once, before OUT.partial exists.
    check_backend(backend, model, base_url)
    prompts, bad = read_prompts(Path(prompts_path), skip_bad)
    _check_prompts(len(prompts), bad, k, n_shards, allow_empty)
    meta = {"model": model, "backend": backend, **vars(options)}
    writer = ResumableJsonl(
        Path(output), overwrite, meta, command="sample", inputs=[Path(prompts_path)]
    )
    todo = [i for i in range(len(prompts)) if i % n_shards == k and i not in writer.done]
    reasons: Counter = Counter()
    tokens = finished = 0
    update, stop = progress_bar("sample", len(todo), transfer=False, show=progress)
    try:
        engine = load_backend(
            backend,
            model,
            base_url=base_url,
            api_key=api_key,
            tensor_parallel_size=tensor_parallel_size,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
        )
        started = time.perf_counter()
        for index, candidates in _generate(engine, prompts, todo, options):
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
            rate = f"{tokens / elapsed:,.0f} tok/s" if elapsed > 0 else ""
            update(finished, " ".join(filter(None, [rate, engine.progress_note()])))
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


def _check_prompts(count: int, bad: list[str], k: int, n_shards: int, allow_empty: bool) -> None:
    """Refuses a run that would sample no prompt (see the module text)."""
    mine = len(range(k, count, n_shards))  # the prompts of shard k/n
    hints = [f"first bad record: {bad[0]}"] if bad else []
    if count and not mine:
        hints.append(f"--shard {k}/{n_shards} takes the prompts whose index % {n_shards} == {k}")
    dropped = {"bad_records_skipped": len(bad)}
    check_kept("sample", count + len(bad), mine, dropped, allow_empty,
               hint="; ".join(hints) or None, unit="prompts")  # fmt: skip


def _generate(engine: Backend, prompts, todo: list[int], options: SamplingOptions):
    """``(index, candidates)`` in prompt order, a batch at a time; the prompt index is the key
    of its seed."""
    for start in range(0, len(todo), engine.batch_size):
        chunk = todo[start : start + engine.batch_size]
        outs = engine.generate([prompts[i][1] for i in chunk], options, keys=chunk)
        yield from zip(chunk, outs, strict=True)
