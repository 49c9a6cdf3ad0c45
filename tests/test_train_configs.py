"""The shipped configs parse and validate (the 100B ones cannot run here), and the accelerate
configs are well-formed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plamo_fast.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(
    "name, kind, stages",
    [
        ("tiny_cpu_sft.yaml", "sft", 2),
        ("tiny_cpu_dpo.yaml", "dpo", 1),
        ("plamo_100b_sft.yaml", "sft", 2),
        ("plamo_100b_dpo.yaml", "dpo", 2),
    ],
)
def test_shipped_configs_validate(name, kind, stages):
    config = load_config(CONFIGS / name, kind=kind)
    assert len(config.stages) == stages
    if "100b" in name:
        text = (CONFIGS / name).read_text()
        assert "NOT RUNNABLE ON THESE MACHINES" in text
        assert all(s.gradient_checkpointing for s in config.stages)
        assert config.attn_implementation == "flash_attention_2"


def test_a_stage_output_inside_another_is_refused(tmp_path):
    """The outer stage's output replaces its folder when it finishes, with the inner one."""
    from plamo_fast.train.config import ConfigError

    path = tmp_path / "c.yaml"
    stage = {"data": {"packed": ["p"]}}
    path.write_text(yaml.safe_dump({"kind": "sft", "stages": [
        {**stage, "name": "a", "model": "m", "output": "runs/a"},
        {**stage, "name": "b", "output": "runs/a/b"},
    ]}))  # fmt: skip
    with pytest.raises(ConfigError, match=r"stages\.1\.output: inside stages\.0\.output"):
        load_config(path, kind="sft")


def test_a_config_of_the_other_kind_is_refused():
    from plamo_fast.train.config import ConfigError

    with pytest.raises(ConfigError, match="is a 'sft' config"):
        load_config(CONFIGS / "tiny_cpu_sft.yaml", kind="dpo")


@pytest.mark.parametrize(
    "name", ["single_gpu.yaml", "8gpu_zero3.yaml", "8gpu_fsdp.yaml", "multinode_zero3.yaml"]
)
def test_accelerate_configs(name):
    config = yaml.safe_load((CONFIGS / "accelerate" / name).read_text())
    assert config["num_processes"] >= 1 and config["num_machines"] >= 1
    if "zero3" in name:
        assert config["distributed_type"] == "DEEPSPEED"
        assert config["deepspeed_config"]["zero_stage"] == 3
        assert config["num_processes"] % config["num_machines"] == 0
    if "fsdp" in name:
        assert config["distributed_type"] == "FSDP"
        assert config["fsdp_config"]["fsdp_version"] == 2


def test_training_without_the_train_extra_says_what_to_install(monkeypatch, capsys, tmp_path):
    import importlib.util

    from plamo_fast.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    assert main(["sft", str(tmp_path / "any.yaml")]) == 1
    assert "needs torch: pip install 'plamo-fast[train]'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_the_example_config_lists_every_key_and_loads_back_to_the_defaults(kind, capsys, tmp_path):
    """Printed from the dataclasses (no file read, so it works from an installed wheel): every
    field with its meaning, and the YAML loads back into the defaults plus the example paths."""
    import dataclasses

    from plamo_fast.cli import main
    from plamo_fast.train.config import (
        EXAMPLE_PATHS,
        DataConfig,
        OptimConfig,
        RunConfig,
        StageConfig,
    )

    assert main([kind, "--example-config"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    for cls in (RunConfig, StageConfig, DataConfig, OptimConfig):
        for f in dataclasses.fields(cls):
            at = [i for i, x in enumerate(lines) if x.strip().startswith(f"{f.name}:")]
            assert len(at) == 1, f"{cls.__name__}.{f.name} printed {len(at)} times"
            assert lines[at[0] - 1].strip().startswith("#"), f"{f.name} has no comment"
    config_path = tmp_path / "example.yaml"
    config_path.write_text(text)
    loaded = load_config(config_path, kind=kind)
    paths = EXAMPLE_PATHS[kind]
    stage = loaded.stages[0]
    assert (stage.model, stage.output, stage.data.packed) == (
        paths["model"],
        paths["output"],
        paths["packed"],
    )
    stage.model, stage.output, stage.data.packed = None, "", []
    assert loaded == RunConfig(kind=kind, stages=[StageConfig()])


def test_the_example_config_needs_neither_torch_nor_the_repository(tmp_path):
    """Base install (no [train] extra), run away from the checkout: nothing but the package."""
    import subprocess
    import sys

    code = (
        "import sys; from plamo_fast.cli import main; rc = main(['dpo', '--example-config']); "
        "assert rc == 0 and 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "reference_model: null" in proc.stdout


@pytest.mark.parametrize(
    "kind, missing",
    [("sft", "model"), ("dpo", "reference_model"), ("sft", "tokenizer"), ("dpo", "model")],
)
def test_a_missing_model_or_tokenizer_fails_at_once(tmp_path, capsys, kind, missing):
    """Before any output, packing or accelerate work: "not found" within 2 s, nothing left."""
    import time

    pytest.importorskip("transformers")
    from plamo_fast.cli import main

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "tokenizer.json").write_text("{}")
    absent = str(tmp_path / "absent")
    stage = {"name": "s", "model": str(model), "output": str(tmp_path / "out")}
    if missing == "tokenizer":
        raw = tmp_path / "raw.jsonl"
        raw.write_text('{"text": "x"}\n')
        stage["data"] = {"raw": [str(raw)], "tokenizer": absent}
    else:
        stage["data"] = {"packed": [str(tmp_path / "packed")]}
        stage[missing] = absent
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"kind": kind, "stages": [stage]}))
    before = sorted(tmp_path.iterdir())
    started = time.perf_counter()
    assert main([kind, str(config)]) == 1
    assert time.perf_counter() - started < 2
    what = "tokenizer" if missing == "tokenizer" else "model"
    assert f"{what} {absent}: not found" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == before  # no OUT, OUT.run or partial


