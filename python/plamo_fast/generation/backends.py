"""Generation backends behind one interface, :class:`Backend`: conversations in, N candidates
per conversation out, in order, each ``{"text", "tokens", "finish_reason"}`` with finish_reason
``stop`` (the model ended its turn) or ``length`` (cut at max_new_tokens). ``sample``,
``score`` and ``eval`` (answering and judging) use only this interface, through
:func:`load_backend`.

- ``hf``: transformers ``generate`` (runs on a CPU; what the tests use). One conversation at a
  time with its own seed, so results do not depend on batching or on where a resumed run
  restarts.
- ``vllm``: vLLM's offline API (``LLM.chat``, ``SamplingParams(n=..., seed=...)``), imported
  only when used; a whole batch goes to the engine at once.
- ``openai``: any OpenAI-compatible server (``vllm serve``, a fleet behind a balancer), with
  concurrency, timeouts and retries.

Each conversation comes with a key, from which its seed derives (:func:`prompt_seed`): the same
key and settings give the same candidates within a backend, whatever else is in the batch.
The module depends on nothing else in plamo-fast but :mod:`plamo_fast.errors`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypedDict

from plamo_fast.errors import PlamoFastError, UsageError

BACKENDS = ("auto", "vllm", "hf", "openai")

Conversation = list[dict]  # chat messages: {"role", "content"}


class Candidate(TypedDict):
    text: str
    tokens: int
    finish_reason: str  # "stop" or "length"


@dataclass(frozen=True)
class SamplingOptions:
    n: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0
    repetition_penalty: float = 1.0  # 1: none (sent to a server only when set)


def prompt_seed(seed: int, key: int) -> int:
    """A per-conversation seed, stable across runs, batching and resumption."""
    return (seed * 1_000_003 + key * 7_919 + 12_345) % (2**31 - 1)


class Backend(ABC):
    """One generation engine. ``batch_size`` is how many conversations a caller should hand
    :meth:`generate` at once to keep the engine busy (the caller writes results after each
    call)."""

    name: str
    batch_size: int

    def generate(
        self, conversations: Sequence[Conversation], options: SamplingOptions, keys: Sequence[int]
    ) -> list[list[Candidate]]:
        """``options.n`` candidates for each conversation, in the order given; ``keys[i]``
        seeds conversation i."""
        if len(keys) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations but {len(keys)} keys")
        if not conversations:
            return []
        out = self._generate(conversations, options, keys)
        if len(out) != len(conversations) or any(len(c) != options.n for c in out):
            got = [len(c) for c in out]
            raise PlamoFastError(
                f"{self.name} backend: asked for {options.n} candidates for each of "
                f"{len(conversations)} conversations, got {got}"
            )
        return out

    @abstractmethod
    def _generate(
        self, conversations: Sequence[Conversation], options: SamplingOptions, keys: Sequence[int]
    ) -> list[list[Candidate]]: ...


def load_backend(
    backend: str,
    model: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    tensor_parallel_size: int = 1,
    concurrency: int = 8,
    timeout: float = 600.0,
    retries: int = 4,
) -> Backend:
    """The backend named ``backend`` (see :func:`resolve_backend`) serving ``model``."""
    backend = resolve_backend(backend, base_url)
    if backend == "openai":
        if not base_url:
            raise UsageError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        return OpenAIBackend(
            base_url, model, api_key, timeout=timeout, retries=retries, concurrency=concurrency
        )
    if backend == "vllm":
        return VLLMBackend(model, tensor_parallel_size)
    if backend == "hf":
        return HFBackend(model)
    raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}")


def resolve_backend(backend: str, base_url: str | None) -> str:
    """The backend ``auto`` stands for: openai with a ``base_url``, else vllm when it is
    installed and a GPU is present, else hf. Other names are returned as they are."""
    if backend != "auto":
        return backend
    return "openai" if base_url else "vllm" if _vllm_usable() else "hf"


def _vllm_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class HFBackend(Backend):
    name = "hf"
    batch_size = 1  # one conversation at a time, each with its own seed

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

    def _generate(self, conversations, options, keys):
        return [self._one(c, options, k) for c, k in zip(conversations, keys, strict=True)]

    def _one(self, messages: Conversation, opts: SamplingOptions, key: int) -> list[Candidate]:
        torch = self.torch
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"].to(self.device)
        torch.manual_seed(prompt_seed(opts.seed, key))
        sample = opts.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=sample,
                temperature=opts.temperature if sample else None,
                top_p=opts.top_p if sample else None,
                top_k=None,
                repetition_penalty=opts.repetition_penalty,
                max_new_tokens=opts.max_new_tokens,
                num_return_sequences=opts.n,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=min(self.stop_ids),
            )
        candidates: list[Candidate] = []
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


class VLLMBackend(Backend):
    """vLLM's offline engine: each batch is one ``LLM.chat`` call with a ``SamplingParams`` per
    conversation (its own seed)."""

    name = "vllm"
    batch_size = 256

    def __init__(self, model: str, tensor_parallel_size: int = 1):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise PlamoFastError(
                "--backend vllm needs vLLM: pip install 'plamo-fast[vllm]'"
            ) from exc
        self.llm = LLM(model=model, tensor_parallel_size=tensor_parallel_size)

    def _generate(self, conversations, options, keys):
        from vllm import SamplingParams

        params = [
            SamplingParams(
                n=options.n,
                temperature=options.temperature,
                top_p=options.top_p,
                max_tokens=options.max_new_tokens,
                seed=prompt_seed(options.seed, key),
                repetition_penalty=options.repetition_penalty,
            )
            for key in keys
        ]
        outputs = self.llm.chat(list(conversations), params, use_tqdm=False)
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


class OpenAIBackend(Backend):
    """POST /v1/chat/completions with ``n`` choices, ``concurrency`` requests in flight;
    retried with backoff on connection errors, timeouts, 429 and 5xx; other HTTP errors are
    reported at once."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 600.0,
        retries: int = 4,
        concurrency: int = 8,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        if not base_url.rstrip("/").endswith("/v1"):
            self.url = base_url.rstrip("/") + "/v1/chat/completions"
        self.model, self.api_key, self.timeout, self.retries = model, api_key, timeout, retries
        self.concurrency = max(1, concurrency)
        self.batch_size = self.concurrency * 4

    def _generate(self, conversations, options, keys):
        if len(conversations) == 1:
            return [self._one(conversations[0], options, keys[0])]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(lambda c, k: self._one(c, options, k), conversations, keys))

    def _one(self, messages: Conversation, opts: SamplingOptions, key: int) -> list[Candidate]:
        body = {
            "model": self.model,
            "messages": messages,
            "n": opts.n,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "max_tokens": opts.max_new_tokens,
            "seed": prompt_seed(opts.seed, key),
        }
        if opts.repetition_penalty != 1.0:  # vLLM's server takes it; OpenAI's API does not
            body["repetition_penalty"] = opts.repetition_penalty
        reply = self._post(body)
        choices = sorted(reply.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != opts.n:
            raise PlamoFastError(
                f"{self.url}: asked for {opts.n} choices (request key {key}), got {len(choices)}"
            )
        usage = reply.get("usage") or {}
        out: list[Candidate] = []
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
