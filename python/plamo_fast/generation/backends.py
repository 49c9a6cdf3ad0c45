"""Generation backends behind one interface, :class:`Backend`: conversations
(:meth:`Backend.generate`, through the model's chat template) or plain-text prompts
(:meth:`Backend.complete`, continued as they are) in, N candidates per request out, in order,
each ``{"text", "tokens", "finish_reason"}`` with finish_reason ``stop`` (the model ended its
turn) or ``length`` (cut at max_new_tokens). ``sample``, ``score`` and ``eval`` (answering and
judging) use only this interface, through :func:`load_backend`.

- ``hf``: transformers ``generate`` (runs on a CPU; what the tests use). One request at a time
  with its own seed, so results do not depend on batching or on where a resumed run restarts.
- ``vllm``: vLLM's offline API (``LLM.chat`` and ``LLM.generate``,
  ``SamplingParams(n=..., seed=...)``), imported only when used; a whole batch goes to the
  engine at once.
- ``openai``: any OpenAI-compatible server (``vllm serve``), or a fleet of them
  (:mod:`plamo_fast.generation.fleet`: least outstanding requests, failing servers taken out
  for a while and their requests retried elsewhere): ``/v1/chat/completions`` and
  ``/v1/completions``, with concurrency, timeouts and retries. Its :meth:`progress_note` is
  each server's throughput.

Each request comes with a key, from which its seed derives (:func:`prompt_seed`): the same key
and settings give the same candidates within a backend, whatever else is in the batch.

:func:`check_backend` checks at once, before a caller creates any output, what loading a
backend needs: its packages, and for hf and vllm the model's local folder
(:func:`plamo_fast.model_paths.resolve_model`: a missing path is "not found" at once, a hub
name is looked up in the local hub cache only). The module depends on nothing else in
plamo-fast but :mod:`plamo_fast.errors`, :mod:`plamo_fast.model_paths` and
:mod:`plamo_fast.generation.fleet`.
"""

from __future__ import annotations

import http.client
import importlib.util
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
from plamo_fast.generation.fleet import Fleet, base_urls
from plamo_fast.model_paths import require_transformers, resolve_model

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
    """One generation engine. ``batch_size`` is how many requests a caller should hand
    :meth:`generate` or :meth:`complete` at once to keep the engine busy (the caller writes
    results after each call)."""

    name: str
    batch_size: int

    def progress_note(self) -> str:
        """Text for a progress bar beside the caller's own rate (per-server throughput of a
        fleet); empty when there is nothing to add."""
        return ""

    def generate(
        self, conversations: Sequence[Conversation], options: SamplingOptions, keys: Sequence[int]
    ) -> list[list[Candidate]]:
        """``options.n`` candidates for each conversation (answered through the model's chat
        template), in the order given; ``keys[i]`` seeds conversation i."""
        return self._checked(self._generate, conversations, options, keys, "conversations")

    def complete(
        self, prompts: Sequence[str], options: SamplingOptions, keys: Sequence[int]
    ) -> list[list[Candidate]]:
        """As :meth:`generate`, for plain-text prompts continued as they are: no chat template;
        the tokenizer adds its special tokens (a BOS), as a transformers ``text-generation``
        pipeline, vLLM's ``LLM.generate`` and a ``/v1/completions`` server do."""
        if not all(isinstance(p, str) for p in prompts):
            raise TypeError("complete takes plain-text prompts (str); conversations go to generate")
        return self._checked(self._complete, prompts, options, keys, "prompts")

    def _checked(self, run, requests, options: SamplingOptions, keys, what: str):
        if len(keys) != len(requests):
            raise ValueError(f"{len(requests)} {what} but {len(keys)} keys")
        if not requests:
            return []
        out = run(requests, options, keys)
        if len(out) != len(requests) or any(len(c) != options.n for c in out):
            got = [len(c) for c in out]
            raise PlamoFastError(
                f"{self.name} backend: asked for {options.n} candidates for each of "
                f"{len(requests)} {what}, got {got}"
            )
        return out

    @abstractmethod
    def _generate(
        self, conversations: Sequence[Conversation], options: SamplingOptions, keys: Sequence[int]
    ) -> list[list[Candidate]]: ...

    @abstractmethod
    def _complete(
        self, prompts: Sequence[str], options: SamplingOptions, keys: Sequence[int]
    ) -> list[list[Candidate]]: ...