def header_commands(path: Path) -> list[list[str]]:
    """The commands in a config's header comment (``#   plamo-fast ...``, ``\\`` continued),
    as argument lists without their trailing comments."""
    commands: list[str] = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("# ").split("  #")[0].strip()
        if commands and commands[-1].endswith("\\"):
            commands[-1] = commands[-1][:-1].strip() + " " + text
        elif text.startswith(("plamo-fast ", "hf ")):
            commands.append(text)
    return [c.split() for c in commands]


def test_the_tiny_configs_name_only_paths_their_commands_make():
    """A new user can run configs/tiny_cpu_{sft,dpo}.yaml as shipped: each model, tokenizer and
    data path is made by a command in the headers (or is an output of an earlier stage), and
    the README gives those commands."""
    names = ("tiny_cpu_sft.yaml", "tiny_cpu_dpo.yaml")
    commands = [c for name in names for c in header_commands(CONFIGS / name)]
    made: set[str] = set()
    downloaded: list[str] = []
    used: list[str] = []
    for args in commands:
        for flag, value in zip(args, args[1:], strict=False):
            if flag in ("-o", "--output"):
                made.add(value)
            elif flag == "--local-dir":
                downloaded.append(value)
                made.add(value)
            elif flag in ("--tokenizer", "--model", "--spin"):
                used.append(value)
        if args[:2] in (["plamo-fast", "pack"], ["plamo-fast", "sample"], ["plamo-fast", "pairs"]):
            used.append(args[2].split(":")[0])
        if args[:2] in (["plamo-fast", "sft"], ["plamo-fast", "dpo"]):
            config = load_config(CONFIGS / Path(args[2]).name, kind=args[1])
            for stage in config.stages:
                used.extend([stage.model] if stage.model else [])
                used.extend(stage.data.packed)
            made.update(s.output for s in config.stages)

    def is_made(path: str) -> bool:
        return path in made or any(path.startswith(d + "/") for d in downloaded)

    assert [p for p in used if not is_made(p)] == []
    assert len(used) >= 10
    readme = " ".join((CONFIGS.parent / "README.md").read_text().replace("\\\n", " ").split())
    missing = [" ".join(c) for c in commands if " ".join(c) not in readme]
    assert missing == [], "commands of the tiny configs' headers not in the README"


def test_a_model_made_by_an_earlier_stage_is_not_looked_up(tmp_path, monkeypatch):
    """Stage 2 may name stage 1's output (as model or reference model) before it exists."""
    from plamo_fast.train.api import resolve_inputs

    model = tmp_path / "base"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "tokenizer.json").write_text("{}")
    stage = {"data": {"packed": ["p"]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"kind": "dpo", "stages": [
        {**stage, "name": "a", "model": f"{model}/", "output": str(tmp_path / "a")},
        {**stage, "name": "b", "output": str(tmp_path / "b")},
        {**stage, "name": "c", "model": str(tmp_path / "a"), "reference_model": "../b",
         "output": str(tmp_path / "c")},
    ]}))  # fmt: skip
    config = load_config(path, kind="dpo")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # ../b is stage b's output
    resolve_inputs(config)
    first, made = str(model), str(tmp_path / "a")
    assert [s.model for s in config.stages] == [first, made, made]
    assert config.stages[2].reference_model == "../b"
    config.stages[2].reference_model = "../absent"
    with pytest.raises(FileNotFoundError, match=r"model \.\./absent: not found"):
        resolve_inputs(config)


def test_the_pack_request_follows_a_saved_dataset_folder(tmp_path):
    """data.raw may be a saved 🤗 dataset folder: a change to its files must change what the
    stage's reused pack is checked against (a folder used to count as no content at all)."""
    from plamo_fast.train.api import _pack_request
    from plamo_fast.train.config import DataConfig, StageConfig

    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "state.json").write_text("{}")
    (folder / "data-00000-of-00001.arrow").write_bytes(b"rows")
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "tokenizer.json").write_text("{}")
    stage = StageConfig(data=DataConfig(raw=[str(folder)], tokenizer=str(tokenizer)))
    before = _pack_request(stage, "sft")
    assert before["raw"][0][1] is not None
    (folder / "data-00000-of-00001.arrow").write_bytes(b"other rows")
    assert _pack_request(stage, "sft")["raw"] != before["raw"]
    assert _pack_request(stage, "sft")["tokenizer"] == before["tokenizer"]
