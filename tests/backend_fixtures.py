"""One fake generation engine behind the real backends: an OpenAI-compatible server on loopback
(the openai backend) and a stand-in for vLLM's ``LLM``/``SamplingParams`` installed as the
``vllm`` module (the vllm backend). Both answer through :func:`fake_reply`, so the same test
can run the real backend code of either and expect the same candidates.

The engine echoes the last user turn with its seed and the candidate's index (candidate 1 ends
with ``length``), unless the prompt is a judge's: an answer marked GOOD gets ``[[9]]``, BAD
``［［２］］``, GARBLED an unparseable judgement at temperature 0 and ``[[5]]`` when re-asked with
sampling, LOST never a rating; pairwise, the GOOD answer wins (``[[A]]``/``[[B]]`` by its
position), and two EVEN answers get ``[[A]]`` (position bias)."""

from __future__ import annotations

import json
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def judgement(user: str, temperature: float) -> str | None:
    """What the fake judge says, or None when the prompt is not a judge's."""
    if "GOOD" in user and "BAD" in user:  # pairwise: which comes first?
        return "Verdict: [[A]]" if user.index("GOOD") < user.index("BAD") else "Verdict: [[B]]"
    if user.count("EVEN") == 2:
        return "Both fine. [[A]]"
    if "GOOD" in user:
        return "Helpful and correct.\nRating: [[9]]"
    if "BAD" in user:
        return "評価：［［２］］"
    if "GARBLED" in user:
        return "[[5]]" if temperature > 0 else "I cannot rate this [["
    if "LOST" in user:
        return "no rating here"
    return None


def fake_reply(messages: list[dict], n: int, seed: int, temperature: float) -> list[tuple]:
    """``(text, finish_reason)`` for each of n candidates."""
    user = messages[-1]["content"]
    judged = judgement(user, temperature)
    if judged is not None:
        return [(judged, "stop")] * n
    return [(f"{user}|{seed}|{k}", "length" if k == 1 else "stop") for k in range(n)]


def choice(k: int, text: str, reason: str = "stop") -> dict:
    return {"index": k, "message": {"role": "assistant", "content": text}, "finish_reason": reason}


class Server:
    """An OpenAI-compatible /v1/chat/completions on loopback; ``reply(body, calls)`` returns
    ``(status, choices)`` (default: :func:`fake_reply`)."""

    def __init__(self, reply=None):
        self.calls = []
        reply = reply or _fake_choices
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls.append(body)
                status, choices = reply(body, len(outer.calls))
                data = json.dumps({"choices": choices, "usage": {"completion_tokens": 3}}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed while waiting (a resume test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _fake_choices(body: dict, calls: int) -> tuple[int, list[dict]]:
    replies = fake_reply(body["messages"], body["n"], body["seed"], body["temperature"])
    return 200, [choice(k, text, reason) for k, (text, reason) in enumerate(replies)]


class FakeSamplingParams:
    """The fields of ``vllm.SamplingParams`` that the backend sets."""

    def __init__(
        self, n=1, temperature=1.0, top_p=1.0, max_tokens=16, seed=None, repetition_penalty=1.0
    ):
        self.n, self.temperature, self.top_p = n, temperature, top_p
        self.max_tokens, self.seed = max_tokens, seed
        self.repetition_penalty = repetition_penalty


class FakeLLM:
    """``vllm.LLM`` as the backend uses it: ``LLM(model=..., tensor_parallel_size=...)`` and
    ``chat(conversations, sampling_params, use_tqdm=...)`` returning one ``RequestOutput``-like
    object per conversation, in order, whose ``outputs`` hold ``text``, ``token_ids`` and
    ``finish_reason``. Every call is recorded in ``FakeLLM.calls``."""

    calls: list = []

    def __init__(self, model: str, tensor_parallel_size: int = 1):
        self.model, self.tensor_parallel_size = model, tensor_parallel_size

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        if messages and isinstance(messages[0], dict):  # one conversation
            messages = [messages]
        if not isinstance(sampling_params, list):
            sampling_params = [sampling_params or FakeSamplingParams()] * len(messages)
        if len(sampling_params) != len(messages):  # vLLM refuses this too
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        FakeLLM.calls.append((len(messages), [p.seed for p in sampling_params]))
        results = []
        for conversation, p in zip(messages, sampling_params, strict=True):
            outputs = [
                types.SimpleNamespace(
                    text=text, token_ids=list(range(len(text.split()))), finish_reason=reason
                )
                for text, reason in fake_reply(conversation, p.n, p.seed, p.temperature)
            ]
            results.append(types.SimpleNamespace(outputs=outputs))
        return results


def install_fake_vllm(monkeypatch) -> None:
    """Make ``import vllm`` give the fake engine for the rest of the test."""
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(__import__("sys").modules, "vllm", module)
    monkeypatch.setattr(FakeLLM, "calls", [])
