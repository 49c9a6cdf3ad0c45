"""`plamo-fast pack` end to end: every example accounted for, row invariants, DPO pairs,
truncation, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_fixtures import CONVERSATIONS, SYSTEM_CONVERSATION, TEMPLATES, make_tokenizer, write_jsonl

from plamo_fast.cli import main
from plamo_fast.data.pack import pack
from plamo_fast.data.records import RecordError

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
    dropped = pack([data], chatml, tmp_path / "drop", max_length=40)
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


def test_empty_file_is_an_error(chatml: Path, tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RecordError, match="no records"):
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
        "0": {"amount": "3", "available": 10, "taken": 3},
        "1": {"amount": "1.5x", "available": 4, "taken": 6},
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
