"""The data-making step kinds of a recipe, chained: ``translate`` English seed tasks into
Japanese, ``synth_instruct`` from those seeds, ``dedup`` of what it made, each against a
loopback OpenAI-compatible server with scripted replies (the commands' own tests script them).
The steps hand their parameters to the commands (the same records as the command run
directly), write their side files in the step folder, and a second run finds them done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from backend_fixtures import Server
from chat_fixtures import write_jsonl
from test_synth_instruct import ANSWERS, QUESTIONS, TITLES, scripted
from test_translate import server as translator  # noqa: F401 (a fixture)

from plamo_fast.cli import main
from plamo_fast.recipe.record import RECORD


@pytest.fixture
def writer():
    server = Server(scripted(TITLES, QUESTIONS, ANSWERS))
    yield server
    server.close()


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def recipe(tmp_path: Path, seeds_en: Path, translator_url: str, writer_url: str) -> Path:
    steps = [
        {"name": "seeds_ja", "kind": "translate",
         "params": {"input": str(seeds_en), "model": "mt", "to": "ja", "source_lang": "en",
                    "backend": "openai", "base_url": translator_url}},
        {"name": "instruct", "kind": "synth_instruct",
         "params": {"model": "local-13b", "n": 5, "seeds": "${steps.seeds_ja.output}",
                    "requests": 1, "backend": "openai", "base_url": writer_url,
                    "concurrency": 2}},
        {"name": "instruct_dedup", "kind": "dedup",
         "params": {"inputs": ["${steps.instruct.output}"]}},
    ]  # fmt: skip
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"name": "data", "steps": steps}, allow_unicode=True))
    return path


def test_translate_then_synth_instruct_then_dedup(tmp_path, translator, writer, capsys):  # noqa: F811
    tasks = [
        {"instruction": "Write a short thank-you note to a colleague.", "license": "cc-by"},
        {"instruction": "List three ways to save water at home.", "license": "cc-by"},
        {"instruction": "Explain what a prime number is to a child.", "license": "cc-by"},
    ]
    seeds_en = write_jsonl(tmp_path / "seeds_en.jsonl", tasks)
    path = recipe(tmp_path, seeds_en, translator.url, writer.url)
    run = tmp_path / "run"
    assert main(["recipe", "run", str(path), "-o", str(run), "-q"]) == 0

    translated = lines(run / "seeds_ja" / "data.jsonl")
    assert [t["license"] for t in translated] == ["cc-by"] * 3  # provenance kept
    assert all(t["translated_by"] == "mt" for t in translated)
    assert translated[0]["instruction"] != tasks[0]["instruction"]
    report = json.loads((run / "seeds_ja" / "data.report.json").read_text())
    assert report["kept"] == 3

    made = run / "instruct" / "data.jsonl"
    records = lines(made)
    assert len(records) == 5 and all(r["synth"] == "instruct" for r in records)
    assert (run / "instruct" / "data.rejected.jsonl").is_file()
    record = json.loads((run / "instruct" / RECORD).read_text())
    assert record["outputs"]["output"]["records"] == 5
    assert record["outputs"]["rejected"]["records"] > 0
    assert len(lines(run / "instruct_dedup" / "data.jsonl")) == 5

    # The step ran the command: the same records as `synth instruct` on the same seeds.
    direct = tmp_path / "direct.jsonl"
    args = ["synth", "instruct", "--model", "local-13b", "-n", "5", "-o", str(direct),
            "--seeds", str(run / "seeds_ja" / "data.jsonl"), "--backend", "openai",
            "--base-url", writer.url, "--requests", "1", "--concurrency", "2", "-q"]  # fmt: skip
    assert main(args) == 0
    assert lines(direct) == records

    capsys.readouterr()
    calls = len(writer.calls) + len(translator.calls)
    assert main(["recipe", "run", str(path), "-o", str(run), "-q"]) == 0
    assert "every selected step of data is done" in capsys.readouterr().err
    assert len(writer.calls) + len(translator.calls) == calls  # no model call


def test_data_steps_are_type_checked_before_anything_runs(tmp_path, capsys):
    steps = [
        {"name": "t", "kind": "translate", "params": {"model": "m", "to": "fr"}},
        {"name": "s", "kind": "synth_instruct", "params": {"model": "m", "lang": "de"}},
    ]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "steps": steps}))
    assert main(["recipe", "plan", str(path), "-o", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    for problem in ["t.params.input: needed", "t.params.to: 'fr' is not one of ja, en",
                    "s.params.n: needed", "s.params.lang: 'de' is not one of ja, en"]:  # fmt: skip
        assert problem in err, err
    assert not (tmp_path / "run").exists()
