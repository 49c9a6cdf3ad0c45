"""plamo-fast translate: masking and restoring, chunking, the fields of each record shape, every
filter with its count and side-file entry, the translation cache, resuming, prompt files, bad
records, and one end-to-end run on the hf backend with a tiny model. The LLM is a scripted
"translator" behind the loopback OpenAI-compatible server of backend_fixtures: it maps ASCII
letters to kana (and back, for a back-translation into English), keeps sentinels and line
breaks, and fails on purpose when the source holds a marker word."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from backend_fixtures import Server, choice, killed_then_resumed
from chat_fixtures import write_jsonl

from plamo_fast.cli import main
from plamo_fast.translate.chunking import split_text
from plamo_fast.translate.masking import mask, problems, restore, sentinel
from plamo_fast.translate.run import translate

KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのは"  # 26 kana, one per letter
TO_KANA = str.maketrans("abcdefghijklmnopqrstuvwxyz" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", KANA * 2)
FROM_KANA = str.maketrans(KANA, "abcdefghijklmnopqrstuvwxyz")


def pseudo(text: str) -> tuple[str, str]:
    """The scripted translator: ``(translation, finish_reason)`` of a masked source text."""
    if "DROPSPAN" in text:
        return text.translate(TO_KANA).replace(sentinel(0), "", 1), "stop"
    if "KEEPENGLISH" in text:
        return text, "stop"
    if "TOOLONG" in text:
        return text.translate(TO_KANA)[:5], "length"
    if "SHORTEN" in text:
        return "あ", "stop"
    if "ONELINE" in text:
        return text.translate(TO_KANA).replace("\n", " "), "stop"
    return text.translate(TO_KANA), "stop"


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def server():
    def reply(body, calls):
        content = body["messages"][-1]["content"]
        text = content.split("\n\n", 1)[1]  # the default prompts end with "\n\n{text}"
        if content.startswith("Translate"):  # back into English
            back = text.translate(FROM_KANA)
            return 200, [choice(0, "something else entirely" if "drift" in back else back)]
        out, reason = pseudo(text)
        return 200, [choice(0, out, reason)]

    server = Server(reply)
    yield server
    server.close()


def run(tmp_path, server, records, name="out", **kwargs):
    source = write_jsonl(tmp_path / f"{name}-in.jsonl", records)
    out = tmp_path / f"{name}.jsonl"
    kwargs.setdefault("progress", False)
    result = translate(source, "m", out, backend="openai", base_url=server.url, **kwargs)
    return out, result


# --- masking -----------------------------------------------------------------------------

MASK_CASES = [
    ("Run `pip install x` now.", ["`pip install x`"]),
    ("Use ``a ` b`` here", ["``a ` b``"]),
    ("See https://example.com/a_(b)?q=1.", ["https://example.com/a_(b)?q=1"]),
    ("(at https://x.org/p)", ["https://x.org/p"]),
    (
        "Euler: $e^{i\\pi}+1=0$ and $$\\int_0^1 x\\,dx$$",
        ["$e^{i\\pi}+1=0$", "$$\\int_0^1 x\\,dx$$"],
    ),
    ("inline \\(a+b\\) and display \\[c\\]", ["\\(a+b\\)", "\\[c\\]"]),
    ("costs $5 and $10 today", []),
    (
        "Hello {name}, {0} {} {{ user.name }} %s %(n)d %.2f",
        ["{name}", "{0}", "{}", "{{ user.name }}", "%s", "%(n)d", "%.2f"],
    ),  # fmt: skip
    ("50% off, 100% sure", []),
    ("<think>x</think><br/><|im_end|>", ["<think>", "</think>", "<br/>", "<|im_end|>"]),
    ("`{x}`{y}$z$", ["`{x}`", "{y}", "$z$"]),  # adjacent, and nested inside code
    ('`https://a.b` <a href="https://c.d">', ["`https://a.b`", '<a href="https://c.d">']),
    ("x < y and y > z", []),
    ("already ⟦0⟧ and ⟦12⟧ here", ["⟦0⟧", "⟦12⟧"]),
]


@pytest.mark.parametrize(("text", "spans"), MASK_CASES)
def test_masking_finds_the_spans_and_restores_the_text(text, spans):
    masked = mask(text)
    assert list(masked.spans) == spans
    assert [f"⟦{i}⟧" in masked.text for i in range(len(spans))] == [True] * len(spans)
    assert restore(masked.text, masked.spans) == text


def test_code_blocks_are_masked_whole():
    text = (
        "Intro:\n\n    def f():\n        return '$x$'\n\nThen\n```python\n"
        "print('{a}')  # https://x.y\n\n```\nand ~~~\nunclosed ~~~ fence"
    )
    masked = mask(text)
    assert masked.spans[0] == "    def f():\n        return '$x$'"
    assert masked.spans[1] == "```python\nprint('{a}')  # https://x.y\n\n```"
    assert masked.text == "Intro:\n\n⟦0⟧\n\nThen\n⟦1⟧\nand ~~~\nunclosed ~~~ fence"
    # a line indented inside a paragraph is not code
    assert mask("one\n    two").spans == ()
    unclosed = mask("text\n```\ncode to the end\n")
    assert unclosed.spans == ("```\ncode to the end",)


def test_masking_round_trips_random_text():
    pieces = ["a", " ", ".", "。", "\n", "\n\n", "`", "```", "$", "$$", "{x}", "{{", "}}", "%s",
              "%", "<b>", "</b>", "<", ">", "⟦1⟧", "⟦", "⟧", "http://a.b/c)", "\\(", "\\)",
              "    ", "~~~"]  # fmt: skip
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        masked = mask(text)
        assert restore(masked.text, masked.spans) == text
        assert problems(masked.text, len(masked.spans)) == {}


def test_problems_name_missing_repeated_and_unknown_sentinels():
    assert problems("⟦0⟧ ⟦2⟧ ⟦2⟧ ⟦5⟧", 3) == {"missing": [1], "repeated": [2], "unknown": [5]}
    assert problems("⟦1⟧⟦0⟧", 2) == {}  # order may change
    assert restore("⟦1⟧ ⟦0⟧ ⟦7⟧", ("`a`", "⟦0⟧")) == "⟦0⟧ `a` ⟦7⟧"  # one pass; unknown kept


# --- chunking ----------------------------------------------------------------------------


def test_chunks_split_at_paragraphs_then_sentences_and_keep_separators():
    text = "  First para. Still first.\n\n \nSecond one is long. 二文目です。三文目！\nend.\n"
    split = split_text(text, 22)
    chunks = [c.masked for c in split.chunks]
    # pieces that fit are joined again, across a line break too
    assert chunks == ["First para.", "Still first.", "Second one is long.",
                      "二文目です。三文目！\nend."]  # fmt: skip
    assert [c.after for c in split.chunks] == [" ", "\n\n \n", " ", "\n"]
    assert split.before == "  "
    assert split.join([c.source for c in split.chunks]) == text
    # under the limit, paragraphs stay together and their line breaks are inside the chunk
    assert [c.masked for c in split_text(text, 1000).chunks] == [text.strip()]


def test_a_code_block_longer_than_the_limit_stays_whole():
    code = "```\n" + "x = 1\n" * 40 + "```"
    text = f"Before the code.\n\n{code}\n\nAfter it. Two sentences."
    split = split_text(text, 20)
    sources = [c.source for c in split.chunks]
    assert code in sources
    assert split.join(sources) == text
    assert all(len(s) <= 20 for s in sources if s != code)
    block = next(c for c in split.chunks if c.source == code)
    assert block.masked == "⟦0⟧" and not block.needs_model


def test_chunk_sentinels_count_from_zero_and_long_words_are_cut():
    split = split_text("`a` one.\n\n`b` two.", 9)
    assert [c.masked for c in split.chunks] == ["⟦0⟧ one.", "⟦0⟧ two."]
    assert [c.spans for c in split.chunks] == [("`a`",), ("`b`",)]
    cut = split_text("x" * 25, 10)
    assert [len(c.masked) for c in cut.chunks] == [10, 10, 5]
    words = split_text("one two three four five", 10)  # no sentence end: cut at spaces
    assert [(c.masked, c.after) for c in words.chunks] == [("one two", " "), ("three four", " "),
                                                           ("five", "")]  # fmt: skip


def test_chunking_round_trips_random_text():
    pieces = ["a", "bb ", ". ", "。", "\n", "\n\n", "  ", "```\nc\n```", "$x$", "{y}", "⟦3⟧"]
    rng = random.Random(1)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        split = split_text(text, rng.randint(1, 30))
        assert split.join([c.source for c in split.chunks]) == text


# --- the run -----------------------------------------------------------------------------

RECORDS = [
    {"id": "a1", "license": "cc-by-4.0", "source": "dolly",
     "messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Print `x` with {name}:\n\n```py\nprint(x)\n```"},
                  {"role": "assistant", "content": "Done. See https://docs.python.org/3/."},
                  {"role": "tool", "content": "raw tool output"}]},
    {"prompt": "Say hi", "chosen": [{"role": "assistant", "content": "Hi there"}],
     "rejected": [{"role": "assistant", "content": "No"}], "score": 3},
    {"prompt": [{"role": "user", "content": "Area of a circle?"}],
     "completion": [{"role": "assistant", "content": "It is $\\pi r^2$."}]},
    {"instruction": "Translate this", "input": "", "output": "Sure", "category": "qa"},
    {"conversations": [{"from": "human", "value": "hello"}, {"from": "gpt", "value": "yes"}]},
]  # fmt: skip


def test_structure_provenance_and_every_other_field_are_kept(tmp_path, server):
    out, result = run(tmp_path, server, RECORDS, source_lang="en")
    got = lines(out)
    assert result["kept"] == 5 and result["rejected"] == 0 and result["read"] == 5
    first = got[0]
    assert {k: first[k] for k in ("id", "license", "source")} == {
        "id": "a1", "license": "cc-by-4.0", "source": "dolly"}  # fmt: skip
    assert first["translated_by"] == "m" and first["translated_from"] == "en"
    assert first["translation_prompt_version"].startswith("ja-")
    messages = first["messages"]
    assert messages[0]["content"] == "Be brief.".translate(TO_KANA)
    assert messages[1]["content"] == (
        "Print".translate(TO_KANA) + " `x` " + "with".translate(TO_KANA)
        + " {name}:\n\n```py\nprint(x)\n```"
    )  # fmt: skip
    assert messages[2]["content"].endswith(" https://docs.python.org/3/.")
    assert messages[3] == RECORDS[0]["messages"][3]  # tool output untouched
    assert got[1]["score"] == 3
    assert got[1]["chosen"][0]["content"] == "Hi there".translate(TO_KANA)
    assert got[1]["prompt"] == "Say hi".translate(TO_KANA)
    assert got[1]["rejected"][0]["content"] == "No".translate(TO_KANA)
    assert got[2]["completion"][0]["content"] == "It is".translate(TO_KANA) + " $\\pi r^2$."
    assert got[3]["instruction"] == "Translate this".translate(TO_KANA)
    assert got[3]["input"] == "" and got[3]["category"] == "qa"
    assert got[4]["conversations"][0] == {"from": "human", "value": "hello".translate(TO_KANA)}
    assert [r["source_index"] for r in got] == list(range(5))
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["kept"] == 5 and (tmp_path / "out.rejected.jsonl").read_text() == ""
    assert not any(p.name.endswith((".partial", ".settings.json")) for p in tmp_path.iterdir())


def test_parquet_input(tmp_path, server):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        [{"id": 1, "instruction": "Name a color", "output": "Blue", "input": None},
         {"id": 2, "instruction": "Add {a} and {b}", "output": "{a}+{b}", "input": "a=1"}]
    )  # fmt: skip
    source = tmp_path / "in.parquet"
    pq.write_table(table, source)
    out = tmp_path / "o.jsonl"
    translate(source, "m", out, backend="openai", base_url=server.url, progress=False)
    got = lines(out)
    assert [r["id"] for r in got] == [1, 2] and got[0]["input"] is None
    kana = "Add".translate(TO_KANA), "and".translate(TO_KANA)
    assert got[1]["instruction"] == f"{kana[0]} {{a}} {kana[1]} {{b}}"  # placeholders kept
    assert got[1]["output"] == "{a}+{b}" and got[1]["input"] == "あ=1"


def test_system_prompts_can_be_left_alone(tmp_path, server):
    out, _ = run(tmp_path, server, RECORDS[:1], system=False)
    assert lines(out)[0]["messages"][0]["content"] == "Be brief."


def test_each_filter_rejects_with_its_reason_field_and_count(tmp_path, server, capsys):
    text = "A plain sentence that is long enough to be checked by every filter."
    records = [
        {"prompt": text, "completion": "Fine answer of a decent length here."},
        {"prompt": text, "completion": "Call `f` DROPSPAN and it works well."},
        {"prompt": "KEEPENGLISH " + text},
        {"prompt": text, "completion": "TOOLONG answer that the model could not finish"},
        {"prompt": "SHORTEN " + text},
        {"prompt": "line one ONELINE\nline two of the text"},
        {"prompt": text, "completion": "another fine answer of a decent length"},
    ]
    out, result = run(tmp_path, server, records)
    assert result["reasons"] == {"masked_spans": 1, "script": 1, "truncated": 1,
                                 "length_ratio": 1, "line_breaks": 1}  # fmt: skip
    assert result["kept"] == 2 and result["read"] == result["kept"] + result["rejected"]
    assert [r["source_index"] for r in lines(out)] == [0, 6]
    side = {r["reason"]: r for r in lines(tmp_path / "out.rejected.jsonl")}
    assert side["masked_spans"]["field"] == "completion"
    assert side["masked_spans"]["details"]["missing"] == [0]
    assert side["masked_spans"]["record"] == records[1]
    assert side["script"]["field"] == "prompt" and side["script"]["details"]["share"] < 0.5
    assert side["truncated"]["field"] == "completion"
    assert side["length_ratio"]["details"]["ratio"] < 0.2
    assert side["line_breaks"]["details"] == {"chunk": records[5]["prompt"], "source": 1,
                                              "translation": 0}  # fmt: skip
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["reasons"] == result["reasons"]
    assert "kept 2 of 7 records" in capsys.readouterr().err


def test_thresholds_are_options(tmp_path, server):
    from plamo_fast.translate.filters import FilterConfig

    records = [{"prompt": "KEEPENGLISH a sentence left in English by the model"}]
    loose = FilterConfig(min_script_share=0.0)
    _, result = run(tmp_path, server, records, filter_config=loose)
    assert result["kept"] == 1


def test_back_translation_rejects_a_drifting_translation(tmp_path, server):
    from plamo_fast.translate.filters import FilterConfig

    records = [{"prompt": "the weather is nice today in tokyo"},
               {"prompt": "this one will drift away when translated back"}]  # fmt: skip
    config = FilterConfig(back_translate=True, min_back_similarity=0.6)
    out, result = run(tmp_path, server, records, filter_config=config)
    assert result["reasons"] == {"back_translation": 1} and result["kept"] == 1
    rejected = lines(tmp_path / "out.rejected.jsonl")[0]
    assert rejected["details"]["back_translation"] == "something else entirely"
    assert rejected["details"]["similarity"] < 0.6
    assert lines(out)[0]["source_index"] == 0
    assert sum(c["messages"][-1]["content"].startswith("Translate") for c in server.calls) == 2


def test_cache_sends_each_chunk_once_and_serves_reruns(tmp_path, server):
    records = [{"prompt": "Same question here."}, {"prompt": "Same question here."},
               {"prompt": "A different one.\n\nSame question here."}]  # fmt: skip
    out, result = run(tmp_path, server, records, max_chunk_chars=20)
    assert len(server.calls) == 2  # "Same question here." once, "A different one." once
    assert result["this_run"]["requests"] == 2 and result["this_run"]["cached"] == 2
    again, result = run(tmp_path, server, records, name="again", max_chunk_chars=20,
                        cache_path=tmp_path / "out.cache.jsonl")  # fmt: skip
    assert len(server.calls) == 2 and result["this_run"]["requests"] == 0
    assert again.read_text() == out.read_text()
    # another model, prompt or setting is another key
    run(tmp_path, server, records, name="hot", max_chunk_chars=20, temperature=0.5,
        cache_path=tmp_path / "out.cache.jsonl")  # fmt: skip
    assert len(server.calls) == 4


def test_a_stopped_run_resumes_to_the_uninterrupted_output(tmp_path, server):
    records = [{"prompt": f"Question number {i}. It has two sentences."} for i in range(7)]
    records[2] = {"prompt": "KEEPENGLISH " + records[2]["prompt"]}
    straight, _ = run(tmp_path, server, records, name="straight")
    source = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "resumed.jsonl"
    cache = tmp_path / "separate-cache.jsonl"
    kwargs = dict(backend="openai", base_url=server.url, progress=False, cache_path=cache,
                  concurrency=1)  # batches of 4 requests  # fmt: skip
    calls = len(server.calls)
    partial = translate(source, "m", out, stop_after=4, **kwargs)
    assert len(server.calls) - calls == 4
    assert partial == {"finished": False, "written": 4} and not out.exists()
    with open(tmp_path / "resumed.jsonl.partial", "a") as f:
        f.write('{"prompt": "torn')  # a line cut by a kill
    calls = len(server.calls)
    result = translate(source, "m", out, **kwargs)
    assert result["this_run"]["already_done"] == 4 and result["this_run"]["records"] == 3
    assert len(server.calls) - calls == 3  # only the records not written yet
    assert out.read_text() == straight.read_text()
    assert lines(tmp_path / "resumed.rejected.jsonl") == lines(tmp_path / "straight.rejected.jsonl")
    assert result["reasons"] == {"script": 1} and result["kept"] == 6


def test_a_killed_run_resumes_to_the_same_file(tmp_path):
    """SIGKILL `plamo-fast translate` mid-run (a slow server), run it again: no record lost or
    repeated, and the files equal an uninterrupted run's."""
    import sys
    import time

    def reply(body, calls):
        time.sleep(0.1)
        out, reason = pseudo(body["messages"][-1]["content"].split("\n\n", 1)[1])
        return 200, [choice(0, out, reason)]

    server = Server(reply)
    records = [{"prompt": f"Question {i}: what is {i} plus one?"} for i in range(12)]
    records[5] = {"prompt": "KEEPENGLISH and nothing else here"}
    source = write_jsonl(tmp_path / "in.jsonl", records)
    command = [sys.executable, "-m", "plamo_fast.cli", "translate", str(source), "--model", "m",
               "--base-url", server.url, "--concurrency", "1", "-q"]  # fmt: skip
    try:
        killed, straight = killed_then_resumed(command, tmp_path)
    finally:
        server.close()
    assert [r["source_index"] for r in lines(killed)] == [i for i in range(12) if i != 5]
    assert killed.read_text() == straight.read_text()
    rejected = tmp_path / "killed.rejected.jsonl"
    assert rejected.read_text() == (tmp_path / "straight.rejected.jsonl").read_text()
    # the straight run's 12 requests, and each record's once over the two killed-run parts (at
    # most one request more: the one in flight at the kill)
    assert len(server.calls) <= 12 + 12 + 1


