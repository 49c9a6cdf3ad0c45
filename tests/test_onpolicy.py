"""sample / score / pairs: the hf backend on a tiny model (N candidates, reproducible,
resumable), the openai backend against a small OpenAI-compatible server on loopback (retries,
order under concurrency, judge parsing with retries, pairwise both orders), pair selection with
ties, missing scores and truncation, SPIN pairs, and the end-to-end path into pack --kind dpo."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from chat_fixtures import write_jsonl

from plamo_fast.cli import main

PROMPTS = [
    {"prompt": "日本の首都はどこですか？", "answer": "東京"},
    {"messages": [{"role": "user", "content": "What is 1 + 1?"}], "answer": "2"},
    {"prompt": [{"role": "user", "content": "Say hello."}], "answer": "hello"},
]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


class Server:
    """An OpenAI-compatible /v1/chat/completions on loopback; ``reply(body, calls)`` returns
    ``(status, choices)``."""

    def __init__(self, reply):
        self.calls = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls.append(body)
                status, choices = reply(body, len(outer.calls))
                data = json.dumps({"choices": choices, "usage": {"completion_tokens": 3}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def choice(k: int, text: str, reason: str = "stop") -> dict:
    return {"index": k, "message": {"role": "assistant", "content": text}, "finish_reason": reason}


@pytest.fixture
def echo_server():
    def reply(body, calls):
        if calls == 1:
            return 503, []  # the first request fails: the client retries
        question = body["messages"][-1]["content"]
        return 200, [
            choice(k, f"{question}|{body['seed']}|{k}", "length" if k == 1 else "stop")
            for k in range(body["n"])
        ]

    server = Server(reply)
    yield server
    server.close()


def test_openai_backend_keeps_order_and_retries(tmp_path, echo_server):
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS * 5)
    out = tmp_path / "c.jsonl"
    args = ["sample", str(prompts), "--model", "m", "-o", str(out), "-n", "3", "--backend",
            "openai", "--base-url", echo_server.url, "--concurrency", "4", "-q"]  # fmt: skip
    assert main(args) == 0
    records = lines(out)
    assert [r["prompt_index"] for r in records] == list(range(15))
    for r in records:
        assert len(r["candidates"]) == 3
        assert r["candidates"][0]["text"].startswith(r["prompt_messages"][-1]["content"])
        assert [c["finish_reason"] for c in r["candidates"]] == ["stop", "length", "stop"]
    assert len(echo_server.calls) == 16  # 15 prompts + 1 retried request


def test_hf_backend_gives_n_candidates_reproducibly(tmp_path):
    from train_fixtures import tiny_model

    model = tiny_model(tmp_path / "model")
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    outs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path / f"{name}.jsonl"
        args = ["sample", str(prompts), "--model", str(model), "-o", str(out), "-n", "4"]
        args += ["--backend", "hf", "--max-new-tokens", "12", "--seed", str(seed), "-q"]
        assert main(args) == 0
        outs.append(lines(out))
    a, b, c = outs
    assert a == b and a != c
    for r in a:
        assert len(r["candidates"]) == 4
        for cand in r["candidates"]:
            assert 1 <= cand["tokens"] <= 12 and cand["finish_reason"] in ("stop", "length")


def test_sampling_resumes_without_losing_or_repeating_prompts(tmp_path):
    from train_fixtures import tiny_model

    from plamo_fast.sample.backends import SamplingOptions
    from plamo_fast.sample.sample import sample

    model = tiny_model(tmp_path / "model")
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS * 2)
    opts = SamplingOptions(n=2, max_new_tokens=6, seed=3)
    straight = tmp_path / "straight.jsonl"
    sample(prompts, str(model), straight, backend="hf", options=opts, progress=False)
    resumed = tmp_path / "resumed.jsonl"
    sample(prompts, str(model), resumed, backend="hf", options=opts, progress=False, stop_after=3)
    assert not resumed.exists()
    partial = resumed.with_name("resumed.jsonl.partial")
    with open(partial, "a") as f:
        f.write('{"prompt_index": 3, "candidates": [{"te')  # a line torn by the kill
    summary = sample(prompts, str(model), resumed, backend="hf", options=opts, progress=False)
    assert summary["already_done"] == 3 and summary["sampled"] == 3
    assert resumed.read_text() == straight.read_text()


def scored(scores: list, reasons: list | None = None, index: int = 0) -> dict:
    reasons = reasons or ["stop"] * len(scores)
    return {
        "prompt_index": index,
        "prompt_messages": [{"role": "user", "content": f"q{index}"}],
        "candidates": [{"text": f"a{k}", "tokens": 1, "finish_reason": r, "score": s}
                       for k, (s, r) in enumerate(zip(scores, reasons, strict=True))],
        "sampling": {"n": len(scores)},
        "scorer": {"kind": "judge", "units": "rating 1-10"},
    }  # fmt: skip


def test_pair_selection(tmp_path):
    same = scored([1, 8], index=6)
    same["candidates"][1]["text"] = "a0"  # best and worst say the same thing
    data = write_jsonl(tmp_path / "s.jsonl", [same, scored([float("nan"), 3, 3.5], index=7),
        scored([5, 9, 9, 2, 2]),              # best: first 9 (index 1), worst: first 2 (3)
        scored([7, 7, 7], index=1),           # all tie: dropped
        scored([None, 8, None], index=2),     # fewer than 2 scored: dropped
        scored([4, None, 6], index=3),        # fewer than N scored, still a pair
        scored([3, 10, 4], ["stop", "length", "stop"], index=4),  # truncated best
        scored([5, 5.5], index=5),            # below min margin 1
    ])  # fmt: skip
    out, report = tmp_path / "pairs.jsonl", tmp_path / "report.json"
    assert main(["pairs", str(data), "-o", str(out), "--min-margin", "1", "--drop-truncated",
                 "--report", str(report)]) == 0  # fmt: skip
    pairs = lines(out)
    got = [
        (p["prompt_index"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs
    ]
    assert got == [(0, "a1", "a3"), (3, "a2", "a0"), (4, "a2", "a0")]
    assert "NaN" not in out.read_text()
    assert pairs[0]["prompt"] == [{"role": "user", "content": "q0"}] and pairs[0]["margin"] == 7
    r = json.loads(report.read_text())
    assert r["prompts_in"] == 8 and r["pairs_out"] == 3
    assert r["dropped"] == {"all_scores_tie": 1, "fewer_than_2_scored": 1, "below_min_margin": 2,
                            "chosen_equals_rejected": 1}  # fmt: skip
    # Indices 2, 3, the truncated one, and the NaN score (index 7: 3 vs 3.5, below the margin).
    assert r["prompts_with_fewer_than_n_scored"] == 4


def test_spin_pairs(tmp_path):
    sft = write_jsonl(tmp_path / "sft.jsonl", [
        {"messages": [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "ref0"}]},
        {"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "ref1"}]},
        {"messages": [{"role": "user", "content": "q9"}, {"role": "assistant", "content": "r9"}]},
    ])  # fmt: skip
    samples = write_jsonl(tmp_path / "c.jsonl", [
        {"prompt_index": 0, "prompt_messages": [{"role": "user", "content": "q0"}],
         "candidates": [{"text": "ref0"}, {"text": "mine0"}]},
        {"prompt_index": 1, "prompt_messages": [{"role": "user", "content": "q1"}],
         "candidates": [{"text": "ref1"}]},
    ])  # fmt: skip
    out = tmp_path / "spin.jsonl"
    assert main(["pairs", str(samples), "--spin", str(sft), "-o", str(out)]) == 0
    (pair,) = lines(out)
    assert pair["chosen"][0]["content"] == "ref0" and pair["rejected"][0]["content"] == "mine0"
    assert pair["prompt"] == [{"role": "user", "content": "q0"}]


@pytest.mark.vllm
@pytest.mark.skipif(
    __import__("importlib").util.find_spec("vllm") is None, reason="vLLM is not installed"
)
def test_vllm_backend_offline_api(tmp_path):  # pragma: no cover - needs vLLM and a GPU
    from train_fixtures import tiny_model

    model = tiny_model(tmp_path / "model")
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    out = tmp_path / "c.jsonl"
    assert main(["sample", str(prompts), "--model", str(model), "-o", str(out), "-n", "2",
                 "--backend", "vllm", "--max-new-tokens", "8", "-q"]) == 0  # fmt: skip
    assert all(len(r["candidates"]) == 2 for r in lines(out))


@pytest.fixture
def judge_server():
    """A judge that rates answers by marker words: GOOD -> [[9]], BAD -> [[2]]; GARBLED answers
    get an unparseable judgement at temperature 0 and [[5]] when re-asked with sampling; LOST
    answers never get a rating. Pairwise, it prefers the GOOD answer, or says [[A]] (position
    bias) when neither or both are GOOD."""

    def reply(body, calls):
        user = body["messages"][-1]["content"]
        texts = []
        if "GOOD" in user and "BAD" in user:  # pairwise: which comes first?
            good_first = user.index("GOOD") < user.index("BAD")
            texts.append("Verdict: [[A]]" if good_first else "Verdict: [[B]]")
        elif user.count("EVEN") == 2:
            texts.append("Both fine. [[A]]")
        elif "GOOD" in user:
            texts.append("Helpful and correct.\nRating: [[9]]")
        elif "BAD" in user:
            texts.append("評価：［［２］］")
        elif "GARBLED" in user:
            texts.append("[[5]]" if body["temperature"] > 0 else "I cannot rate this [[")
        else:
            texts.append("no rating here")
        return 200, [choice(k, texts[0]) for k in range(body["n"])]

    server = Server(reply)
    yield server
    server.close()


def test_judge_scores_with_retries_and_missing(tmp_path, judge_server):
    data = write_jsonl(tmp_path / "c.jsonl", [{
        "prompt_index": 0, "prompt_messages": [{"role": "user", "content": "Explain packing."}],
        "candidates": [{"text": t, "tokens": 1, "finish_reason": "stop"}
                       for t in ("GOOD answer", "BAD answer", "GARBLED", "LOST")],
        "sampling": {"n": 4},
    }])  # fmt: skip
    out = tmp_path / "s.jsonl"
    assert main(["score", str(data), "-o", str(out), "--judge", "judge", "--backend", "openai",
                 "--base-url", judge_server.url, "-q"]) == 0  # fmt: skip
    (record,) = lines(out)
    assert [c["score"] for c in record["candidates"]] == [9.0, 2.0, 5.0, None]
    assert record["scorer"]["kind"] == "judge"
    assert main(["pairs", str(out), "-o", str(tmp_path / "p.jsonl")]) == 0
    (pair,) = lines(tmp_path / "p.jsonl")
    assert pair["chosen"][0]["content"] == "GOOD answer" and pair["margin"] == 7.0


def test_pairwise_judging_cancels_position_bias(tmp_path, judge_server):
    def answers(name, texts):
        return write_jsonl(tmp_path / f"{name}.jsonl", [
            {"prompt_index": i, "prompt_messages": [{"role": "user", "content": f"q{i}"}],
             "candidates": [{"text": t}]} for i, t in enumerate(texts)])  # fmt: skip

    a = answers("a", ["GOOD a", "EVEN a", "BAD a"])
    b = answers("b", ["BAD b", "EVEN b", "GOOD b"])
    out = tmp_path / "verdicts.jsonl"
    assert main(["score", str(a), str(b), "--pairwise", "--judge", "j", "-o", str(out),
                 "--backend", "openai", "--base-url", judge_server.url, "-q"]) == 0  # fmt: skip
    assert [v["verdict"] for v in lines(out)] == ["A", "tie", "B"]


def test_math_verifier_scores_and_pairs_feed_pack(tmp_path):
    from chat_fixtures import CHATML, make_tokenizer

    data = write_jsonl(tmp_path / "c.jsonl", [{
        "prompt_index": 0, "answer": "12",
        "prompt_messages": [{"role": "user", "content": "3×4は？"}],
        "candidates": [{"text": t, "tokens": 5, "finish_reason": "stop"}
                       for t in ("3×4=11です。", "答えは１２です。", r"\boxed{12}")],
        "sampling": {"n": 3},
    }])  # fmt: skip
    out = tmp_path / "s.jsonl"
    assert main(["score", str(data), "-o", str(out), "--verifier", "math", "-q"]) == 0
    (record,) = lines(out)
    assert [c["score"] for c in record["candidates"]] == [0.0, 1.0, 1.0]
    pairs = tmp_path / "pairs.jsonl"
    assert main(["pairs", str(out), "-o", str(pairs)]) == 0
    (pair,) = lines(pairs)
    assert pair["chosen"][0]["content"] == "答えは１２です。"
    tokenizer = make_tokenizer(tmp_path / "tok", CHATML)
    packed = tmp_path / "packed"
    assert main(["pack", str(pairs), "--tokenizer", str(tokenizer), "-L", "128", "--kind", "dpo",
                 "-o", str(packed), "-q"]) == 0  # fmt: skip
    assert (packed / "data.parquet").exists()


def test_reward_model_scores(tmp_path):
    torch = pytest.importorskip("torch")
    from chat_fixtures import CHATML, make_tokenizer
    from transformers import LlamaConfig, LlamaForSequenceClassification

    folder = make_tokenizer(tmp_path / "rm", CHATML)
    config = LlamaConfig(vocab_size=800, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=1,
                         pad_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(folder)
    data = write_jsonl(tmp_path / "c.jsonl", [{
        "prompt_index": 0, "prompt_messages": [{"role": "user", "content": "hi"}],
        "candidates": [{"text": "Hello!"}, {"text": "Go away."}],
    }])  # fmt: skip
    out = tmp_path / "s.jsonl"
    assert main(["score", str(data), "-o", str(out), "--reward-model", str(folder), "-q"]) == 0
    scores = [c["score"] for c in lines(out)[0]["candidates"]]
    assert all(isinstance(s, float) for s in scores) and scores[0] != scores[1]


def test_sampling_refuses_mixed_settings_and_clobbering_input_fields(tmp_path, echo_server, capsys):
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{**p, "index": 100 + i} for i, p in enumerate(PROMPTS)]
    )
    out = tmp_path / "c.jsonl"
    base = ["sample", str(prompts), "--model", "m", "-o", str(out), "--backend", "openai",
            "--base-url", echo_server.url, "-q", "--retries", "1"]  # fmt: skip
    from plamo_fast.sample.backends import SamplingOptions
    from plamo_fast.sample.sample import sample

    sample(prompts, "m", out, backend="openai", base_url=echo_server.url, progress=False,
           options=SamplingOptions(n=1), stop_after=1)  # fmt: skip
    assert main([*base, "-n", "2"]) == 1  # other settings than the partial run
    assert "other settings" in capsys.readouterr().err
    assert main([*base, "-n", "2", "--overwrite"]) == 0
    records = lines(out)
    assert [r["index"] for r in records] == [100, 101, 102]  # the input's own field survives
    assert all(len(r["candidates"]) == 2 for r in records)
    clash = write_jsonl(tmp_path / "clash.jsonl", [{"prompt": "x", "candidates": ["mine"]}])
    assert main(["sample", str(clash), "--model", "m", "-o", str(tmp_path / "x.jsonl"),
                 "--backend", "openai", "--base-url", echo_server.url, "-q"]) == 1  # fmt: skip
    assert "field 'candidates' is one sample writes" in capsys.readouterr().err


def test_retries_reach_the_server(tmp_path):
    server = Server(lambda body, calls: (503, []))
    try:
        prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS[:1])
        args = ["sample", str(prompts), "--model", "m", "-o", str(tmp_path / "c.jsonl"),
                "--base-url", server.url, "--retries", "0", "-q"]  # fmt: skip
        assert main(args) == 1  # --backend auto with --base-url is the openai backend
        assert len(server.calls) == 1
    finally:
        server.close()


def test_a_killed_sample_run_resumes_to_the_same_file(tmp_path):
    """SIGKILL `plamo-fast sample` mid-run (a slow server), run it again: no prompt lost or
    repeated, and the file equals an uninterrupted run's."""
    import os
    import signal
    import subprocess
    import sys
    import time

    def reply(body, calls):
        time.sleep(0.2)
        seed = body["seed"]
        return 200, [choice(k, f"answer {seed} {k}") for k in range(body["n"])]

    server = Server(reply)
    try:
        prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS * 4)
        command = [sys.executable, "-m", "plamo_fast.cli", "sample", str(prompts), "--model", "m",
                   "--base-url", server.url, "--concurrency", "1", "-n", "2", "-q"]  # fmt: skip
        killed = tmp_path / "killed.jsonl"
        partial = tmp_path / "killed.jsonl.partial"
        proc = subprocess.Popen([*command, "-o", str(killed)], stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            if partial.exists() and partial.read_text().count("\n") >= 2:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not killed.exists()
        subprocess.run([*command, "-o", str(killed)], check=True, capture_output=True)
        straight = tmp_path / "straight.jsonl"
        subprocess.run([*command, "-o", str(straight)], check=True, capture_output=True)
    finally:
        server.close()
    assert [r["prompt_index"] for r in lines(killed)] == list(range(12))
    assert killed.read_text() == straight.read_text()


def test_prompts_from_parquet(tmp_path, echo_server):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist([{"prompt": "富士山の高さは？", "id": 7}]), tmp_path / "p.parquet"
    )
    out = tmp_path / "c.jsonl"
    assert main(["sample", str(tmp_path / "p.parquet"), "--model", "m", "-o", str(out), "-n", "2",
                 "--base-url", echo_server.url, "-q"]) == 0  # fmt: skip
    (record,) = lines(out)
    assert record["id"] == 7 and record["prompt_messages"][0]["content"] == "富士山の高さは？"
    assert len(record["candidates"]) == 2
