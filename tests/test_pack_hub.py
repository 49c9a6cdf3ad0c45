"""A 🤗 hub dataset's name read from the local cache in offline mode (``HF_HUB_OFFLINE=1``) is
accepted wherever pack takes a file: ``plamo-fast pack NAME``, ``NAME:2x`` mixtures,
``plamo_fast.pack(NAME)``, and a training stage's ``data.raw``, which packs it again when the
cached dataset changes. The cache entries are built here (no hub, no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from chat_fixtures import CONVERSATIONS, TEMPLATES, make_tokenizer, write_jsonl
from test_datasets_io import hub_cache_entry, no_network, quiet_datasets  # noqa: F401 (fixtures)

import plamo_fast
from plamo_fast.cli import main

datasets = pytest.importorskip("datasets")
pq = pytest.importorskip("pyarrow.parquet")

CHATS = [{"messages": c, "id": i} for i, c in enumerate(CONVERSATIONS * 3)]
TOKENIZED = [
    {"input_ids": [i % 50 + 1, *range(2, 12 + i % 7)], "labels": [-100, *range(2, 12 + i % 7)]}
    for i in range(30)
]


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch, no_network):  # noqa: F811 (the imported fixture)
    """An offline hub cache in ``tmp_path / "hf-cache"``, the working directory ``tmp_path``
    (where the names are no paths)."""
    cache = tmp_path / "hf-cache"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return cache


def pack_cli(out: Path, *args) -> tuple:
    assert main(["pack", *map(str, args), "-o", str(out), "-q"]) == 0
    report = json.loads((out / "pack_report.json").read_text())
    return pq.read_table(out / "data.parquet"), report


def test_pack_reads_a_hub_dataset_name_offline(tmp_path: Path, hub_cache):
    hub_cache_entry(hub_cache, "local/chat", CHATS)
    tokenizer = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    lines = write_jsonl(tmp_path / "chat.jsonl", CHATS)
    expected, _ = pack_cli(tmp_path / "lines", lines, "--tokenizer", tokenizer, "-L", "96")
    rows, report = pack_cli(tmp_path / "hub", "local/chat", "--tokenizer", tokenizer, "-L", "96")
    assert rows.equals(expected) and report["inputs"] == ["local/chat"]
    _, mixed = pack_cli(tmp_path / "mix", "local/chat:train:2x", "--tokenizer", tokenizer,
                        "-L", "96")  # fmt: skip
    assert mixed["examples_packed"] == 2 * len(CHATS)
    got = plamo_fast.pack("local/chat", tokenizer=tokenizer, max_length=96)
    assert got.equals(expected)
    # Pre-tokenized rows need no tokenizer.
    shutil.rmtree(hub_cache)  # (the fixture builds one dataset per cache)
    hub_cache_entry(hub_cache, "local/tokens", TOKENIZED)
    lines = write_jsonl(tmp_path / "tokens.jsonl", TOKENIZED)
    expected, _ = pack_cli(tmp_path / "tok_lines", lines, "-L", "64")
    rows, report = pack_cli(tmp_path / "tok_hub", "local/tokens", "-L", "64")
    assert rows.equals(expected) and report["examples_packed"] == len(TOKENIZED)


def raw_stage(tmp_path: Path, raw: list[str], tokenizer: Path):
    from train_fixtures import write_config

    from plamo_fast.train.config import load_config

    config = {
        "kind": "sft",
        "plot": False,
        "stages": [
            {
                "name": "s1",
                "model": str(tokenizer),
                "output": str(tmp_path / "out1"),
                "data": {"raw": raw, "tokenizer": str(tokenizer), "max_length": 96},
                "max_steps": 1,
            }
        ],
    }
    return load_config(write_config(tmp_path / "c.yaml", config), kind="sft").stages[0]


def test_data_raw_packs_a_hub_dataset_again_when_the_cache_changes(tmp_path, hub_cache,
                                                                   monkeypatch):  # fmt: skip
    """The stage's pack (``data.raw`` by name) is reused while the cached dataset is the same,
    and made again from the new rows once the cache holds others."""
    pytest.importorskip("yaml")
    import plamo_fast.data.pack as pack_module
    from plamo_fast.data.curation_io import _hub_dataset
    from plamo_fast.train.api import _pack_raw

    hub_cache_entry(hub_cache, "local/chat", CHATS)
    tokenizer = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    lines = write_jsonl(tmp_path / "chat.jsonl", CHATS)
    expected, _ = pack_cli(tmp_path / "lines", lines, "--tokenizer", tokenizer, "-L", "96")
    stage = raw_stage(tmp_path, ["local/chat"], tokenizer)
    calls = []
    real = pack_module.pack
    monkeypatch.setattr(pack_module, "pack", lambda *a, **k: calls.append(a) or real(*a, **k))
    folder = tmp_path / "out1.run" / "packed"
    _pack_raw(stage, "sft", folder)
    _pack_raw(stage, "sft", folder)
    assert len(calls) == 1
    assert pq.read_table(folder / "data.parquet").equals(expected)
    shutil.rmtree(hub_cache)  # the cached dataset is replaced by another version
    hub_cache_entry(hub_cache, "local/chat", CHATS[:4])
    _hub_dataset.cache_clear()  # as in the next run's process
    _pack_raw(stage, "sft", folder)
    assert len(calls) == 2
    assert json.loads((folder / "pack_report.json").read_text())["examples_read"] == 4


@pytest.mark.torch
def test_a_stage_trains_on_a_hub_dataset_name(tmp_path: Path, hub_cache):
    from train_fixtures import SFT_RECORDS, tiny_model

    from plamo_fast.train.api import train

    hub_cache_entry(hub_cache, "local/chat", SFT_RECORDS)
    model = tiny_model(tmp_path / "model")
    stage = raw_stage(tmp_path, ["local/chat"], model)
    config_path = tmp_path / "c.yaml"
    assert train(config_path, "sft", progress=False) == [Path(stage.output)]
    lines = write_jsonl(tmp_path / "raw.jsonl", SFT_RECORDS)
    expected, _ = pack_cli(tmp_path / "lines", lines, "--tokenizer", model, "-L", "96")
    assert pq.read_table(tmp_path / "out1.run" / "packed" / "data.parquet").equals(expected)
    assert (tmp_path / "out1" / "model.safetensors").exists()


def test_a_recipe_step_on_a_hub_dataset_reruns_when_the_cache_changes(
    tmp_path, hub_cache, monkeypatch
):
    """A recipe input given as a hub dataset's name is digested by its cached files (through
    the run's digest memo, as every input: hashed once per version): the step is skipped while
    they are the same and reruns once the cache holds other rows."""
    import yaml

    from plamo_fast import digests
    from plamo_fast.data.curation_io import _hub_dataset, hub_dataset
    from plamo_fast.recipe.runner import DIGEST_MEMO, RUN, SKIP, plan, run
    from plamo_fast.recipe.spec import load_recipe

    hub_cache_entry(hub_cache, "local/chat", CHATS)
    tokenizer = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    recipe_file = tmp_path / "r.yaml"
    step = {
        "name": "packed",
        "kind": "pack",
        "params": {"inputs": ["local/chat"], "tokenizer": str(tokenizer), "max_length": 96},
    }
    recipe_file.write_text(yaml.safe_dump({"name": "hub", "steps": [step]}))  # fmt: skip
    recipe = load_recipe(recipe_file, tmp_path / "run")
    monkeypatch.setattr(digests, "MEMO_MIN", 0)  # the cached files are small
    run(recipe, plan(recipe), progress=False, echo=lambda s: None)
    (decision,) = plan(recipe)
    assert decision.action == SKIP and decision.inputs["local/chat"] not in ("missing", None)
    memo = json.loads((tmp_path / "run" / DIGEST_MEMO).read_text())
    cached = [
        str(Path(f["filename"]).resolve()) for f in hub_dataset(Path("local/chat")).cache_files
    ]
    assert cached and all(name in memo for name in cached)
    shutil.rmtree(hub_cache)
    hub_cache_entry(hub_cache, "local/chat", CHATS[:4])
    _hub_dataset.cache_clear()
    (decision,) = plan(load_recipe(recipe_file, tmp_path / "run"))
    assert decision.action == RUN and any("local/chat" in r for r in decision.reasons)