def test_resuming_with_other_settings_is_refused(tmp_path, server):
    from plamo_fast.errors import UsageError

    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "one"}, {"prompt": "two"}])
    out = tmp_path / "o.jsonl"
    kwargs = dict(backend="openai", base_url=server.url, progress=False)
    translate(source, "m", out, stop_after=1, **kwargs)
    with pytest.raises(UsageError, match="other settings"):
        translate(source, "m", out, max_chunk_chars=5, **kwargs)
    result = translate(source, "m", out, max_chunk_chars=5, overwrite=True, **kwargs)
    assert result["kept"] == 2


def test_prompt_file_is_validated_and_used(tmp_path, server):
    from plamo_fast.errors import UsageError

    bad = tmp_path / "bad.txt"
    bad.write_text("Translate into {target}: {txt}")
    with pytest.raises(UsageError, match=r"unknown placeholder\(s\) \{txt\}; no \{text\}"):
        run(tmp_path, server, [{"prompt": "x"}], prompt_path=bad)
    good = tmp_path / "good.txt"
    good.write_text('JSON {"keep": 1} into {target}\n\n{text}')
    out, _ = run(tmp_path, server, [{"prompt": "hello"}], prompt_path=good)
    assert server.calls[-1]["messages"][0]["content"] == 'JSON {"keep": 1} into 日本語\n\nhello'
    assert server.calls[-1]["temperature"] == 0
    default_version = run(tmp_path, server, [{"prompt": "hello"}], name="d")[0]
    assert lines(out)[0]["translation_prompt_version"] != lines(default_version)[0][
        "translation_prompt_version"]  # fmt: skip


