"""`plamo-fast pack` end to end: every example accounted for, row invariants, DPO pairs,
truncation, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_fixtures import (
    CONVERSATIONS,
    SYSTEM_CONVERSATION,
    TEMPLATES,
    make_tokenizer,
    packed_documents,
    write_jsonl,
)

from plamo_fast.cli import main
from plamo_fast.data.conversation import BadRecordError
from plamo_fast.data.pack import pack
from plamo_fast.outputs import MARKER

pytest.importorskip("tokenizers")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def chatml(tmp_path: Path) -> Path:
    return make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])


def rows(out: Path) -> list[dict]:
    return pq.read_table(out / "data.parquet").to_pylist()


def test_sft_every_example_packed_once(chatml: Path, tmp_path: Path):
    records = [{"messages": c} for c in CONVERSATIONS * 10] + [
        {"prompt": "日本の首都は？", "completion": "東京です。"}
    ] * 5
    data = write_jsonl(tmp_path / "sft.jsonl", records)
    out = tmp_path / "packed"
    assert main(["pack", str(data), "--tokenizer", str(chatml), "-L", "128", "-o", str(out)]) == 0
    report = json.loads((out / "pack_report.json").read_text())
    assert report["examples_read"] == report["examples_packed"] == len(records)
    table = rows(out)
    assert report["rows"] == len(table) >= report["rows_lower_bound"]
    seen = []
    for row in table:
        assert len(row["input_ids"]) <= 128
        assert sum(row["seq_lengths"]) == len(row["input_ids"])
        cursor = 0
        for n in row["seq_lengths"]:
            assert row["labels"][cursor] == -100  # no target crosses a document boundary
            assert row["position_ids"][cursor : cursor + n] == list(range(n))
            cursor += n
        seen += row["doc_ids"]
    assert sorted(seen) == list(range(len(records)))
    assert "source_ids" not in table[0]


def test_dpo_pairs_stay_adjacent(chatml: Path, tmp_path: Path):
    records = [
        {
            "prompt": [{"role": "user", "content": "Say hello."}],
            "chosen": [{"role": "assistant", "content": "Hello! How can I help you?"}],
            "rejected": "No.",
        }
    ] * 7
    data = write_jsonl(tmp_path / "dpo.jsonl", records)
    out = tmp_path / "dpo"
    report = pack([data], chatml, out, max_length=64, kind="dpo")
    assert report["examples_packed"] == 7
    for row in rows(out):
        pairs = row["pair_ids"]
        assert len(pairs) % 2 == 0
        assert pairs[0::2] == pairs[1::2]  # chosen then rejected, side by side
        assert row["doc_ids"] == pairs


def test_mixture_has_source_ids(chatml: Path, tmp_path: Path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"messages": CONVERSATIONS[0]}] * 3)
    b = write_jsonl(tmp_path / "b.jsonl", [{"messages": CONVERSATIONS[1]}] * 2)
    out = tmp_path / "mix"
    pack([a, b], chatml, out, max_length=256)
    sources = sorted(
        (s, d) for row in rows(out) for s, d in zip(row["source_ids"], row["doc_ids"], strict=False)
    )
    assert sources == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]


def test_too_long_dropped_or_truncated_left(chatml: Path, tmp_path: Path):
    long_chat = SYSTEM_CONVERSATION[:1] + CONVERSATIONS[1] + CONVERSATIONS[2]
    data = write_jsonl(tmp_path / "long.jsonl", [{"messages": long_chat}])
    dropped = pack([data], chatml, tmp_path / "drop", max_length=40, allow_empty=True)
    assert dropped["dropped"] == {"too_long": 1} and dropped["examples_packed"] == 0
    kept = pack([data], chatml, tmp_path / "left", max_length=60, truncate="left")
    assert kept["examples_packed"] == 1
    (row,) = rows(tmp_path / "left")
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(chatml / "tokenizer.json"))
    text = raw.decode(row["input_ids"], skip_special_tokens=False)
    assert text.startswith("<|im_start|>system")  # the system message is kept
    assert "2 * 3 = 6.<|im_end|>" in text  # the final answer is whole, with its real end
    assert "Say hello." not in text  # the oldest exchange went first


def test_no_trainable_token_is_dropped_and_counted(chatml: Path, tmp_path: Path):
    data = write_jsonl(
        tmp_path / "x.jsonl",
        [{"messages": [{"role": "user", "content": "hi"}]}, {"messages": CONVERSATIONS[0]}],
    )
    report = pack([data], chatml, tmp_path / "o", max_length=128)
    assert report["dropped"] == {"no_trainable_token": 1} and report["examples_packed"] == 1


@pytest.mark.parametrize(
    "line,message",
    [
        ("{not json", "malformed JSON"),
        ('{"messages": [{"content": "x"}]}', "has no 'role'"),
        ('{"messages": [{"role": "user"}]}', "has no 'content'"),
        ('{"messages": [{"role": "wizard", "content": "x"}]}', "unknown role 'wizard'"),
        ('{"text": "x"}', "expected 'messages'"),
    ],
)
def test_bad_records_name_file_and_line(chatml: Path, tmp_path: Path, capsys, line, message):
    good = json.dumps({"messages": CONVERSATIONS[0]}, ensure_ascii=False)
    data = tmp_path / "bad.jsonl"
    data.write_text(f"{good}\n{good}\n{line}\n{good}\n", encoding="utf-8")
    out = tmp_path / "o"
    assert main(["pack", str(data), "--tokenizer", str(chatml), "-L", "64", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{data}:3: " in err and message in err
    assert not out.exists()
    report = pack([data], chatml, out, max_length=64, skip_bad=True)
    assert report["dropped"] == {"malformed": 1} and report["examples_packed"] == 3
    assert report["bad_records"][0].startswith(f"{data}:3: ")


def test_a_run_that_keeps_nothing_fails_unless_allow_empty(chatml: Path, tmp_path: Path, capsys):
    long_chat = SYSTEM_CONVERSATION[:1] + CONVERSATIONS[1] + CONVERSATIONS[2]
    data = write_jsonl(tmp_path / "long.jsonl", [{"messages": long_chat}] * 2)
    out = tmp_path / "o"
    assert pack_cli(data, "--tokenizer", chatml, "-L", 40, "-o", out) == 1
    err = capsys.readouterr().err
    assert "pack: read 2 examples but kept none (dropped: too_long 2)" in err
    assert "raise --max-length (40) or pass --truncate left" in err and "--allow-empty" in err
    assert not out.exists()
    assert pack_cli(data, "--tokenizer", chatml, "-L", 40, "-o", out, "--allow-empty") == 0
    assert json.loads((out / "pack_report.json").read_text())["rows"] == 0
    # Every record skipped as bad: the same refusal.
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n[1]\n", encoding="utf-8")
    assert pack_cli(bad, "--tokenizer", chatml, "-L", 64, "-o", tmp_path / "b", "--skip-bad") == 1
    assert "read 2 examples but kept none (dropped: malformed 2)" in capsys.readouterr().err


def test_more_than_a_tenth_dropped_is_one_warning_line(chatml: Path, tmp_path: Path, capsys):
    long_chat = SYSTEM_CONVERSATION[:1] + CONVERSATIONS[1] + CONVERSATIONS[2]
    short = {"messages": CONVERSATIONS[0]}
    for n_short, warned in ((4, True), (9, False)):
        data = write_jsonl(
            tmp_path / f"d{n_short}.jsonl", [{"messages": long_chat}] + [short] * n_short
        )
        pack([data], chatml, tmp_path / f"o{n_short}", max_length=40)
        err = capsys.readouterr().err
        line = (
            f"warning: dropped 1 of {n_short + 1} examples ({100 / (n_short + 1):.1f}%): too_long 1"
        )
        assert (line in err) == warned and err.count("warning") == int(warned)


def test_json_array_files_are_read_record_by_record(chatml: Path, tmp_path: Path, capsys):
    records = [{"messages": c} for c in CONVERSATIONS] + [
        {"instruction": "日本の首都は？", "input": "", "output": "東京です。"}
    ]
    lines = write_jsonl(tmp_path / "lines.jsonl", records)
    array = tmp_path / "array.json"
    array.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    pack([lines], chatml, tmp_path / "a", max_length=256)
    pack([array], chatml, tmp_path / "b", max_length=256)
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    # A bad element is named by its place in the array, and --skip-bad skips only it.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([records[0], {"text": "x"}, records[1]]), encoding="utf-8")
    assert pack_cli(bad, "--tokenizer", chatml, "-L", 256, "-o", tmp_path / "c") == 1
    assert f"{bad}:record 2: expected 'messages'" in capsys.readouterr().err
    report = pack([bad], chatml, tmp_path / "c", max_length=256, skip_bad=True)
    assert report["examples_packed"] == 2 and report["bad_records"][0].startswith(
        f"{bad}:record 2: "
    )


def test_empty_file_is_an_error(chatml: Path, tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(BadRecordError, match="no records"):
        pack([empty], chatml, tmp_path / "o", max_length=64)


def test_pretokenized_rows_are_packed_as_they_are(chatml: Path, tmp_path: Path):
    data = write_jsonl(
        tmp_path / "tok.jsonl",
        [
            {"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8]},
            {"input_ids": [9, 10, 11], "assistant_masks": [0, 1, 1]},
        ],
    )
    pack([data], chatml, tmp_path / "o", max_length=16)
    docs = {}
    for row in rows(tmp_path / "o"):
        cursor = 0
        for d, n in zip(row["doc_ids"], row["seq_lengths"], strict=False):
            docs[d] = (row["input_ids"][cursor : cursor + n], row["labels"][cursor : cursor + n])
            cursor += n
    assert docs[0] == ([5, 6, 7, 8], [-100, -100, 7, 8])
    assert docs[1] == ([9, 10, 11], [-100, 10, 11])


def test_parquet_input_and_padding(chatml: Path, tmp_path: Path):
    import pyarrow as pa

    table = pa.table({"messages": [CONVERSATIONS[0], CONVERSATIONS[2], CONVERSATIONS[1]]})
    pq.write_table(table, tmp_path / "in.parquet")
    out = tmp_path / "o"
    assert (
        main(
            [
                "pack",
                str(tmp_path / "in.parquet"),
                "--tokenizer",
                str(chatml),
                "-L",
                "64",
                "-o",
                str(out),
                "--pad",
                "-q",
            ]
        )
        == 0
    )
    packed = rows(out)
    assert all(len(r["input_ids"]) == 64 for r in packed)
    report = json.loads((out / "pack_report.json").read_text())
    assert report["examples_packed"] + report["dropped"].get("too_long", 0) == 3
    assert len([d for r in packed for d in r["doc_ids"] if d >= 0]) == report["examples_packed"]


def test_mixture_counts_and_weights(chatml: Path, tmp_path: Path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"messages": CONVERSATIONS[0]}] * 10)
    b = write_jsonl(tmp_path / "b.jsonl", [{"messages": CONVERSATIONS[2]}] * 4)
    out = tmp_path / "mix"
    report = pack([f"{a}:3", f"{b}:1.5x"], chatml, out, max_length=256, seed=2)
    assert report["mixture"] == {
        "0": {"amount": "3", "available": 10, "taken": 3, "repeated": 0},
        "1": {"amount": "1.5x", "available": 4, "taken": 6, "repeated": 2},
    }
    pairs = [(s, d) for r in rows(out) for s, d in zip(r["source_ids"], r["doc_ids"], strict=False)]
    from collections import Counter

    per_source = Counter(s for s, _ in pairs)
    assert per_source == {0: 3, 1: 6}
    assert len({d for s, d in pairs if s == 0}) == 3  # without replacement
    counts_b = Counter(d for s, d in pairs if s == 1)
    assert sorted(counts_b.values()) == [1, 1, 2, 2]  # every example once, two of them twice
    again = pack([f"{a}:3", f"{b}:1.5x"], chatml, tmp_path / "mix2", max_length=256, seed=2)
    assert again["mixture"] == report["mixture"]
    assert rows(tmp_path / "mix2") == rows(out)


def test_a_count_above_the_file_says_examples_repeat(chatml: Path, tmp_path: Path, capsys):
    """FILE:N with N above the file's examples repeats them: the report and stderr say so; a
    weight (FILE:2x) asks for the repeats and is not warned about."""
    a = write_jsonl(tmp_path / "a.jsonl", [{"messages": CONVERSATIONS[0]}] * 4)
    report = pack([f"{a}:10"], chatml, tmp_path / "m", max_length=256)
    assert report["mixture"]["0"] == {"amount": "10", "available": 4, "taken": 10, "repeated": 6}
    err = capsys.readouterr().err
    assert f"{a}:10 asks for 10 examples but the file has 4 packable; examples repeat" in err
    assert "each taken 2 times, 2 of them 3 times" in err
    pack([f"{a}:2x"], chatml, tmp_path / "w", max_length=256)
    assert "examples repeat" not in capsys.readouterr().err


def test_out_of_core_path_writes_row_groups_identical_to_one_chunk(
    chatml: Path, tmp_path: Path, monkeypatch
):
    """Documents are spilled to disk and rows gathered chunk by chunk; a small chunk size must
    give the same rows as one big chunk, and no spill file may remain."""
    from plamo_fast.data import pack as pack_module

    records = [{"messages": c} for c in CONVERSATIONS * 30]
    data = write_jsonl(tmp_path / "d.jsonl", records)
    pack([data], chatml, tmp_path / "one", max_length=96)
    monkeypatch.setattr(pack_module, "CHUNK_TOKENS", 200)
    pack([data], chatml, tmp_path / "many", max_length=96)
    assert pq.ParquetFile(tmp_path / "many" / "data.parquet").num_row_groups > 5
    assert rows(tmp_path / "many") == rows(tmp_path / "one")
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [
        MARKER,
        "data.parquet",
        "pack_report.json",
    ]


def test_chat_template_file_overrides_the_tokenizers(chatml: Path, tmp_path: Path):
    from chat_fixtures import GEMMA

    template = tmp_path / "gemma.jinja"
    template.write_text(GEMMA)
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": CONVERSATIONS[0]}])
    out = tmp_path / "o"
    assert (
        main(
            [
                "pack",
                str(data),
                "--tokenizer",
                str(chatml),
                "-L",
                "128",
                "-o",
                str(out),
                "--chat-template",
                str(template),
                "-q",
            ]
        )
        == 0
    )
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(chatml / "tokenizer.json"))
    (row,) = rows(out)
    text = raw.decode(row["input_ids"], skip_special_tokens=False)
    assert text.startswith("<s><start_of_turn>user\n") and "<|im_start|>" not in text
    trained = raw.decode([t for t in row["labels"] if t != -100], skip_special_tokens=False)
    assert trained == CONVERSATIONS[0][1]["content"] + "<end_of_turn>"


# --- output safety -------------------------------------------------------------------------


def pack_cli(*args: str) -> int:
    return main(["pack", *map(str, args), "-q"])


def test_output_may_not_be_the_working_directory(chatml: Path, tmp_path: Path, monkeypatch):
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": CONVERSATIONS[0]}])
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("keep me")
    monkeypatch.chdir(work)
    for overwrite in ([], ["--overwrite"]):
        assert pack_cli(data, "--tokenizer", chatml, "-L", 64, "-o", ".", *overwrite) == 1
    assert (work / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]


def test_output_may_not_be_or_hold_an_input(chatml: Path, tmp_path: Path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    data = write_jsonl(inputs / "d.jsonl", [{"messages": CONVERSATIONS[0]}])
    before = data.read_bytes()
    for out in (data, inputs, tmp_path, chatml, chatml / "packed"):
        assert pack_cli(data, "--tokenizer", chatml, "-L", 64, "-o", out, "--overwrite") == 1
        assert "output" in capsys.readouterr().err
    assert data.read_bytes() == before and (chatml / "tokenizer.json").is_file()
    assert not (chatml / "packed").exists()


def test_overwrite_replaces_only_an_earlier_pack_output(chatml: Path, tmp_path: Path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": c} for c in CONVERSATIONS])
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("not ours")
    assert pack_cli(data, "--tokenizer", chatml, "-L", 64, "-o", other, "--overwrite") == 1
    assert "not an output of plamo-fast" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["precious.txt"]

    out = tmp_path / "packed"
    assert pack_cli(data, "--tokenizer", chatml, "-L", 64, "-o", out) == 0
    assert pack_cli(data, "--tokenizer", chatml, "-L", 64, "-o", out) == 1  # no --overwrite
    assert "already exists" in capsys.readouterr().err
    assert pack_cli(data, "--tokenizer", chatml, "-L", 128, "-o", out, "--overwrite") == 0
    assert json.loads((out / "pack_report.json").read_text())["max_length"] == 128
    assert json.loads((out / MARKER).read_text())["command"] == "pack"
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name or ".old" in p.name] == []

    merged = tmp_path / "merged"  # another command's output is not pack's to replace
    merged.mkdir()
    (merged / MARKER).write_text(json.dumps({"command": "merge"}))
    assert pack_cli(data, "--tokenizer", chatml, "-L", 64, "-o", merged, "--overwrite") == 1
    assert "output of plamo-fast merge" in capsys.readouterr().err
    assert sorted(p.name for p in merged.iterdir()) == [MARKER]


# --- conversations -----------------------------------------------------------------------


def trained_texts(out: Path, tokenizer: Path) -> dict[int, str]:
    """Per document id, the decoded trained tokens."""
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    found = {}
    for row in rows(out):
        cursor = 0
        for doc, n in zip(row["doc_ids"], row["seq_lengths"], strict=True):
            labels = row["labels"][cursor : cursor + n]
            found[doc] = raw.decode([t for t in labels if t != -100], skip_special_tokens=False)
            cursor += n
    return found


def test_prompt_completion_trains_only_the_completion(chatml: Path, tmp_path: Path):
    """TRL's convention: assistant turns inside a multi-turn prompt are context."""
    prompt = CONVERSATIONS[0] + CONVERSATIONS[1][:3]  # user, assistant, user, assistant, user
    record = {"prompt": prompt, "completion": [{"role": "assistant", "content": "はい。"}]}
    data = write_jsonl(tmp_path / "pc.jsonl", [record, {**record, "completion": "いいえ。"}])
    # --truncate left drops the oldest exchange; the prompt's other answer stays untrained.
    for extra in ({}, {"truncate": "left", "max_length": 60}):
        out = tmp_path / f"o{len(extra)}"
        report = pack([data], chatml, out, **{"max_length": 256, **extra})
        assert report["examples_packed"] == 2
        assert trained_texts(out, chatml) == {0: "はい。<|im_end|>", 1: "いいえ。<|im_end|>"}
        assert max(len(r["input_ids"]) for r in rows(out)) <= extra.get("max_length", 256)
    assert "日本の首都" not in "".join(decoded(out, chatml))  # the oldest exchange went first


