"""Plain-text prompts (no chat template), greedy, one answer each: how llm-jp-eval prompts a
model (a transformers ``text-generation`` pipeline: the prompt tokenized with the tokenizer's
special tokens, e.g. a BOS, and the continuation decoded without them). Every backend does it
through :meth:`plamo_fast.generation.backends.Backend.complete` (the openai backend through
``/v1/completions``)."""

from __future__ import annotations

from collections.abc import Sequence

from plamo_fast.generation.backends import Backend, Candidate, SamplingOptions


def complete(engine: Backend, prompts: Sequence[str], max_new_tokens: int) -> list[Candidate]:
    """``{"text", "tokens", "finish_reason"}`` for each prompt, greedy."""
    options = SamplingOptions(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
    outs = engine.complete(prompts, options, keys=list(range(len(prompts))))
    return [candidates[0] for candidates in outs]
