"""Generation backends. Each turns conversations into N candidates:
``{"text", "tokens", "finish_reason"}`` with finish_reason ``stop`` (the model ended its turn)
or ``length`` (cut at max_new_tokens).

- ``hf``: transformers ``generate`` (runs on a CPU; what the tests use). One prompt at a time
  with its own seed, so results do not depend on batching or on where a resumed run restarts.
- ``vllm``: vLLM's offline API (``LLM``, ``SamplingParams(n=...)``), imported only when used.
- ``openai``: any OpenAI-compatible server (``vllm serve``, a fleet behind a balancer), with
  concurrency, timeouts and retries.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from plamo_fast.errors import PlamoFastError


@dataclass(frozen=True)
class SamplingOptions:
    n: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0


def prompt_seed(seed: int, index: int) -> int:
    """A per-prompt seed, stable across runs, batching and resumption."""
    return (seed * 1_000_003 + index * 7_919 + 12_345) % (2**31 - 1)


class HFBackend:
    def __init__(self, model: str, device: str | None = None, dtype: str = "auto"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        torch_dtype = torch.bfloat16 if self.device == "cuda" and dtype == "auto" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(self.device)
        self.model.eval()
        # Stop on the model's end-of-sequence ids and the tokenizer's (they may differ, e.g. a
        # chat model whose turn ends with <|im_end|>).
        eos = self.model.generation_config.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.stop_ids |= {self.tokenizer.eos_token_id} - {None}
        if not self.stop_ids:
            raise PlamoFastError(f"{model}: no eos_token_id: cannot tell a finished answer")

    def generate(self, index: int, messages: list[dict], opts: SamplingOptions) -> list[dict]:
        torch = self.torch
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"].to(self.device)
        torch.manual_seed(prompt_seed(opts.seed, index))
        sample = opts.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=sample,
                temperature=opts.temperature if sample else None,
                top_p=opts.top_p if sample else None,
                top_k=None,
                max_new_tokens=opts.max_new_tokens,
                num_return_sequences=opts.n,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=min(self.stop_ids),
            )
        candidates = []
        for row in out[:, ids.shape[1] :].tolist():
            end = next((k for k, t in enumerate(row) if t in self.stop_ids), None)
            tokens = row[: end + 1] if end is not None else row
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            candidates.append(
                {
                    "text": text,
                    "tokens": len(tokens),
                    "finish_reason": "stop" if end is not None else "length",
                }
            )
        return candidates


class VLLMBackend:
    """vLLM's offline engine; prompts are sent in batches by the caller."""

    def __init__(self, model: str, tensor_parallel_size: int = 1):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise PlamoFastError(
                "--backend vllm needs vLLM: pip install 'plamo-fast[vllm]'"
            ) from exc
        self.llm = LLM(model=model, tensor_parallel_size=tensor_parallel_size)

    def generate_batch(
        self, indices: list[int], conversations: list[list[dict]], opts: SamplingOptions
    ) -> list[list[dict]]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                n=opts.n,
                temperature=opts.temperature,
                top_p=opts.top_p,
                max_tokens=opts.max_new_tokens,
                seed=prompt_seed(opts.seed, i),
            )
            for i in indices
        ]
        outputs = self.llm.chat(conversations, params, use_tqdm=False)
        return [
            [
                {
                    "text": c.text,
                    "tokens": len(c.token_ids),
                    "finish_reason": "length" if c.finish_reason == "length" else "stop",
                }
                for c in out.outputs
            ]
            for out in outputs
        ]


class OpenAIBackend:
    """POST /v1/chat/completions with ``n`` choices; retried with backoff on connection errors,
    timeouts, 429 and 5xx; other HTTP errors are reported at once."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 600.0,
        retries: int = 4,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        if not base_url.rstrip("/").endswith("/v1"):
            self.url = base_url.rstrip("/") + "/v1/chat/completions"
        self.model, self.api_key, self.timeout, self.retries = model, api_key, timeout, retries

    def generate(self, index: int, messages: list[dict], opts: SamplingOptions) -> list[dict]:
        body = {
            "model": self.model,
            "messages": messages,
            "n": opts.n,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "max_tokens": opts.max_new_tokens,
            "seed": prompt_seed(opts.seed, index),
        }
        reply = self._post(body)
        choices = sorted(reply.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != opts.n:
            raise PlamoFastError(
                f"{self.url}: asked for {opts.n} choices for prompt {index}, got {len(choices)}"
            )
        usage = reply.get("usage") or {}
        out = []
        for c in choices:
            text = (c.get("message") or {}).get("content") or ""
            tokens = c.get("completion_tokens", usage.get("completion_tokens", 0) // max(opts.n, 1))
            reason = "length" if c.get("finish_reason") == "length" else "stop"
            out.append({"text": text, "tokens": int(tokens), "finish_reason": reason})
        return out

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        delay = 1.0
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 500, 502, 503, 504) or attempt == self.retries:
                    detail = exc.read()[:300].decode("utf-8", "replace")
                    raise PlamoFastError(f"{self.url}: HTTP {exc.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.retries:
                    raise PlamoFastError(f"{self.url}: {exc} (after {attempt + 1} tries)") from None
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")
