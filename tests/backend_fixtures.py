"""One fake generation engine behind the real backends: an OpenAI-compatible server on loopback
(the openai backend) and a stand-in for vLLM's ``LLM``/``SamplingParams`` installed as the
``vllm`` module (the vllm backend). Both answer conversations through :func:`fake_reply` and
plain-text prompts through :func:`fake_continuation`, so the same test can run the real backend
code of either and expect the same candidates.

The engine echoes the last user turn with its seed and the candidate's index (candidate 1 ends
with ``length``), unless the prompt is a judge's: an answer marked GOOD gets ``[[9]]``, BAD
``［［２］］``, GARBLED an unparseable judgement at temperature 0 and ``[[5]]`` when re-asked with
sampling, LOST never a rating; pairwise, the GOOD answer wins (``[[A]]``/``[[B]]`` by its
position), and two EVEN answers get ``[[A]]`` (position bias)."""

from __future__ import annotations

import importlib.machinery
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


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


def fake_continuation(prompt: str, n: int, seed: int, temperature: float) -> list[tuple]:
    """``(text, finish_reason)`` for each of n continuations of a plain-text prompt: unlike
    :func:`fake_reply`'s answers, they tell that no chat template was involved."""
    return [(f"{prompt}...{seed}.{k}", "length" if k == 1 else "stop") for k in range(n)]


def choice(k: int, text: str, reason: str = "stop") -> dict:
    return {"index": k, "message": {"role": "assistant", "content": text}, "finish_reason": reason}


class Server:
    """An OpenAI-compatible /v1/chat/completions and /v1/completions on loopback;
    ``reply(body, calls)`` returns ``(status, choices)`` (default: :func:`fake_reply` for
    conversations, :func:`fake_continuation` for plain-text prompts). ``calls`` holds each
    request's body, ``paths`` the path it was sent to.

    For fleets: each reply takes ``delay`` seconds; the server dies (as a killed ``vllm serve``:
    it closes every connection without a reply, the requests in flight included) when
    :meth:`die` is called or on receiving request number ``die_after + 1``, and :meth:`revive`
    brings it back. ``answered`` counts the replies sent, ``dropped`` holds the
    ``time.monotonic()`` of each request dropped."""

    def __init__(self, reply=None, *, delay: float = 0.0, die_after: int | None = None):
        self.calls, self.paths = [], []
        self.answered, self.dropped, self.dead = 0, [], False
        reply = reply or _fake_choices
        outer = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    if die_after is not None and len(outer.calls) == die_after:
                        outer.die()
                    outer.calls.append(body)
                    outer.paths.append(self.path)
                    calls = len(outer.calls)
                if not outer.dead:
                    time.sleep(delay)
                if outer.dead:  # no reply: the client sees the connection closed
                    with lock:
                        outer.dropped.append(time.monotonic())
                    self.close_connection = True
                    return
                status, choices = reply(body, calls)
                data = json.dumps({"choices": choices, "usage": {"completion_tokens": 3}}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(data)
                    with lock:
                        outer.answered += status == 200
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed while waiting (a resume test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def die(self):
        self.died_at, self.dead = time.monotonic(), True

    def revive(self):
        self.dead = False

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _fake_choices(body: dict, calls: int) -> tuple[int, list[dict]]:
    if "prompt" in body:  # /v1/completions
        replies = fake_continuation(body["prompt"], body["n"], body["seed"], body["temperature"])
        return 200, [
            {"index": k, "text": text, "finish_reason": reason}
            for k, (text, reason) in enumerate(replies)
        ]
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
    """``vllm.LLM`` as the backend uses it: ``LLM(model=..., tensor_parallel_size=...)``,
    ``chat(conversations, sampling_params, use_tqdm=...)`` and ``generate(prompts, ...)``
    returning one ``RequestOutput``-like object per request, in order, whose ``outputs`` hold
    ``text``, ``token_ids`` and ``finish_reason``. Every call is recorded in ``FakeLLM.calls``
    as ``(requests, seeds)``."""

    calls: list = []

    def __init__(self, model: str, tensor_parallel_size: int = 1):
        self.model, self.tensor_parallel_size = model, tensor_parallel_size

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        if messages and isinstance(messages[0], dict):  # one conversation
            messages = [messages]
        return self._answer(messages, sampling_params, fake_reply)

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        if isinstance(prompts, str):
            prompts = [prompts]
        if not all(isinstance(p, str) for p in prompts):
            raise TypeError("this fake takes text prompts only")
        return self._answer(prompts, sampling_params, fake_continuation)

    @staticmethod
    def _answer(requests, sampling_params, engine):
        if not isinstance(sampling_params, list):
            sampling_params = [sampling_params or FakeSamplingParams()] * len(requests)
        if len(sampling_params) != len(requests):  # vLLM refuses this too
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        FakeLLM.calls.append((len(requests), [p.seed for p in sampling_params]))
        results = []
        for request, p in zip(requests, sampling_params, strict=True):
            outputs = [
                types.SimpleNamespace(
                    text=text, token_ids=list(range(len(text.split()))), finish_reason=reason
                )
                for text, reason in engine(request, p.n, p.seed, p.temperature)
            ]
            results.append(types.SimpleNamespace(outputs=outputs))
        return results


def install_fake_vllm(monkeypatch, tmp_path: Path) -> str:
    """Make ``import vllm`` give the fake engine for the rest of the test; returns a model
    folder for it (a config and a tokenizer config: what the backend checks before loading)."""
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)  # found by find_spec
    module.LLM = FakeLLM
    module.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(FakeLLM, "calls", [])
    folder = tmp_path / "fake-vllm-model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}\n')
    (folder / "tokenizer_config.json").write_text("{}\n")
    return str(folder)


def killed_then_resumed(command: list[str], folder: Path) -> tuple[Path, Path]:
    """Run ``command -o folder/killed.jsonl`` in a process, SIGKILL it once its
    ``.partial`` holds two lines, run it again to the end; then run it uninterrupted to
    ``folder/straight.jsonl``. Returns (killed, straight) for the test to compare."""
    killed, straight = folder / "killed.jsonl", folder / "straight.jsonl"
    partial, log = folder / "killed.jsonl.partial", folder / "killed.stderr"
    with open(log, "wb") as err:
        proc = subprocess.Popen([*command, "-o", str(killed)], stderr=err)
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        if partial.exists() and partial.read_text().count("\n") >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"{command[3]} ended before it was killed: {log.read_text()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not killed.exists()
    subprocess.run([*command, "-o", str(killed)], check=True, capture_output=True)
    subprocess.run([*command, "-o", str(straight)], check=True, capture_output=True)
    return killed, straight
