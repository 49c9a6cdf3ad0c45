"""sample / score / pairs: the hf backend on a tiny model (N candidates, reproducible,
resumable), the openai backend against a small OpenAI-compatible server on loopback (retries,
order under concurrency), pair selection with ties, missing scores and truncation, SPIN pairs,
the end-to-end path into pack --kind dpo, and outputs that never replace an input. Judging
through every backend is in test_backends.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backend_fixtures import Server, choice, killed_then_resumed
from chat_fixtures import write_jsonl

from plamo_fast.cli import main

PROMPTS = [
    {"prompt": "日本の首都はどこですか？", "answer": "東京"},
    {"messages": [{"role": "user", "content": "What is 1 + 1?"}], "answer": "2"},
    {"prompt": [{"role": "user", "content": "Say hello."}], "answer": "hello"},
]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


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

    from plamo_fast.generation.backends import SamplingOptions
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


def test_pairs_keep_the_records_own_fields(tmp_path, capsys):
    """A pair (and a SPIN pair) carries its record's own fields (id, source, license, answer),
    not what sample/score added; a record field a pair would overwrite is refused at FILE:LINE."""
    own = {"id": "ex-7", "source": "gsm8k", "license": "MIT", "answer": "4", "prompt": "q0"}
    data = write_jsonl(tmp_path / "s.jsonl", [{**own, **scored([1, 8])}])
    out = tmp_path / "pairs.jsonl"
    assert main(["pairs", str(data), "-o", str(out)]) == 0
    (pair,) = lines(out)
    assert {k: pair[k] for k in ("id", "source", "license", "answer")} == {
        "id": "ex-7", "source": "gsm8k", "license": "MIT", "answer": "4"}  # fmt: skip
    assert pair["prompt"] == [{"role": "user", "content": "q0"}]
    assert not {"candidates", "sampling", "prompt_messages"} & set(pair)
    assert pair["chosen"][0]["content"] == "a1" and pair["prompt_index"] == 0

    clash = write_jsonl(tmp_path / "c.jsonl", [scored([1, 8]), {"chosen": "x", **scored([2, 9])}])
    assert main(["pairs", str(clash), "-o", str(tmp_path / "p2.jsonl")]) == 1
    assert f"{clash}:2: field 'chosen' is one pairs writes" in capsys.readouterr().err
    assert not (tmp_path / "p2.jsonl").exists()

    sft = write_jsonl(tmp_path / "sft.jsonl", [{"id": 3, "license": "CC-BY", "messages": [
        {"role": "user", "content": "q0"}, {"role": "assistant", "content": "ref0"}]}])  # fmt: skip
    spin = tmp_path / "spin.jsonl"
    assert main(["pairs", str(data), "--spin", str(sft), "-o", str(spin)]) == 0
    (pair,) = lines(spin)
    assert pair["id"] == 3 and pair["license"] == "CC-BY" and pair["scorer"] == "spin"
    assert pair["chosen"][0]["content"] == "ref0" and pair["rejected"][0]["content"] == "a0"


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
    from plamo_fast.generation.backends import SamplingOptions
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
        killed, straight = killed_then_resumed(command, tmp_path)
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


def test_no_output_replaces_an_input(tmp_path, echo_server, capsys):
    """sample, score and pairs refuse an output that is one of their inputs (or a folder), with
    or without --overwrite, and leave the input as it was."""
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    scored_data = write_jsonl(
        tmp_path / "s.jsonl", [{**scored([1, 8]), "answer": "8"}, {**scored([3, 5]), "answer": "5"}]
    )
    sft = write_jsonl(tmp_path / "sft.jsonl", [
        {"messages": [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "r"}]},
    ])  # fmt: skip
    folder = tmp_path / "folder"
    folder.mkdir()
    sample = ["sample", str(prompts), "--model", "m", "--backend", "openai",
              "--base-url", echo_server.url, "-n", "1", "-q"]  # fmt: skip
    score = ["score", str(scored_data), "--verifier", "math", "-q"]
    pairs = ["pairs", str(scored_data)]
    spin = ["pairs", str(scored_data), "--spin", str(sft)]
    same = ("is the input", "is the input")  # without, then with --overwrite
    a_folder = ("already exists", "is a folder")
    cases = [
        (sample, prompts, same),
        (sample, tmp_path / "x" / ".." / "p.jsonl", same),
        (score, scored_data, same),
        (pairs, scored_data, same),
        (spin, sft, same),
        (sample, folder, a_folder),
        (score, folder, a_folder),
        (pairs, folder, a_folder),
    ]
    before = {p: p.read_bytes() for p in (prompts, scored_data, sft)}
    for command, output, messages in cases:
        for overwrite, message in zip(([], ["--overwrite"]), messages, strict=True):
            assert main([*command, "-o", str(output), *overwrite]) == 1, (command, output)
            assert message in capsys.readouterr().err
    # The two inputs of --pairwise, and pairs' --report.
    pairwise = ["score", str(scored_data), str(prompts), "--pairwise", "--judge", "j", "-q",
                "--backend", "openai", "--base-url", echo_server.url, "--overwrite"]  # fmt: skip
    assert main([*pairwise, "-o", str(prompts)]) == 1
    assert main([*pairs, "-o", str(tmp_path / "new.jsonl"), "--report", str(scored_data)]) == 1
    assert not (tmp_path / "new.jsonl").exists()  # refused before any work
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(x.name for x in tmp_path.iterdir()) == [
        "folder",
        "p.jsonl",
        "s.jsonl",
        "sft.jsonl",
    ]
    assert list(folder.iterdir()) == []


def test_sample_refuses_a_partial_file_that_is_an_input(tmp_path, echo_server, capsys):
    """OUT.partial is resumed (its torn tail cut off) and appended to: when it is a link to the
    input, the run is refused and the input kept (it was once truncated to nothing)."""
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    before = prompts.read_bytes()
    (tmp_path / "c.jsonl.partial").symlink_to(prompts)
    for overwrite in ([], ["--overwrite"]):
        assert main(["sample", str(prompts), "--model", "m", "-o", str(tmp_path / "c.jsonl"),
                     "--base-url", echo_server.url, "-q", *overwrite]) == 1  # fmt: skip
        assert "is the input" in capsys.readouterr().err
        assert prompts.read_bytes() == before and not (tmp_path / "c.jsonl").exists()


def test_overwrite_replaces_an_earlier_output(tmp_path):
    data = write_jsonl(tmp_path / "s.jsonl", [scored([1, 8])])
    out = tmp_path / "pairs.jsonl"
    out.write_text("stale\n")
    assert main(["pairs", str(data), "-o", str(out)]) == 1  # exists: needs --overwrite
    assert main(["pairs", str(data), "-o", str(out), "--overwrite"]) == 0
    assert lines(out)[0]["chosen"][0]["content"] == "a1"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["pairs.jsonl", "s.jsonl"]


def test_pairs_cli_allow_empty(tmp_path, capsys):
    """`pairs` on candidates without scores makes no pair: an error naming the cause, unless
    --allow-empty (the option the error message tells the user to pass)."""
    data = write_jsonl(tmp_path / "c.jsonl", [{
        "prompt_index": 0, "prompt_messages": [{"role": "user", "content": "q"}],
        "candidates": [{"text": "a"}, {"text": "b"}]}])  # fmt: skip
    out = tmp_path / "p.jsonl"
    assert main(["pairs", str(data), "-o", str(out)]) == 1
    assert "run `plamo-fast score` on them first" in capsys.readouterr().err
    assert not out.exists()
    assert main(["pairs", str(data), "-o", str(out), "--allow-empty"]) == 0
    assert out.read_text() == ""


def candidates(index: int, texts: list[str], **fields) -> dict:
    return {
        "prompt_index": index,
        "prompt_messages": [{"role": "user", "content": f"q{index}"}],
        "candidates": [{"text": t} for t in texts],
        **fields,
    }


def test_score_counts_unscorable_candidates_and_refuses_when_none_is_scored(tmp_path, capsys):
    """--verifier math on records without a reference answer: each candidate is unscored with
    the reason; none scored is an error (nothing written) unless --allow-empty; some unscored
    is one warning line with the counts."""
    data = write_jsonl(tmp_path / "c.jsonl", [candidates(i, ["12", "13"]) for i in range(2)])
    out = tmp_path / "s.jsonl"
    args = ["score", str(data), "-o", str(out), "--verifier", "math", "-q"]
    assert main(args) == 1
    assert (
        "score: read 4 candidates but kept none (dropped: no_reference_answer 4); the math "
        "verifier compares with the record's reference answer (reference, answer, "
        "reference_answer, solution, ground_truth), and none has one; nothing was written"
    ) in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]
    assert main([*args, "--allow-empty"]) == 0
    assert "dropped 4 of 4 candidates (100.0%): no_reference_answer 4" in capsys.readouterr().err
    assert [c["score"] for r in lines(out) for c in r["candidates"]] == [None] * 4
    mixed = write_jsonl(tmp_path / "m.jsonl", [
        candidates(0, ["12", "13"], answer="12"),
        candidates(1, ["12", "13"]),
        candidates(2, ["12", "13"], answer="twelve"),
    ])  # fmt: skip
    assert main(["score", str(mixed), "-o", str(tmp_path / "ms.jsonl"), "--verifier", "math",
                 "-q"]) == 0  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "plamo-fast score: warning: dropped 4 of 6 candidates (66.7%): no_reference_answer 2, "
        "reference_not_a_number 2"
    )
    summary = json.loads(err[-1])
    assert summary["missing_scores"] == 4
    assert summary["unscored"] == {"no_reference_answer": 2, "reference_not_a_number": 2}
    scores = [[c["score"] for c in r["candidates"]] for r in lines(tmp_path / "ms.jsonl")]
    assert scores == [[1.0, 0.0], [None, None], [None, None]]  # every record written


def test_judge_without_any_rating_is_an_error(tmp_path, capsys):
    """A judge that never gives a rating (single answers) or a verdict (--pairwise): nothing
    is written, unless --allow-empty."""
    server = Server()  # the fake judge of backend_fixtures: LOST gets no rating
    try:
        judge = ["--judge", "j", "--backend", "openai", "--base-url", server.url, "--retries",
                 "0", "-q"]  # fmt: skip
        data = write_jsonl(tmp_path / "c.jsonl", [candidates(0, ["LOST", "LOST too"])])
        out = tmp_path / "s.jsonl"
        assert main(["score", str(data), "-o", str(out), *judge]) == 1
        assert "read 2 candidates but kept none (dropped: judge_gave_no_rating 2)" in (
            capsys.readouterr().err
        )
        assert not out.exists()
        other = write_jsonl(tmp_path / "d.jsonl", [candidates(0, ["LOST b"])])
        verdicts = tmp_path / "v.jsonl"
        pairwise = ["score", str(data), str(other), "--pairwise", "-o", str(verdicts), *judge]
        assert main(pairwise) == 1
        assert "read 1 prompts but kept none (dropped: judge_gave_no_verdict 1)" in (
            capsys.readouterr().err
        )
        assert not verdicts.exists()
        assert main([*pairwise, "--allow-empty"]) == 0
        assert [v["verdict"] for v in lines(verdicts)] == ["missing"]
    finally:
        server.close()


def test_sample_without_a_prompt_fails_before_anything_is_written(tmp_path, echo_server, capsys):
    """Every prompt record skipped as bad, or a --shard that takes none of the prompts: exit 1
    with the reason before the model is loaded or OUT.partial started; --allow-empty writes the
    empty output."""
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"nothing": 1}, {"nothing": 2}])
    out = tmp_path / "c.jsonl"
    base = ["--model", "m", "-o", str(out), "--backend", "openai", "--base-url", echo_server.url,
            "-q"]  # fmt: skip
    assert main(["sample", str(bad), *base, "--skip-bad"]) == 1
    err = capsys.readouterr().err
    assert "sample: read 2 prompts but kept none (dropped: bad_records_skipped 2); first bad " \
        f"record: {bad}:1: " in err  # fmt: skip
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    assert main(["sample", str(prompts), *base, "--shard", "5/8"]) == 1
    assert (
        "sample: read 3 prompts but kept none; --shard 5/8 takes the prompts whose index % 8 == 5"
        in capsys.readouterr().err
    )
    assert echo_server.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "p.jsonl"]
    assert main(["sample", str(bad), *base, "--skip-bad", "--allow-empty"]) == 0
    assert out.read_text() == ""