def test_bad_records_fail_or_go_to_the_side_file(tmp_path, server, capsys):
    records = [{"prompt": "fine"}, {"text": "no shape"}, {"messages": [{"role": "x"}]}]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    with open(source, "a") as f:
        f.write('{"prompt": "cut\n')
    out = tmp_path / "o.jsonl"
    args = ["translate", str(source), "--model", "m", "-o", str(out), "--backend", "openai",
            "--base-url", server.url, "-q"]  # fmt: skip
    assert main(args) == 1
    assert f"{source}:2: nothing to translate" in capsys.readouterr().err
    assert not out.exists() and not server.calls
    assert main([*args, "--skip-bad"]) == 0
    side = lines(tmp_path / "o.rejected.jsonl")
    assert [(r["source_index"], r["reason"]) for r in side] == [
        (1, "bad_record"), (2, "bad_record"), (3, "bad_record")]  # fmt: skip
    assert side[2]["record"] is None and side[2]["raw"] == '{"prompt": "cut'

    assert side[0]["record"] == records[1] and f"{source}:3" in side[1]["details"]["error"]
    report = json.loads((tmp_path / "o.report.json").read_text())
    assert (report["read"], report["kept"], report["reasons"]) == (4, 1, {"bad_record": 3})


def test_usage_errors_come_before_any_output(tmp_path, server):
    from plamo_fast.errors import UsageError

    records = [{"prompt": "x"}]
    with pytest.raises(UsageError, match="both ja"):
        run(tmp_path, server, records, source_lang="ja")
    with pytest.raises(UsageError, match="one of the outputs"):
        run(tmp_path, server, records, cache_path=tmp_path / "out.rejected.jsonl")
    with pytest.raises(UsageError, match="--to takes one of ja, en"):
        run(tmp_path, server, records, to="fr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-in.jsonl"]
    assert not server.calls