def decoded(out: Path, tokenizer: Path) -> list[str]:
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    return [raw.decode(r["input_ids"], skip_special_tokens=False) for r in rows(out)]


def test_sharegpt_conversations_pack_like_messages(chatml: Path, tmp_path: Path):
    speaker = {"user": "human", "assistant": "gpt", "system": "system"}
    sharegpt = [
        {"conversations": [{"from": speaker[m["role"]], "value": m["content"]} for m in c]}
        for c in [*CONVERSATIONS, SYSTEM_CONVERSATION]
    ]
    messages = [{"messages": c} for c in [*CONVERSATIONS, SYSTEM_CONVERSATION]]
    pack([write_jsonl(tmp_path / "a.jsonl", sharegpt)], chatml, tmp_path / "a", max_length=256)
    pack([write_jsonl(tmp_path / "b.jsonl", messages)], chatml, tmp_path / "b", max_length=256)
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    bad = write_jsonl(tmp_path / "c.jsonl", [{"conversations": [{"from": "bot", "value": "x"}]}])
    with pytest.raises(BadRecordError, match=rf"{bad}:1: conversations\[0\]: unknown role 'bot'"):
        pack([bad], chatml, tmp_path / "c", max_length=256)


def test_alpaca_and_dolly_records_pack_like_their_conversation(chatml: Path, tmp_path: Path):
    """instruction + "\\n" + input is the user turn; only the output is trained."""
    alpaca = [
        {"instruction": "日本の首都は？", "input": "", "output": "東京です。"},
        {"instruction": "要約して。", "input": "長い文章です。", "output": "短い。"},
    ]
    dolly = [
        {"instruction": r["instruction"], "context": r["input"], "response": r["output"]}
        for r in alpaca
    ]
    messages = [
        {
            "messages": [
                {"role": "user", "content": "日本の首都は？"},
                {"role": "assistant", "content": "東京です。"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "要約して。\n長い文章です。"},
                {"role": "assistant", "content": "短い。"},
            ]
        },
    ]
    for name, records in (("alpaca", alpaca), ("dolly", dolly), ("messages", messages)):
        pack(
            [write_jsonl(tmp_path / f"{name}.jsonl", records)],
            chatml,
            tmp_path / name,
            max_length=256,
        )
    assert rows(tmp_path / "alpaca") == rows(tmp_path / "dolly") == rows(tmp_path / "messages")
    assert trained_texts(tmp_path / "alpaca", chatml) == {
        0: "東京です。<|im_end|>",
        1: "短い。<|im_end|>",
    }


