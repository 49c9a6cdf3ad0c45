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