def test_the_input_is_never_the_output(tmp_path, server, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "x"}])
    args = ["translate", str(source), "--model", "m", "-o", str(source), "--backend", "openai",
            "--base-url", server.url, "--overwrite", "-q"]  # fmt: skip
    assert main(args) == 1
    assert "is the input" in capsys.readouterr().err
    assert lines(source) == [{"prompt": "x"}]


@pytest.mark.torch
def test_hf_backend_end_to_end(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from train_fixtures import tiny_model

    model = tiny_model(tmp_path / "model")
    records = [{"prompt": "Hello there, `x` is fine."}, {"prompt": "```\ncode only\n```"},
               {"messages": [{"role": "user", "content": "Short question?"},
                             {"role": "assistant", "content": "An answer."}]}]  # fmt: skip
    source = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "hf.jsonl"
    args = ["translate", str(source), "--model", str(model), "-o", str(out), "--backend", "hf",
            "--max-new-tokens", "8", "--allow-empty", "-q"]  # fmt: skip
    assert main(args) == 0
    report = json.loads((tmp_path / "hf.report.json").read_text())
    side = lines(tmp_path / "hf.rejected.jsonl")
    kept = lines(out)
    assert report["read"] == 3 == len(kept) + len(side)
    assert report["kept"] == len(kept) and report["rejected"] == len(side)
    assert sum(report["reasons"].values()) == len(side)
    assert report["this_run"]["requests"] == 3  # the code-only record needs no model
    assert 1 in [r["source_index"] for r in kept]  # nothing to translate: kept as it was
    assert next(r for r in kept if r["source_index"] == 1)["prompt"] == records[1]["prompt"]
