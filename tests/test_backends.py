"""The one generation interface (``Backend.generate``) of the three backends, each running its
real code: openai against a loopback server and vllm against a stand-in ``vllm.LLM``, both
answering through the same fake engine (:mod:`backend_fixtures`), and hf on a tiny model built
from a config. Then ``score --judge`` and ``score --pairwise`` through the vllm backend, which
once crashed (it had no ``generate``)."""

from __future__ import annotations

import json
import types

import pytest
from backend_fixtures import FakeLLM, Server, fake_continuation, fake_reply, install_fake_vllm
from chat_fixtures import write_jsonl

from plamo_fast.cli import main
from plamo_fast.generation.backends import Backend, SamplingOptions, load_backend, prompt_seed

CONVERSATIONS = [
    [{"role": "user", "content": "日本の首都はどこですか？"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1 + 1?"}],
    [{"role": "user", "content": "Say hello."}],
]
BACKEND_NAMES = ["openai", "vllm", "hf"]


@pytest.fixture
def make_backend(request, monkeypatch, tmp_path):
    """``make_backend(name)``: the real backend of that name, loaded by ``load_backend``."""
    servers = []

    def make(name: str) -> Backend:
        if name == "openai":
            servers.append(Server())
            return load_backend("openai", "m", base_url=servers[-1].url, concurrency=2)
        if name == "vllm":
            return load_backend(
                "vllm", install_fake_vllm(monkeypatch, tmp_path), tensor_parallel_size=2
            )
        pytest.importorskip("torch")
        from train_fixtures import tiny_model

        return load_backend("hf", str(tiny_model(tmp_path / "model")))

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_one_interface_for_every_backend(make_backend, name):
    backend = make_backend(name)
    assert isinstance(backend, Backend) and backend.name == name and backend.batch_size >= 1
    opts = SamplingOptions(n=3, temperature=1.0, max_new_tokens=6, seed=5)
    keys = [10, 11, 12]
    out = backend.generate(CONVERSATIONS, opts, keys)
    assert len(out) == 3 and all(len(candidates) == 3 for candidates in out)
    for candidates in out:
        for c in candidates:
            assert set(c) == {"text", "tokens", "finish_reason"}
            assert isinstance(c["text"], str) and isinstance(c["tokens"], int)
            assert c["finish_reason"] in ("stop", "length")
            assert 0 <= c["tokens"] <= (6 if name == "hf" else 10**6)
    # A conversation's candidates depend on its key, not on the rest of the batch.
    assert backend.generate([CONVERSATIONS[1]], opts, [11]) == [out[1]]
    assert backend.generate([CONVERSATIONS[2], CONVERSATIONS[0]], opts, [12, 10]) == [
        out[2],
        out[0],
    ]
    assert backend.generate([CONVERSATIONS[1]], opts, [99]) != [out[1]]
    assert backend.generate([], opts, []) == []
    with pytest.raises(ValueError, match="keys"):
        backend.generate(CONVERSATIONS, opts, [1])


@pytest.mark.parametrize("name", ["openai", "vllm"])
def test_fake_engine_backends_agree(make_backend, name):
    """Both fake-engine backends return exactly what the engine said, in order, with the seed
    derived from each key."""
    backend = make_backend(name)
    opts = SamplingOptions(n=2, temperature=0.5, max_new_tokens=8, seed=3)
    out = backend.generate(CONVERSATIONS, opts, [7, 8, 9])
    for conversation, key, candidates in zip(CONVERSATIONS, [7, 8, 9], out, strict=True):
        expected = fake_reply(conversation, 2, prompt_seed(3, key), 0.5)
        assert [(c["text"], c["finish_reason"]) for c in candidates] == expected
    if name == "vllm":  # one engine call per batch, a seed per conversation
        assert FakeLLM.calls[-1] == (3, [prompt_seed(3, k) for k in (7, 8, 9)])


def test_a_backend_that_returns_the_wrong_shape_is_an_error(make_backend, monkeypatch):
    backend = make_backend("vllm")
    monkeypatch.setattr(FakeLLM, "chat", lambda self, m, p, use_tqdm: [])
    with pytest.raises(Exception, match="asked for 2 candidates"):
        backend.generate(CONVERSATIONS[:1], SamplingOptions(n=2), [0])


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(params=["openai", "vllm"])
def judge_args(request, monkeypatch, tmp_path):
    """CLI options that reach the fake judge through the named backend."""
    if request.param == "vllm":
        yield ["--judge", install_fake_vllm(monkeypatch, tmp_path), "--backend", "vllm"]
        return
    server = Server()
    yield ["--judge", "judge", "--backend", "openai", "--base-url", server.url]
    server.close()


def test_judge_scores_through_each_backend(tmp_path, judge_args):
    data = write_jsonl(tmp_path / "c.jsonl", [{
        "prompt_index": i, "prompt_messages": [{"role": "user", "content": f"Explain {i}."}],
        "candidates": [{"text": t, "tokens": 1, "finish_reason": "stop"}
                       for t in ("GOOD answer", "BAD answer", "GARBLED", "LOST")],
        "sampling": {"n": 4},
    } for i in range(3)])  # fmt: skip
    out = tmp_path / "s.jsonl"
    assert main(["score", str(data), "-o", str(out), *judge_args, "-q"]) == 0
    records = lines(out)
    assert len(records) == 3
    for record in records:
        assert [c["score"] for c in record["candidates"]] == [9.0, 2.0, 5.0, None]
        assert record["candidates"][3]["judgement"] == "no rating here"
    assert main(["pairs", str(out), "-o", str(tmp_path / "p.jsonl")]) == 0
    pair = lines(tmp_path / "p.jsonl")[0]
    assert pair["chosen"][0]["content"] == "GOOD answer" and pair["margin"] == 7.0


def test_pairwise_through_each_backend(tmp_path, judge_args):
    def answers(name, texts):
        return write_jsonl(tmp_path / f"{name}.jsonl", [
            {"prompt_index": i, "prompt_messages": [{"role": "user", "content": f"q{i}"}],
             "candidates": [{"text": t}]} for i, t in enumerate(texts)])  # fmt: skip

    a = answers("a", ["GOOD a", "EVEN a", "BAD a"])
    b = answers("b", ["BAD b", "EVEN b", "GOOD b"])
    out = tmp_path / "verdicts.jsonl"
    assert main(["score", str(a), str(b), "--pairwise", "-o", str(out), *judge_args,
                 "-q"]) == 0  # fmt: skip
    assert [v["verdict"] for v in lines(out)] == ["A", "tie", "B"]
    assert [v["a_first"] for v in lines(out)] == ["A", "A", "B"]


def test_vllm_judge_sends_batches(tmp_path, monkeypatch):
    """The judge hands vLLM whole batches (not one request at a time), and re-asks only the
    judgements it could not parse."""
    judge = install_fake_vllm(monkeypatch, tmp_path)
    data = write_jsonl(tmp_path / "c.jsonl", [{
        "prompt_index": i, "prompt_messages": [{"role": "user", "content": f"q{i}"}],
        "candidates": [{"text": t} for t in ("GOOD", "GARBLED")],
    } for i in range(5)])  # fmt: skip
    out = tmp_path / "s.jsonl"
    assert main(["score", str(data), "-o", str(out), "--judge", judge, "--backend", "vllm",
                 "-q"]) == 0  # fmt: skip
    assert [n for n, _ in FakeLLM.calls] == [10, 5]  # all 10, then the 5 GARBLED again


def test_repetition_penalty_reaches_the_engine(monkeypatch, tmp_path):
    """Sent to a server only when set (OpenAI's API has no such field); vLLM gets it always."""
    server = Server()
    try:
        backend = load_backend("openai", "m", base_url=server.url)
        backend.generate(CONVERSATIONS[:1], SamplingOptions(n=1), [1])
        backend.generate(CONVERSATIONS[:1], SamplingOptions(n=1, repetition_penalty=1.1), [1])
    finally:
        server.close()
    assert "repetition_penalty" not in server.calls[0]
    assert server.calls[1]["repetition_penalty"] == 1.1
    model = install_fake_vllm(monkeypatch, tmp_path)
    seen = []
    monkeypatch.setattr(FakeLLM, "chat", lambda self, m, params, use_tqdm: seen.extend(params) or
                        [types.SimpleNamespace(outputs=[]) for _ in m])  # fmt: skip
    with pytest.raises(Exception, match="candidates"):
        load_backend("vllm", model).generate(
            CONVERSATIONS[:1], SamplingOptions(n=1, repetition_penalty=1.3), [1]
        )
    assert seen[0].repetition_penalty == 1.3


PROMPTS = ["### 指示:\n日本の首都は？\n\n### 応答:\n", "Once upon a time", "1, 2, 3,"]


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_plain_prompts_through_every_backend(make_backend, name):
    """``complete``: the same candidates as ``generate`` in shape and seeding, for plain text."""
    backend = make_backend(name)
    opts = SamplingOptions(n=3, temperature=1.0, max_new_tokens=6, seed=5)
    out = backend.complete(PROMPTS, opts, [10, 11, 12])
    assert len(out) == 3 and all(len(candidates) == 3 for candidates in out)
    for candidates in out:
        for c in candidates:
            assert set(c) == {"text", "tokens", "finish_reason"}
            assert isinstance(c["text"], str) and isinstance(c["tokens"], int)
            assert c["finish_reason"] in ("stop", "length")
            assert 0 <= c["tokens"] <= (6 if name == "hf" else 10**6)
    assert backend.complete([PROMPTS[2], PROMPTS[0]], opts, [12, 10]) == [out[2], out[0]]
    assert backend.complete([PROMPTS[1]], opts, [99]) != [out[1]]
    assert backend.complete([], opts, []) == []
    with pytest.raises(ValueError, match="3 prompts but 1 keys"):
        backend.complete(PROMPTS, opts, [1])
    with pytest.raises(TypeError, match="plain-text prompts"):
        backend.complete(CONVERSATIONS[:1], opts, [1])


@pytest.mark.parametrize("name", ["openai", "vllm"])
def test_plain_prompts_reach_the_engine_as_text(name, monkeypatch, tmp_path):
    """Sent as text (``/v1/completions``, ``LLM.generate``), never as a conversation; greedy
    and sampled alike, each prompt with the seed of its key."""
    server = Server()
    try:
        if name == "openai":
            backend = load_backend("openai", "m", base_url=server.url + "/", concurrency=2)
        else:
            backend = load_backend("vllm", install_fake_vllm(monkeypatch, tmp_path))
        for temperature in (0.0, 0.7):
            opts = SamplingOptions(n=2, temperature=temperature, max_new_tokens=8, seed=3)
            out = backend.complete(PROMPTS, opts, [7, 8, 9])
            for prompt, key, candidates in zip(PROMPTS, [7, 8, 9], out, strict=True):
                expected = fake_continuation(prompt, 2, prompt_seed(3, key), temperature)
                assert [(c["text"], c["finish_reason"]) for c in candidates] == expected
    finally:
        server.close()
    if name == "openai":
        assert server.paths == ["/v1/completions"] * 6
        assert all("messages" not in body for body in server.calls)
        assert sorted(body["temperature"] for body in server.calls) == [0.0] * 3 + [0.7] * 3
    else:  # one engine call per batch, a seed per prompt
        assert FakeLLM.calls[-1] == (3, [prompt_seed(3, k) for k in (7, 8, 9)])


def test_hf_plain_prompt_is_the_text_without_a_chat_template(make_backend):
    """hf's ``complete`` continues the prompt's own tokens (with the tokenizer's special
    tokens), as transformers' greedy ``generate`` does; ``eval.completion.complete`` (llm-jp-eval's
    prompts) is that, greedy, one answer each."""
    from plamo_fast.eval.completion import complete

    backend = make_backend("hf")
    torch = backend.torch
    for prompt in PROMPTS:
        ids = backend.tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            row = backend.model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=5,
                eos_token_id=sorted(backend.stop_ids), pad_token_id=min(backend.stop_ids),
            )[0, ids.shape[1]:].tolist()  # fmt: skip
        expected = backend.tokenizer.decode(row, skip_special_tokens=True)
        (answer,) = complete(backend, [prompt], 5)
        assert answer["text"] == expected and answer["tokens"] <= 5
        greedy = SamplingOptions(n=2, temperature=0.0, max_new_tokens=5)
        assert backend.complete([prompt], greedy, [1]) == backend.complete([prompt], greedy, [2])


def test_llm_jp_eval_prompts_through_a_server(tmp_path):
    """Jaster's plain-text prompts reach an OpenAI-compatible server as ``/v1/completions``,
    greedy (they were refused before: only ``--chat`` worked with a server)."""
    from plamo_fast.eval.completion import complete

    server = Server()
    try:
        backend = load_backend("openai", "m", base_url=server.url)
        answers = complete(backend, PROMPTS, 4)
    finally:
        server.close()
    assert [a["text"] for a in answers] == [
        fake_continuation(p, 1, prompt_seed(0, k), 0.0)[0][0] for k, p in enumerate(PROMPTS)
    ]
    assert {body["temperature"] for body in server.calls} == {0.0}
    assert {body["max_tokens"] for body in server.calls} == {4}
