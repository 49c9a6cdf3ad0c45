"""``plamo-fast eval jaster`` end to end with a tiny model on the hf backend: prompts, scores,
results files, the answer cache (a rerun generates nothing; a changed model regenerates; a
killed run resumes), and bad input refused before any model is loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

from train_fixtures import tiny_model  # noqa: E402  (skips without torch/transformers)

from plamo_fast.cli import main  # noqa: E402
from plamo_fast.errors import InvalidFileError, UsageError  # noqa: E402
from plamo_fast.eval import jaster as jaster_module  # noqa: E402
from plamo_fast.eval.jaster import run_jaster  # noqa: E402
from plamo_fast.eval.jaster_metrics import postprocess  # noqa: E402
from plamo_fast.eval.jaster_prompts import build_prompt  # noqa: E402

SHOTS = [{"input": f"前提：文{k}\n仮説：文{k + 1}", "output": "neutral"} for k in range(4)]
NLI = {
    "instruction": "前提と仮説の関係を答えてください。",
    "output_length": 3,
    "metrics": ["exact_match"],
    "few_shots": SHOTS,
    "samples": [
        {"input": "前提：犬が走る\n仮説：動物が走る", "output": "entailment"},
        {"input": "前提：猫が寝る\n仮説：猫が走る", "output": "contradiction"},
        {"input": "unused: beyond --limit", "output": "neutral"},
    ],
}
QA = {
    "instruction": "質問に答えてください。",
    "output_length": 4,
    "metrics": ["char_f1"],
    "few_shots": [{"input": f"質問：{k}は？", "output": f"答え{k}"} for k in range(4)],
    "samples": [
        {"input": "質問：日本の首都は？", "output": "東京"},
        {"input": "質問：富士山は？", "output": "山"},
    ],
}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "jnli.json").write_text(json.dumps(NLI, ensure_ascii=False), encoding="utf-8")
    (folder / "niilc.json").write_text(json.dumps(QA, ensure_ascii=False), encoding="utf-8")
    return folder


def _run(data: Path, model: Path, out: Path, **kwargs) -> dict:
    options = {"shots": [0, 4], "limit": 2, "backend": "hf", "progress": False}
    return run_jaster(data, str(model), out, **{**options, **kwargs})


def test_end_to_end_then_cached_rerun(data: Path, model: Path, tmp_path: Path):
    first = _run(data, model, tmp_path / "a", cache_dir=tmp_path / "cache")
    assert first["answers"] == 8 and first["generated"] == 8 and first["from_cache"] == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["benchmark"] == "jaster" and results["primary"] == "0-shot"
    assert set(results["categories"]) == {"NLI", "QA"}
    assert [r["shots"] for r in results["runs"]] == [0, 4]
    for run in results["runs"]:
        assert run["average"] == pytest.approx(sum(run["categories"].values()) / 2)
        # llm-jp-eval's AVG divides by all 11 of its categories (missing ones count 0).
        assert run["average_llm_jp_eval"] == pytest.approx(sum(run["categories"].values()) / 11)
        assert run["items"] == {"jnli": 2, "niilc": 2}
    assert results["datasets"]["jnli"]["sha256"] and results["model_fingerprint"]["kind"] == "files"
    records = [
        json.loads(x) for x in (tmp_path / "a" / "predictions.jsonl").read_text().splitlines()
    ]
    assert len(records) == 8
    four_shot = next(r for r in records if r["shots"] == 4 and r["dataset"] == "jnli")
    assert four_shot["prompt"] == build_prompt(
        NLI["instruction"], SHOTS, NLI["samples"][0]["input"]
    )
    for r in records:
        assert r["prediction"] == postprocess(r["generated"])
    nli_0 = [r for r in records if r["shots"] == 0 and r["dataset"] == "jnli"]
    expected = sum(r["prediction"] == r["gold"] for r in nli_0) / 2
    assert results["runs"][0]["scores"]["jnli_exact_match"] == expected
    assert "| 0-shot |" in (tmp_path / "a" / "results.md").read_text()
    if results["chart"] == "chart.png":
        assert (tmp_path / "a" / "chart.png").read_bytes().startswith(b"\x89PNG")

    # Same model and settings: nothing is generated, the numbers are the same.
    second = _run(data, model, tmp_path / "b", cache_dir=tmp_path / "cache")
    assert second["generated"] == 0 and second["from_cache"] == 8
    again = json.loads((tmp_path / "b" / "results.json").read_text())
    assert again["runs"] == results["runs"]

    # Another model under the same path (retrained in place): every answer is regenerated.
    shutil.rmtree(model.parent / "retrained", ignore_errors=True)
    retrained = tiny_model(model.parent / "retrained", seed=1)
    copy = model.parent / "copy"
    shutil.copytree(model, copy, dirs_exist_ok=True)
    shutil.copy(retrained / "model.safetensors", copy / "model.safetensors")
    third = _run(data, copy, tmp_path / "c", cache_dir=tmp_path / "cache")
    assert third["generated"] == 8


def test_killed_run_resumes_and_default_cache(data: Path, model: Path, tmp_path: Path):
    out = tmp_path / "run"
    partial = _run(data, model, out, stop_after=3)
    assert partial == {"finished": False, "generated": 3, "answers": 8}
    assert not out.exists() and (tmp_path / "run.cache" / "answers.jsonl").exists()
    # A torn last line (a kill in the middle of a write) is cut off.
    with open(tmp_path / "run.cache" / "answers.jsonl", "a") as f:
        f.write('{"key": "abc", "te')
    done = _run(data, model, out)
    assert done["generated"] == 5 and done["from_cache"] == 3
    # --overwrite replaces our own output; the cache answers everything.
    rerun = _run(data, model, out, overwrite=True)
    assert rerun["generated"] == 0


def test_chat_layout_through_the_template(data: Path, model: Path, tmp_path: Path):
    result = _run(data, model, tmp_path / "chat", shots=[1], chat=True)
    assert result["generated"] == 4
    results = json.loads((tmp_path / "chat" / "results.json").read_text())
    assert results["settings"]["chat"] is True
    assert results["settings"]["prompt_layout"].startswith("chat:")
    record = json.loads((tmp_path / "chat" / "predictions.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "user"]


def test_cli(data: Path, model: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli"
    argv = ["eval", "jaster", "--data", str(data), "--model", str(model), "-o", str(out)]
    assert main([*argv, "--shots", "0", "--limit", "1", "--backend", "hf", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "results.json").read_text())["settings"]["limit"] == 1
    # An existing output is refused without --overwrite.
    assert main([*argv, "--shots", "0", "--limit", "1", "--backend", "hf", "-q"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_bad_input_is_refused_before_loading_a_model(data: Path, tmp_path: Path, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(jaster_module, "_generate_missing", no_model)
    missing = tmp_path / "nomodel"
    bad = dict(NLI, metrics=["bleu_ja"])
    (data / "jnli.json").write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InvalidFileError, match=r"jnli.json: metric 'bleu_ja' is not supported"):
        _run(data, missing, tmp_path / "o")
    few = dict(NLI, few_shots=SHOTS[:2])
    (data / "jnli.json").write_text(json.dumps(few, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(UsageError, match=r"jnli.json: 4-shot needs 4 few-shot examples"):
        _run(data, missing, tmp_path / "o")
    (data / "jnli.json").write_text('{"instruction": "x",\n "samples": [}', encoding="utf-8")
    with pytest.raises(InvalidFileError, match=r"jnli.json:2: malformed JSON"):
        _run(data, missing, tmp_path / "o")
    (data / "jnli.json").write_text(json.dumps(NLI, ensure_ascii=False), encoding="utf-8")
    model = tmp_path / "model"  # looks like a model folder; never loaded
    model.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (model / name).write_text("{}")
    with pytest.raises(UsageError, match="--cache"):
        _run(data, model, tmp_path / "o", cache_dir=data)
