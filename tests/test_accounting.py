"""No silent empty outputs: the shared check (``accounting.check_kept``) and its use by
``pairs`` (pack's use is tested in test_pack_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_fixtures import write_jsonl

from plamo_fast.cli import main
from plamo_fast.data.accounting import NothingKeptError, check_kept
from plamo_fast.sample.pairs import make_pairs, spin_pairs


def test_nothing_kept_is_an_error_with_the_reasons_unless_allowed(capsys):
    with pytest.raises(NothingKeptError) as error:
        check_kept("dedup", 12, 0, {"malformed": 2, "duplicate": 10}, False, hint="try X")
    assert str(error.value) == (
        "dedup: read 12 records but kept none (dropped: duplicate 10, malformed 2); try X; "
        "nothing was written (pass --allow-empty to write an empty output)"
    )
    with pytest.raises(NothingKeptError, match="read no records"):
        check_kept("dedup", 0, 0, {}, False)
    check_kept("dedup", 12, 0, {"duplicate": 12}, True)  # allowed: only the warning
    assert capsys.readouterr().err == (
        "plamo-fast dedup: warning: dropped 12 of 12 records (100.0%): duplicate 12\n"
    )


def test_a_tenth_dropped_is_silent_more_is_one_warning(capsys):
    check_kept("pack", 10, 9, {"too_long": 1}, False)
    assert capsys.readouterr().err == ""
    check_kept("pack", 10, 8, {"too_long": 1, "malformed": 1}, False, unit="examples")
    assert capsys.readouterr().err == (
        "plamo-fast pack: warning: dropped 2 of 10 examples (20.0%): malformed 1, too_long 1\n"
    )


def unscored(index: int) -> dict:
    return {
        "prompt_index": index,
        "prompt_messages": [{"role": "user", "content": f"q{index}"}],
        "candidates": [{"text": "a"}, {"text": "b"}],
    }


def test_pairs_on_candidates_without_scores_fails_and_writes_nothing(tmp_path: Path, capsys):
    data = write_jsonl(tmp_path / "c.jsonl", [unscored(0), unscored(1)])
    out = tmp_path / "pairs.jsonl"
    assert main(["pairs", str(data), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "pairs: read 2 prompts but kept none (dropped: fewer_than_2_scored 2)" in err
    assert "run `plamo-fast score` on them first" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]
    report = make_pairs(data, out, allow_empty=True)
    assert report["pairs_out"] == 0 and out.read_text() == ""


def test_spin_pairs_without_a_matching_sample_fails(tmp_path: Path):
    sft = write_jsonl(
        tmp_path / "sft.jsonl",
        [{"instruction": "q9", "output": "r9"}],
    )
    samples = write_jsonl(tmp_path / "c.jsonl", [unscored(0)])
    with pytest.raises(NothingKeptError, match="no_sample_for_prompt 1"):
        spin_pairs(sft, samples, tmp_path / "spin.jsonl")
    assert not (tmp_path / "spin.jsonl").exists()
    # An Alpaca record's prompt is its user turn, so a sample for it is found.
    sample = {**unscored(0), "prompt_messages": [{"role": "user", "content": "q9"}]}
    samples = write_jsonl(tmp_path / "c2.jsonl", [sample])
    report = spin_pairs(sft, samples, tmp_path / "spin.jsonl")
    assert report["pairs_out"] == 1
    (pair,) = [json.loads(x) for x in (tmp_path / "spin.jsonl").read_text().splitlines()]
    assert pair["chosen"] == [{"role": "assistant", "content": "r9"}]