# --- chat templates: per-record refusals -----------------------------------------------------


def test_a_template_error_refuses_that_record_only(tmp_path: Path, capsys):
    """Gemma 2 raises for a system message: that record is a bad record, not a crash."""
    from chat_fixtures import GEMMA

    tok = make_tokenizer(tmp_path / "gemma", GEMMA)
    records = [{"messages": CONVERSATIONS[0]}, {"messages": SYSTEM_CONVERSATION}]
    data = write_jsonl(tmp_path / "d.jsonl", records + [{"messages": CONVERSATIONS[2]}])
    out = tmp_path / "o"
    assert pack_cli(data, "--tokenizer", tok, "-L", 128, "-o", out) == 1
    err = capsys.readouterr().err
    assert f"{data}:2: the template refused this conversation: System role not supported" in err, (
        err
    )
    assert "Traceback" not in err and not out.exists()
    report = pack([data], tok, out, max_length=128, skip_bad=True)
    assert report["dropped"] == {"template_error": 1} and report["examples_packed"] == 2
    assert report["bad_records"] == [
        f"{data}:2: the template refused this conversation: System role not supported"
    ]


def test_an_answer_the_template_rewrites_refuses_that_record_only(tmp_path: Path, capsys):
    from chat_fixtures import DROPS_THINK

    tok = make_tokenizer(tmp_path / "qwen", DROPS_THINK)
    thinking = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "<think>hmm</think>A1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2"},
    ]
    records = [
        {"messages": CONVERSATIONS[2]},
        {"messages": thinking},
        {"messages": CONVERSATIONS[0]},
    ]
    data = write_jsonl(tmp_path / "d.jsonl", records)
    out = tmp_path / "o"
    assert pack_cli(data, "--tokenizer", tok, "-L", 128, "-o", out) == 1
    err = capsys.readouterr().err
    assert f"{data}:2: message 1 (assistant) cannot be located" in err, err
    assert "rewrites it (it renders 'A1' where the answer reads '<think>hmm</think>A1')" in err
    report = pack([data], tok, out, max_length=128, skip_bad=True)
    assert report["dropped"] == {"template_rewrites": 1} and report["examples_packed"] == 2
    assert report["bad_records"][0].startswith(f"{data}:2: message 1 (assistant)")
    every = pack([data], tok, tmp_path / "last", max_length=128, last_turn_only=True)
    assert every["examples_packed"] == 3  # training only the final answer is fine


