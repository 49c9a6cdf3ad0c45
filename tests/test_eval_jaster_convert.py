"""``plamo-fast eval jaster-convert``: llm-jp-eval's dataset files from the upstream files."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from plamo_fast.cli import main
from plamo_fast.errors import InvalidFileError, UsageError
from plamo_fast.eval.jaster_convert import convert
from plamo_fast.eval.jaster_data import read_datasets

SOURCES = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "jaster_sources"


def _lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def _llm_jp_eval_shuffle(samples: list) -> list:
    """What llm-jp-eval does: random.seed(42) then random.shuffle on the global generator."""
    state = random.getstate()
    try:
        random.seed(42)
        shuffled = list(samples)
        random.shuffle(shuffled)
    finally:
        random.setstate(state)
    return shuffled[: int(len(shuffled) * 0.9)]


def _nli(k: int) -> dict:
    return {"sentence_pair_id": str(k), "sentence1": f"前提{k}", "sentence2": f"仮説{k}",
            "label": ["entailment", "neutral", "contradiction"][k % 3]}  # fmt: skip


NIILC_TEST = """<?xml version='1.0' encoding="UTF-8"?>
<questions>
<question id="a"><text>日本の首都は？</text><answers><answer>東京</answer></answers></question>
<question id="b"><text>三大美林は？</text><answers>
<answer> 青森ヒバ</answer><answer>秋田スギ </answer><answer></answer></answers></question>
<question id="c"><text>答えのない質問</text><answers><answer>-</answer></answers></question>
</questions>
"""


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    _lines(src / "jnli" / "train-v1.1.json", [_nli(k) for k in range(10)])
    _lines(src / "jnli" / "valid-v1.1.json", [_nli(k) for k in range(100, 103)])
    _lines(
        src / "jsts" / "valid-v1.1.json",
        [{"sentence1": "a", "sentence2": "b", "label": 4.4}, {"sentence1": "c", "sentence2": "d",
         "label": 0.0}],
    )  # fmt: skip
    choices = {f"choice{i}": f"c{i}" for i in range(5)}
    _lines(src / "jcommonsenseqa" / "valid-v1.1.json", [{"question": "Q?", **choices, "label": 2}])
    answers = [{"text": "本文", "answer_start": 8}, {"text": "別", "answer_start": 0}]
    qas = [{"question": "問1", "id": "x", "answers": answers}]
    squad = {"data": [{"title": "T", "paragraphs": [{"context": "T [SEP] 本文", "qas": qas}]}]}
    (src / "jsquad").mkdir()
    (src / "jsquad" / "valid-v1.1.json").write_text(json.dumps(squad, ensure_ascii=False))
    (src / "jemhopqa").mkdir()
    (src / "jemhopqa" / "dev_ver1.1.json").write_text(
        json.dumps([{"qid": "1", "question": "早い？", "answer": "YES"}], ensure_ascii=False)
    )
    (src / "niilc").mkdir()
    (src / "niilc" / "NIILC-ECQA2015_test.xml").write_text(NIILC_TEST, "utf-8")
    (src / "niilc" / "NIILC-ECQA2015_dev.xml").write_text(NIILC_TEST, "utf-8")
    return src


def _read(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text(encoding="utf-8"))


def test_convert_inline_sources(sources: Path, tmp_path: Path):
    out = tmp_path / "jaster"
    summary = convert(sources, out, few_shots=4)
    jnli = _read(out, "jnli")
    assert jnli["metrics"] == ["exact_match"] and jnli["output_length"] == 3
    assert jnli["instruction"].startswith("前提と仮説の関係をentailment、contradiction、neutral")
    assert jnli["samples"][0] == {"input": "前提：前提100\n仮説：仮説100", "output": "neutral"}
    expected = _llm_jp_eval_shuffle(
        [{"input": f"前提：前提{k}\n仮説：仮説{k}", "output": _nli(k)["label"]} for k in range(10)]
    )[:4]
    assert jnli["few_shots"] == expected
    assert [s["output"] for s in _read(out, "jsts")["samples"]] == ["4.4", "0.0"]
    assert _read(out, "jsts")["samples"][0]["input"] == "文1：a\n文2：b"
    jcqa = _read(out, "jcommonsenseqa")["samples"][0]
    assert jcqa == {"input": "質問：Q?\n選択肢：0.c0,1.c1,2.c2,3.c3,4.c4", "output": "2"}
    assert _read(out, "jsquad")["samples"] == [
        {"input": "文章：T [SEP] 本文\n質問：問1", "output": "本文"}
    ]
    assert _read(out, "jemhopqa")["samples"] == [{"input": "質問：早い？", "output": "YES"}]
    niilc = _read(out, "niilc")
    # xmltodict's stripping, the comma join of non-empty answers, and "-" skipped.
    assert niilc["samples"] == [
        {"input": "質問：日本の首都は？", "output": "東京"},
        {"input": "質問：三大美林は？", "output": "青森ヒバ,秋田スギ"},
    ]
    assert niilc["metrics"] == ["char_f1"] and niilc["output_length"] == 180
    assert len(niilc["few_shots"]) == 1  # 90% of 2 training questions
    assert summary["datasets"]["jsts"]["few_shots"] == 0 and "note" in summary["datasets"]["jsts"]
    recorded = json.loads((out / "SOURCES.json").read_text())["datasets"]["jnli"]["train"]
    digest = hashlib.sha256((sources / "jnli" / "train-v1.1.json").read_bytes()).hexdigest()
    assert recorded["sha256"] == digest
    # The files are what eval jaster reads; SOURCES.json is not a dataset.
    names = [d.name for d in read_datasets(out, 0)]
    assert names == ["jcommonsenseqa", "jemhopqa", "jnli", "jsquad", "jsts", "niilc"]
    assert len(read_datasets(out, 4, ["jnli"])[0].few_shots) == 4
    with pytest.raises(UsageError, match=r"jsts.json: 4-shot needs 4 few-shot examples"):
        read_datasets(out, 4, ["jsts"])


def test_convert_bad_line_names_file_and_line(sources: Path, tmp_path: Path):
    path = sources / "jnli" / "valid-v1.1.json"
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(InvalidFileError, match=r"valid-v1.1.json:4: malformed JSON"):
        convert(sources, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_convert_cli_refuses_to_replace_its_input(sources: Path):
    assert main(["eval", "jaster-convert", str(sources), "-o", str(sources), "--overwrite"]) == 1
    assert (sources / "jnli" / "train-v1.1.json").exists()


def test_convert_shared_sources(tmp_path: Path):
    if not SOURCES.is_dir():
        pytest.skip("../shared/benchmarks/jaster_sources is absent")
    out = tmp_path / "jaster"
    assert main(["eval", "jaster-convert", str(SOURCES), "-o", str(out)]) == 0
    sizes = {d.name: len(d.samples) for d in read_datasets(out, 0)}
    # llm-jp-eval's test splits: JGLUE v1.1 valid files; NIILC test without its 2 "-" answers.
    assert sizes == {
        "jcommonsenseqa": 1119,
        "jemhopqa": 120,
        "jnli": 2434,
        "jsquad": 4442,
        "jsts": 1457,
        "niilc": 198,
    }
    niilc = _read(out, "niilc")
    assert niilc["samples"][0] == {
        "input": "質問：初めてノート型パソコンを作ったメーカーは？",
        "output": "東芝",
    }
    assert len(niilc["few_shots"]) == 20  # from the dev file, llm-jp-eval's NIILC train split
