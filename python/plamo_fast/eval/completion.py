"""Plain-text prompts (no chat template) on a loaded generation backend, greedy, one answer each.

llm-jp-eval sends its prompt as plain text (a transformers ``text-generation`` pipeline: the
prompt tokenized with the tokenizer's special tokens, e.g. a BOS, and the continuation decoded
without them). The backends of :mod:`plamo_fast.generation.backends` take conversations; until
they take plain prompts too (a ``complete`` method, used here when present), this module does
it for the hf and vllm backends through the engine they hold. The openai backend would need
``/v1/completions``: use ``--chat`` with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from plamo_fast.errors import UsageError


def complete(engine, prompts: Sequence[str], max_new_tokens: int) -> list[dict]:
    """``{"text", "tokens", "finish_reason"}`` for each prompt, greedy."""
    if hasattr(engine, "complete"):
        return engine.complete(prompts, max_new_tokens)
    if engine.name == "hf":
        return [_hf_one(engine, p, max_new_tokens) for p in prompts]
    if engine.name == "vllm":
        return _vllm(engine, prompts, max_new_tokens)
    raise UsageError(
        f"the {engine.name} backend cannot send llm-jp-eval's plain-text prompt; "
        "pass --chat (the model's chat template) or use --backend hf / vllm"
    )


def _hf_one(engine, prompt: str, max_new_tokens: int) -> dict:
    torch = engine.torch
    ids = engine.tokenizer(prompt, return_tensors="pt")["input_ids"].to(engine.device)
    stop = sorted(engine.stop_ids)
    with torch.no_grad():
        out = engine.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            max_new_tokens=max_new_tokens,
            eos_token_id=stop,
            pad_token_id=stop[0],
        )
    row = out[0, ids.shape[1] :].tolist()
    end = next((k for k, t in enumerate(row) if t in engine.stop_ids), None)
    tokens = row[: end + 1] if end is not None else row
    return {
        "text": engine.tokenizer.decode(tokens, skip_special_tokens=True),
        "tokens": len(tokens),
        "finish_reason": "stop" if end is not None else "length",
    }


def _vllm(engine, prompts: Sequence[str], max_new_tokens: int) -> list[dict]:
    from vllm import SamplingParams

    params = SamplingParams(n=1, temperature=0.0, max_tokens=max_new_tokens)
    outputs = engine.llm.generate(list(prompts), params, use_tqdm=False)
    return [
        {
            "text": out.outputs[0].text,
            "tokens": len(out.outputs[0].token_ids),
            "finish_reason": "length" if out.outputs[0].finish_reason == "length" else "stop",
        }
        for out in outputs
    ]