def load_backend(
    backend: str,
    model: str,
    *,
    base_url: str | Sequence[str] | None = None,
    api_key: str | None = None,
    tensor_parallel_size: int = 1,
    concurrency: int = 8,
    timeout: float = 600.0,
    retries: int = 4,
) -> Backend:
    """The backend named ``backend`` (see :func:`resolve_backend`) serving ``model``, after
    :func:`check_backend`. ``base_url``: a server, or several (a list, or URLs separated by
    commas, or ``@FILE``: :func:`~plamo_fast.generation.fleet.base_urls`)."""
    backend, where = check_backend(backend, model, base_url)
    if backend == "openai":
        assert base_url is not None  # checked
        return OpenAIBackend(
            base_url, model, api_key, timeout=timeout, retries=retries, concurrency=concurrency
        )
    if backend == "vllm":
        return VLLMBackend(where, tensor_parallel_size)
    return HFBackend(where)


def check_backend(
    backend: str, model: str, base_url: str | Sequence[str] | None = None
) -> tuple[str, str]:
    """``(backend name, where the model is)``, checked at once so that a caller can fail before
    it creates anything: the backend exists, its packages are installed (without importing
    them), and for hf and vllm the model is a local folder or in the local hub cache
    (:func:`~plamo_fast.model_paths.resolve_model`); for openai it is a name on the server, and
    the servers' URLs are checked."""
    name = resolve_backend(backend, base_url)
    if name == "openai":
        if not base_urls(base_url):
            raise UsageError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        return name, model
    if name == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise PlamoFastError("--backend vllm needs vLLM: pip install 'plamo-fast[vllm]'")
    elif name == "hf":
        require_transformers(
            "--backend hf" if backend == "hf" else "--backend auto without --base-url (hf)"
        )
    else:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}")
    return name, resolve_model(model)


def resolve_backend(backend: str, base_url: str | Sequence[str] | None) -> str:
    """The backend ``auto`` stands for: openai with a ``base_url``, else vllm when it is
    installed and a GPU is present, else hf. Other names are returned as they are."""
    if backend != "auto":
        return backend
    return "openai" if base_url else "vllm" if _vllm_usable() else "hf"


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