def test_dpo_refusal_names_the_side(tmp_path: Path):
    from chat_fixtures import DROPS_THINK

    tok = make_tokenizer(tmp_path / "qwen", DROPS_THINK)
    prompt = [{"role": "user", "content": "Q"}]
    record = {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "<think>a</think>A"}, *prompt[:1],
                   {"role": "assistant", "content": "B"}],
        "rejected": "C",
    }  # fmt: skip
    data = write_jsonl(tmp_path / "d.jsonl", [record])
    with pytest.raises(BadRecordError, match=rf"{data}:1: chosen: message 1 \(assistant\)"):
        pack([data], tok, tmp_path / "o", max_length=128, kind="dpo")


# --- pre-tokenized rows ------------------------------------------------------------------------


VOCAB = "the tokenizer's vocabulary size"
PRETOKENIZED = [
    {"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8]},
    {"input_ids": [9, 10, 11], "assistant_masks": [0, 1, 1]},
    {"input_ids": [12, 13, 14], "completion_mask": [False, True, True]},
]


def test_pretokenized_rows_pack_without_a_tokenizer(tmp_path: Path, capsys):
    data = write_jsonl(tmp_path / "tok.jsonl", PRETOKENIZED)
    out = tmp_path / "o"
    assert pack_cli(data, "-L", 16, "-o", out) == 0
    assert packed_documents(out) == {
        0: ([5, 6, 7, 8], [-100, -100, 7, 8]),
        1: ([9, 10, 11], [-100, 10, 11]),
        2: ([12, 13, 14], [-100, 13, 14]),
    }
    assert pack_cli(data, "-L", 16, "-o", tmp_path / "p", "--pad") == 1
    assert "--pad-id" in capsys.readouterr().err
    assert pack_cli(data, "-L", 16, "-o", tmp_path / "p", "--pad", "--pad-id", 3) == 0
    padded = rows(tmp_path / "p")
    assert all(len(r["input_ids"]) == 16 and r["input_ids"][-1] == 3 for r in padded)

    mixed = write_jsonl(tmp_path / "mixed.jsonl", [*PRETOKENIZED, {"messages": CONVERSATIONS[0]}])
    assert pack_cli(mixed, "-L", 16, "-o", tmp_path / "m", "--skip-bad") == 1
    err = capsys.readouterr().err
    assert f"{mixed}:4: this record is a conversation; rendering it needs --tokenizer" in err


@pytest.mark.parametrize(
    "row,message",
    [
        ({"input_ids": [5, 6, 7], "labels": [-100, 6]}, "input_ids has 3 tokens but labels has 2"),
        (
            {"input_ids": [5, 6], "assistant_masks": [1, 1, 0]},
            "input_ids has 2 tokens but assistant_masks has 3",
        ),
        ({"input_ids": [5, 6], "labels": [-100, -5]}, "labels[1] = -5 is neither -100"),
        ({"input_ids": [5, 6], "labels": [-100, VOCAB]}, "below the vocabulary size VOCAB"),
        ({"input_ids": [5, VOCAB], "labels": [-100, 5]}, "input_ids[1] = VOCAB is not a token"),
        ({"input_ids": [5, -1], "labels": [-100, 5]}, "input_ids[1] = -1 is not a token id"),
        ({"input_ids": [5, 6.5], "labels": [-100, 5]}, "input_ids[1] = 6.5 is not an integer"),
        ({"input_ids": [5, "6"], "labels": [-100, 5]}, "input_ids[1] = '6' is not an integer"),
        ({"input_ids": [5, 6], "labels": [-100, True]}, "labels[1] = True is not an integer"),
        ({"input_ids": [5, 6], "assistant_masks": [0, 2]}, "assistant_masks[1] = 2 is not 0 or 1"),
        ({"input_ids": [], "labels": []}, "input_ids must be a non-empty list"),
        ({"input_ids": [5, 6]}, "need 'labels' or a mask"),
        ({"input_ids": [5, 2**40], "labels": [-100, 5]}, "input_ids[1] = 1099511627776"),
    ],
)
def test_bad_pretokenized_rows_name_file_and_line(chatml: Path, tmp_path: Path, row, message):
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(chatml / "tokenizer.json")).get_vocab_size(True)
    row = {k: [vocab if x == VOCAB else x for x in v] for k, v in row.items()}
    message = message.replace("VOCAB", str(vocab))
    data = write_jsonl(tmp_path / "tok.jsonl", [PRETOKENIZED[0], row, PRETOKENIZED[1]])
    with pytest.raises(BadRecordError) as error:
        pack([data], chatml, tmp_path / "o", max_length=16)
    assert str(error.value).startswith(f"{data}:2: ") and message in str(error.value)
    report = pack([data], chatml, tmp_path / "o", max_length=16, skip_bad=True)
    assert report["dropped"] == {"malformed": 1} and report["examples_packed"] == 2
    assert report["bad_records"][0].startswith(f"{data}:2: ")


