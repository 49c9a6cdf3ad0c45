"""DPO on CPU with a tiny model: log 2 when policy = reference, rewards logged, the policy
learns the preference, live vs precomputed reference agree, IPO and the SFT term run, the
output loads in transformers."""

from __future__ import annotations

import json
import math

import pytest
from train_fixtures import DPO_RECORDS, packed, tiny_model, write_config

from plamo_fast.cli import main


def dpo_config(tmp_path, data, model, **stage):
    return {
        "kind": "dpo",
        "plot": True,
        "stages": [
            {
                "name": "dpo1",
                "model": str(model),
                "output": str(tmp_path / "out"),
                "data": {"packed": [str(data)]},
                "optim": {"lr": 5e-3, "schedule": "constant"},
                "micro_batch_rows": 1,
                "grad_accum": 7,
                "max_steps": 4,
                **stage,
            }
        ],
    }


def metrics(folder):
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def setup(tmp_path):
    model = tiny_model(tmp_path / "model")
    return model, packed(tmp_path / "packed", model, DPO_RECORDS, "dpo")


def test_dpo_from_the_cli(tmp_path, setup):
    from transformers import AutoModelForCausalLM

    model, data = setup
    path = write_config(tmp_path / "c.yaml", dpo_config(tmp_path, data, model))
    assert main(["dpo", str(path), "-q"]) == 0
    out = tmp_path / "out"
    AutoModelForCausalLM.from_pretrained(out)
    m = metrics(out)
    # First step: policy = reference, so every reward is 0 and the loss is log 2.
    assert m[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert m[0]["rewards/chosen"] == 0 and m[0]["rewards/rejected"] == 0
    assert m[0]["pairs"] == 8
    assert m[-1]["loss"] < m[0]["loss"] and m[-1]["rewards/margin"] > 0
    assert m[-1]["rewards/accuracy"] > 0.5
    assert (out / "training_curves.png").stat().st_size > 1000
    assert (tmp_path / "out.run" / "reference_logps.npz").exists()


def test_live_reference_equals_precomputed(tmp_path, setup):
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model, data = setup
    runs = {}
    for reference in ("precomputed", "live"):
        config = dpo_config(tmp_path, data, model, reference=reference,
                            output=str(tmp_path / reference))  # fmt: skip
        path = write_config(tmp_path / f"{reference}.yaml", config)
        train(load_config(path, kind="dpo"), "dpo", progress=False)
        runs[reference] = metrics(tmp_path / reference)
    for a, b in zip(runs["precomputed"], runs["live"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["rewards/margin"] == pytest.approx(b["rewards/margin"], rel=1e-4, abs=1e-7)
    # Two DPO candidates merge with SLERP, as the recipe does before evaluation.
    merged = tmp_path / "merged"
    args = [str(tmp_path / "precomputed"), str(tmp_path / "live"), "--t", "0.5", "-o", str(merged)]
    assert main(["merge", *args]) == 0
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(merged)


@pytest.mark.parametrize("stage", [{"loss": "ipo"}, {"sft_weight": 1.0}])
def test_ipo_and_sft_term(tmp_path, setup, stage):
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model, data = setup
    path = write_config(tmp_path / "c.yaml", dpo_config(tmp_path, data, model, **stage))
    train(load_config(path, kind="dpo"), "dpo", progress=False)
    m = metrics(tmp_path / "out")
    if "loss" in stage:  # IPO at h = 0: (1 / (2 beta))^2
        assert m[0]["loss"] == pytest.approx((1 / 0.2) ** 2, rel=1e-6)
    else:
        assert m[0]["sft_nll"] > 0
        assert m[0]["loss"] == pytest.approx(math.log(2) + m[0]["sft_nll"], rel=1e-6)
    assert all(math.isfinite(r["loss"]) for r in m)


def test_dpo_resume_reuses_the_stored_reference(tmp_path, setup):
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model, data = setup
    config = dpo_config(tmp_path, data, model, save_every=2, max_steps=4)
    path = write_config(tmp_path / "c.yaml", config)
    train(load_config(path, kind="dpo"), "dpo", progress=False, stop_after=3)
    train(load_config(path, kind="dpo"), "dpo", progress=False)
    resumed = metrics(tmp_path / "out")
    config["stages"][0]["output"] = str(tmp_path / "straight")
    path = write_config(tmp_path / "s.yaml", config)
    train(load_config(path, kind="dpo"), "dpo", progress=False)
    for a, b in zip(metrics(tmp_path / "straight"), resumed, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_sft_data_is_refused_for_dpo(tmp_path, capsys):
    from train_fixtures import SFT_RECORDS

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    path = write_config(tmp_path / "c.yaml", dpo_config(tmp_path, data, model))
    assert main(["dpo", str(path), "-q"]) == 1
    assert "DPO needs rows packed with --kind dpo" in capsys.readouterr().err


def test_dpo_on_two_processes_equals_one(tmp_path, setup):
    """Two CPU processes (torchrun, gloo), each scoring half the reference rows and half the
    micro-batches: the same losses, rewards and gradient norms as one process."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not found next to this python")
    model, data = setup
    logged = {}
    for name, accum in (("one", 6), ("two", 3)):
        config = dpo_config(tmp_path, data, model, grad_accum=accum, max_steps=2,
                            output=str(tmp_path / name))  # fmt: skip
        config["plot"] = False
        path = write_config(tmp_path / f"{name}.yaml", config)
        launcher = [torchrun, "--nproc_per_node", "2"] if name == "two" else [sys.executable]
        env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
        subprocess.run([*launcher, "-m", "plamo_fast.cli", "dpo", "-q", str(path)], env=env,
                       check=True, capture_output=True)  # fmt: skip
        logged[name] = metrics(tmp_path / name)
    for a, b in zip(logged["one"], logged["two"], strict=True):
        for key in ("loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/margin"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
        assert a["pairs"] == b["pairs"]


def test_dropout_is_disabled_in_policy_and_reference(tmp_path):
    """A model whose config asks for dropout (attention dropout, which transformers applies in
    training mode): by default DPO trains without it, so at the first step policy = reference
    exactly (loss log 2) and the precomputed and live references agree; disable_dropout: false
    keeps it, and the policy's first forward differs from the reference's."""
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model = tiny_model(tmp_path / "model", attention_dropout=0.5)
    data = packed(tmp_path / "packed", model, DPO_RECORDS, "dpo")
    runs = {}
    for name, extra in (
        ("precomputed", {}),
        ("live", {"reference": "live"}),
        ("kept", {"disable_dropout": False}),
    ):
        config = dpo_config(tmp_path, data, model, output=str(tmp_path / name), max_steps=2,
                            **extra)  # fmt: skip
        config["plot"] = False
        train(load_config(write_config(tmp_path / f"{name}.yaml", config), kind="dpo"), "dpo",
              progress=False)  # fmt: skip
        runs[name] = m = metrics(tmp_path / name)
        if name != "kept":
            assert m[0]["loss"] == pytest.approx(math.log(2), abs=1e-6), name
            assert m[0]["rewards/margin"] == pytest.approx(0, abs=1e-6), name
    for a, b in zip(runs["precomputed"], runs["live"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["rewards/margin"] == pytest.approx(b["rewards/margin"], rel=1e-4, abs=1e-7)
    assert abs(runs["kept"][0]["rewards/chosen"]) > 1e-3  # dropout on: policy != reference