class HFBackend(Backend):
    name = "hf"
    batch_size = 1  # one conversation at a time, each with its own seed

    def __init__(self, model: str, device: str | None = None, dtype: str = "auto"):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # installed (check_backend) but broken
            raise PlamoFastError(f"--backend hf: cannot import torch/transformers: {exc}") from None

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
        return [
            self._one(self._chat_ids(c), options, k)
            for c, k in zip(conversations, keys, strict=True)
        ]

    def _complete(self, prompts, options, keys):
        return [
            self._one(self.tokenizer(p, return_tensors="pt")["input_ids"], options, k)
            for p, k in zip(prompts, keys, strict=True)
        ]

    def _chat_ids(self, messages: Conversation):
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]

    def _one(self, ids, opts: SamplingOptions, key: int) -> list[Candidate]:
        """``opts.n`` continuations of the token ids ``ids`` (a 1 x length tensor)."""
        torch = self.torch
        ids = ids.to(self.device)
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
                # Greedy gives one answer (transformers refuses n > 1 without sampling): it is
                # each of the n candidates, as vLLM returns them.
                num_return_sequences=opts.n if sample else 1,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=min(self.stop_ids),
            )
        candidates: list[Candidate] = []
        rows = out[:, ids.shape[1] :].tolist()
        for row in rows if sample else rows * opts.n:
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
    """vLLM's offline engine: each batch is one ``LLM.chat`` (conversations) or ``LLM.generate``
    (plain-text prompts) call with a ``SamplingParams`` per request (its own seed)."""

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
        params = self._params(options, keys)
        return self._candidates(self.llm.chat(list(conversations), params, use_tqdm=False))

    def _complete(self, prompts, options, keys):
        params = self._params(options, keys)
        return self._candidates(self.llm.generate(list(prompts), params, use_tqdm=False))

    @staticmethod
    def _params(options: SamplingOptions, keys: Sequence[int]) -> list:
        from vllm import SamplingParams

        return [
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

    @staticmethod
    def _candidates(outputs) -> list[list[Candidate]]:
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
    """POST /v1/chat/completions (conversations) or /v1/completions (plain-text prompts) with
    ``n`` choices to one server or a fleet of them (:mod:`plamo_fast.generation.fleet`:
    ``concurrency`` requests in flight on each, to the least busy; a failing server is taken
    out for a while and its requests retried on another). A request is tried up to
    ``retries`` more times than there are servers, on connection errors, timeouts, 429 (after
    a backoff) and 5xx; other HTTP errors are reported at once."""

    name = "openai"

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        api_key: str | None = None,
        timeout: float = 600.0,
        retries: int = 4,
        concurrency: int = 8,
    ):
        self.fleet = Fleet(base_urls(base_url), max(1, concurrency))
        self.model, self.api_key, self.timeout, self.retries = model, api_key, timeout, retries
        self.concurrency = self.fleet.per_server * len(self.fleet)  # in flight, all servers
        self.batch_size = self.concurrency * 4

    def progress_note(self) -> str:
        return self.fleet.progress_note() if len(self.fleet) > 1 else ""

    def _generate(self, conversations, options, keys):
        return self._each("/chat/completions", "messages", conversations, options, keys)

    def _complete(self, prompts, options, keys):
        return self._each("/completions", "prompt", prompts, options, keys)

    def _each(self, path: str, field: str, requests, options, keys) -> list[list[Candidate]]:
        """One request per item of ``requests`` (sent as ``field``), ``concurrency`` at once."""

        def one(request, key):
            return self._one(path, {field: request}, options, key)

        if len(requests) == 1:
            return [one(requests[0], keys[0])]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(one, requests, keys))

    def _one(self, path: str, request: dict, opts: SamplingOptions, key: int) -> list[Candidate]:
        body = {
            "model": self.model,
            **request,
            "n": opts.n,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "max_tokens": opts.max_new_tokens,
            "seed": prompt_seed(opts.seed, key),
        }
        if opts.repetition_penalty != 1.0:  # vLLM's server takes it; OpenAI's API does not
            body["repetition_penalty"] = opts.repetition_penalty
        url, reply = self._post(path, body)
        choices = sorted(reply.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != opts.n:
            raise PlamoFastError(
                f"{url}: asked for {opts.n} choices (request key {key}), got {len(choices)}"
            )
        usage = reply.get("usage") or {}
        out: list[Candidate] = []
        for c in choices:
            if "messages" in request:
                text = (c.get("message") or {}).get("content") or ""
            else:  # /v1/completions
                text = c.get("text") or ""
            tokens = c.get("completion_tokens", usage.get("completion_tokens", 0) // max(opts.n, 1))
            reason = "length" if c.get("finish_reason") == "length" else "stop"
            out.append({"text": text, "tokens": int(tokens), "finish_reason": reason})
        return out

    def _post(self, path: str, body: dict) -> tuple[str, dict]:
        """``(url, reply)``: ``body`` posted to ``path`` on the servers the fleet picks until
        one answers, at most ``retries`` + (number of servers) tries, each within ``timeout``
        seconds, waits for a server included."""
        data = json.dumps(body).encode()
        tries = self.retries + len(self.fleet)
        deadline = time.monotonic() + tries * (self.timeout + self.fleet.cool_down_max)
        failed_on: set[int] = set()
        delay, last = 1.0, ""
        for _ in range(tries):
            server, sent = self.fleet.acquire(failed_on, deadline)
            url = server.url + path
            try:
                reply = self._send(url, data)
            except urllib.error.HTTPError as exc:
                detail = _detail(exc)
                last = f"{url}: HTTP {exc.code}: {detail}"
                if exc.code in (500, 502, 503, 504):
                    self.fleet.failed(server, sent, hard=False)
                    failed_on.add(server.index)
                    continue
                self.fleet.released(server)
                if exc.code != 429:
                    raise PlamoFastError(last) from None
                time.sleep(delay)  # too many requests: back off
                delay = min(delay * 2, 30.0)
                continue
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                self.fleet.failed(server, sent, hard=True)
                failed_on.add(server.index)
                last = f"{url}: {getattr(exc, 'reason', None) or exc}"
                continue
            except BaseException:
                self.fleet.released(server)
                raise
            self.fleet.succeeded(server)
            return url, reply
        raise PlamoFastError(f"{last} (after {tries} tries)")

    def _send(self, url: str, data: bytes) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read()
        try:
            return json.loads(raw)
        except ValueError:
            raise PlamoFastError(f"{url}: the reply is not JSON: {raw[:200]!r}") from None


def _detail(exc: urllib.error.HTTPError) -> str:
    """The start of an HTTP error's body (empty when it cannot be read)."""
    try:
        return exc.read()[:300].decode("utf-8", "replace")
    except OSError:
        return ""