def test_without_a_tokenizer_ids_are_checked_against_int32(tmp_path: Path):
    ok = {"input_ids": [5, 699_999], "labels": [-100, 699_999]}
    bad = {"input_ids": [5, 2**31], "labels": [-100, 5]}
    data = write_jsonl(tmp_path / "tok.jsonl", [ok, bad])
    with pytest.raises(BadRecordError, match=rf"{data}:2: input_ids\[1\] = 2147483648"):
        pack([data], None, tmp_path / "o", max_length=16)
    report = pack([data], None, tmp_path / "o", max_length=16, skip_bad=True)
    assert report["examples_packed"] == 1


def test_a_shortened_conversation_the_template_refuses_names_its_own_line(tmp_path: Path):
    """--truncate left renders again after dropping exchanges; a refusal then is still that
    record's alone, with its own line (a later record may already be read)."""
    from chat_fixtures import CHATML

    template = (
        "{% if messages|length < 6 %}{{ raise_exception('needs three exchanges') }}{% endif %}"
        + CHATML
    )
    tok = make_tokenizer(tmp_path / "tok", template)
    filler = "Please explain packing of sequences. " * 6
    long_chat = [
        {"role": r, "content": filler if k < 6 else c}
        for k, (r, c) in enumerate((m["role"], m["content"]) for m in CONVERSATIONS[1] * 2)
    ]
    short_chat = CONVERSATIONS[2] + CONVERSATIONS[0]
    records = [{"messages": long_chat}, PRETOKENIZED[0], {"messages": short_chat}]
    data = write_jsonl(tmp_path / "d.jsonl", records)
    refusal = f"{data}:1: the template refused this conversation: needs three exchanges"
    with pytest.raises(BadRecordError) as error:
        pack([data], tok, tmp_path / "o", max_length=128, truncate="left")
    assert str(error.value).startswith(refusal + " (pass --skip-bad")
    report = pack([data], tok, tmp_path / "o", max_length=128, truncate="left", skip_bad=True)
    assert report["bad_records"] == [refusal] and report["examples_packed"] == 2
