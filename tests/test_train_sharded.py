"""Sharded training across two CPU processes (gloo) runs the same training code a multi-GPU
run does, on the shipped accelerate configs, and must equal one plain process.

- DeepSpeed ZeRO-3 (parameters, gradients and optimizer state sharded, zero3_init_flag on):
  SFT with gradient checkpointing and resume from a ZeRO-3 checkpoint, DPO with precomputed,
  separately loaded and live references, bf16, two stages, the NaN guards. Skipped where
  DeepSpeed or a C++ compiler (its CPU communication op) is missing.
- FSDP2: SFT with gradient checkpointing and resume from sharded checkpoints, DPO.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from train_fixtures import DPO_RECORDS, SFT_RECORDS, packed, tiny_model, torch, write_config

from plamo_fast.cli import main

HERE = Path(__file__).resolve().parent
BIN = os.path.dirname(sys.executable)

needs_deepspeed = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None or shutil.which("c++") is None,
    reason="needs deepspeed and a C++ compiler (DeepSpeed's CPU backend compiles an op)",
)
SHIPPED = HERE.parent / "configs" / "accelerate"


def two_process_config(shipped: str, mixed: str) -> str:
    """A shipped 8-GPU accelerate config, on two processes."""
    import yaml

    config = yaml.safe_load((SHIPPED / shipped).read_text())
    config.update(num_processes=2, mixed_precision=mixed)
    return yaml.safe_dump(config)


def zero3(tmp_path: Path, kind: str, config: Path, **kwargs):
    return launch(tmp_path, "8gpu_zero3.yaml", kind, config, **kwargs)


def fsdp(tmp_path: Path, kind: str, config: Path, **kwargs):
    return launch(tmp_path, "8gpu_fsdp.yaml", kind, config, **kwargs)


def launch(tmp_path, shipped, kind, config, expect_ok=True, mixed="no", env=(), timeout=600):
    accelerate = shutil.which("accelerate", path=BIN)
    if accelerate is None:
        pytest.skip("accelerate launcher not found next to this python")
    (tmp_path / "accelerate.yaml").write_text(two_process_config(shipped, mixed))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DS_ACCELERATOR": "cpu",
        "OMP_NUM_THREADS": "1",
        "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),  # ninja, for DeepSpeed's op
        **dict(env),
    }
    done = subprocess.run(
        [accelerate, "launch", "--config_file", str(tmp_path / "accelerate.yaml"),
         "--main_process_port", str(port), str(HERE / "accelerate_cpu_launch.py"),
         kind, "-q", str(config)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if expect_ok:
        assert done.returncode == 0, done.stderr[-4000:]
    return done


def metrics(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def assert_same_run(a: Path, b: Path, keys: tuple[str, ...]) -> None:
    for x, y in zip(metrics(a), metrics(b), strict=True):
        assert x["lr"] == pytest.approx(y["lr"])
        for key in keys:
            assert x[key] == pytest.approx(y[key], rel=1e-5, abs=1e-6), key
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-5, atol=1e-6, msg=name)


def stage(tmp_path, kind, data, model, output, **extra):
    return {
        "kind": kind,
        "plot": False,
        "stages": [
            {
                "name": "s1",
                "model": str(model),
                "output": str(tmp_path / output),
                "data": {"packed": [str(data)], "shuffle": False},
                "optim": {
                    "lr": 1e-3,
                    "schedule": "linear",
                    "warmup_steps": 1,
                    "min_lr_ratio": 0.5,
                },  # fmt: skip
                "micro_batch_rows": 1,
                "max_steps": 4,
                **extra,
            }
        ],
    }


def one_process(tmp_path: Path, kind: str, records: list, grad_accum: int) -> tuple[Path, Path]:
    """A tiny model, its packed data, and the reference run of one plain process in "one"."""
    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, records, kind)
    config = stage(tmp_path, kind, data, model, "one", grad_accum=grad_accum)
    assert main([kind, "-q", str(write_config(tmp_path / "one.yaml", config))]) == 0
    return model, data


@needs_deepspeed
def test_zero3_sft_with_checkpointing_and_resume_equals_one_process(tmp_path):
    model, data = one_process(tmp_path, "sft", SFT_RECORDS, grad_accum=8)
    config = stage(tmp_path, "sft", data, model, "z3", grad_accum=4, save_every=2,
                   gradient_checkpointing=True)  # fmt: skip
    path = write_config(tmp_path / "z3.yaml", config)
    zero3(tmp_path, "sft", path)
    assert_same_run(tmp_path / "one", tmp_path / "z3", ("loss", "grad_norm", "trained_tokens"))
    # A kill after the step-2 checkpoint: the run resumes from DeepSpeed's sharded state.
    straight = weights(tmp_path / "z3")
    shutil.rmtree(tmp_path / "z3")
    done = zero3(tmp_path, "sft", path)
    assert "resuming s1" in done.stdout + done.stderr
    assert_same_run(tmp_path / "one", tmp_path / "z3", ("loss", "grad_norm"))
    for name, value in weights(tmp_path / "z3").items():
        torch.testing.assert_close(value, straight[name], rtol=0, atol=0)
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tmp_path / "z3")


DPO_KEYS = ("loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/margin")


@needs_deepspeed
def test_zero3_dpo_equals_one_process_with_either_reference(tmp_path):
    model, data = one_process(tmp_path, "dpo", DPO_RECORDS, grad_accum=4)
    precomputed = stage(tmp_path, "dpo", data, model, "pre", grad_accum=2)
    zero3(tmp_path, "dpo", write_config(tmp_path / "pre.yaml", precomputed))
    assert_same_run(tmp_path / "one", tmp_path / "pre", DPO_KEYS)
    # A reference loaded on its own (ZeRO-3 partitions it at load), precomputed or run live;
    # its engine is freed when done (nothing is left when the CLI returns).
    for name, reference in (("separate", "precomputed"), ("live", "live")):
        config = stage(tmp_path, "dpo", data, model, name, grad_accum=2, reference=reference,
                       reference_model=str(model))  # fmt: skip
        live = tmp_path / f"{name}-bytes"
        zero3(tmp_path, "dpo", write_config(tmp_path / f"{name}.yaml", config),
              env={"PLAMO_FAST_TEST_LIVE_TENSORS": str(live)})  # fmt: skip
        assert_same_run(tmp_path / "one", tmp_path / name, DPO_KEYS)
        assert metrics(tmp_path / name)[0]["loss"] == pytest.approx(0.6931471805599453, rel=1e-6)
        for rank in (0, 1):
            assert int(Path(f"{live}.{rank}").read_text()) < 1000


@needs_deepspeed
def test_zero3_nan_stops_and_keeps_a_good_checkpoint(tmp_path):
    """An exploding run: the gradient norm turns infinite; DeepSpeed has already run its step
    inside the last backward and must have skipped it."""
    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = stage(tmp_path, "sft", data, model, "nan", grad_accum=4, save_every=1)
    config["stages"][0]["optim"].update(lr=1e30, schedule="constant", warmup_steps=0)
    done = zero3(tmp_path, "sft", write_config(tmp_path / "nan.yaml", config), expect_ok=False)
    assert done.returncode != 0
    err = done.stderr
    assert re.search(
        r"gradient norm is (nan|inf) at step \d+; DeepSpeed skipped the update", err
    ), err[-3000:]
    assert re.search(r"plamo-fast: error \(rank [01]\): stage s1:", err), err[-3000:]
    named = Path(re.search(r"Last good checkpoint: (\S+)", err).group(1))
    assert all(torch.isfinite(v).all() for v in weights(named).values())
    assert not (tmp_path / "nan").exists()


@needs_deepspeed
def test_zero3_nan_loss_on_one_process_stops_every_process(tmp_path):
    """A NaN loss on one process only (a NaN embedding row of a token that only rank 0's rows
    of step 1 hold): both processes stop at that step, before the backward pass that would
    run DeepSpeed's optimizer step, instead of rank 1 waiting in a collective. (That the stop
    comes before rather than after that backward is not visible from outside: DeepSpeed skips
    a non-finite step by itself, see the test above.)"""
    from safetensors.torch import load_file, save_file

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    tensors = load_file(model / "model.safetensors")
    tensors["model.embed_tokens.weight"][token_of_rank0_only(data, model)] = float("nan")
    save_file(tensors, model / "model.safetensors", metadata={"format": "pt"})
    config = stage(tmp_path, "sft", data, model, "nan", grad_accum=4)
    path = write_config(tmp_path / "nan.yaml", config)
    done = zero3(tmp_path, "sft", path, expect_ok=False, timeout=240)  # a hang fails
    assert done.returncode != 0
    for rank in (0, 1):
        assert re.search(
            rf"error \(rank {rank}\): stage s1: loss is nan at step 1; stopped without applying",
            done.stderr,
        ), done.stderr[-3000:]


def token_of_rank0_only(data: Path, model: Path) -> int:
    """A token in rank 0's rows of step 1 (rows 0-3: shuffle off, 4 micro-batches of one row)
    and not in rank 1's (rows 4-7) nor among the tokens of the start-up probe (seed 0)."""
    import pyarrow.parquet as pq

    rows = pq.read_table(data / "data.parquet").column("input_ids").to_pylist()
    vocab = json.loads((model / "config.json").read_text())["vocab_size"]
    gen = torch.Generator().manual_seed(0)  # as check_packed_attention draws them
    probe = set(torch.randint(0, vocab, (6,), generator=gen).tolist())
    probe |= set(torch.randint(0, vocab, (5,), generator=gen).tolist())
    rank1 = {t for row in rows[4:8] for t in row}
    return min(t for t in rows[0] if t not in rank1 and t not in probe)


@needs_deepspeed
def test_zero3_two_stages_free_the_first_stage(tmp_path):
    """Stage 2 (general SFT) starts from stage 1 (math) in the same processes. DeepSpeed leaves
    a destroyed engine's ZeRO-3 optimizer reachable; its fp32 master weights, Adam moments and
    shards (12 bytes per parameter) must not stay in memory while stage 2 trains."""
    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")

    def two_stages(name: str, grad_accum: int) -> Path:
        config = stage(tmp_path, "sft", data, model, f"{name}1", grad_accum=grad_accum)
        # Stage 2 with another micro-batch size and accumulation (DeepSpeed's config must follow).
        second = dict(config["stages"][0], name="s2", output=str(tmp_path / f"{name}2"),
                      micro_batch_rows=2, grad_accum=grad_accum // 4)  # fmt: skip
        del second["model"]
        config["stages"].append(second)
        return write_config(tmp_path / f"{name}.yaml", config)

    assert main(["sft", "-q", str(two_stages("one", 8))]) == 0
    live = tmp_path / "live-bytes"
    # `accelerate config` writes gradient_accumulation_steps 1; the stage's grad_accum decides.
    env = {"PLAMO_FAST_TEST_LIVE_TENSORS": str(live), "ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "1"}
    done = zero3(tmp_path, "sft", two_stages("z", 4), env=env)
    assert "the launcher's gradient_accumulation_steps=1 is ignored" in done.stdout
    assert_same_run(tmp_path / "one1", tmp_path / "z1", ("loss", "grad_norm"))
    assert_same_run(tmp_path / "one2", tmp_path / "z2", ("loss", "grad_norm"))
    per_rank_partition = sum(v.numel() for v in weights(tmp_path / "z2").values()) * 4 // 2
    for rank in (0, 1):
        left = int(Path(f"{live}.{rank}").read_text())
        assert left < per_rank_partition // 100, (rank, left, per_rank_partition)


def test_fsdp_sft_with_checkpointing_and_resume_equals_one_process(tmp_path):
    model, data = one_process(tmp_path, "sft", SFT_RECORDS, grad_accum=8)
    config = stage(tmp_path, "sft", data, model, "fsdp", grad_accum=4, save_every=2,
                   gradient_checkpointing=True)  # fmt: skip
    path = write_config(tmp_path / "fsdp.yaml", config)
    fsdp(tmp_path, "sft", path)
    assert_same_run(tmp_path / "one", tmp_path / "fsdp", ("loss", "grad_norm", "trained_tokens"))
    state = tmp_path / "fsdp.run" / "checkpoints" / "step-000002" / "trainer_state"
    assert (state / "pytorch_model_fsdp_0").is_dir()  # sharded, not gathered
    straight = weights(tmp_path / "fsdp")
    shutil.rmtree(tmp_path / "fsdp")
    done = fsdp(tmp_path, "sft", path)
    assert "resuming s1" in done.stdout + done.stderr
    for name, value in weights(tmp_path / "fsdp").items():
        torch.testing.assert_close(value, straight[name], rtol=0, atol=0)


def test_fsdp_dpo_equals_one_process(tmp_path):
    model, data = one_process(tmp_path, "dpo", DPO_RECORDS, grad_accum=4)
    for name, extra in (("pre", {}), ("live", {"reference": "live"})):
        config = stage(tmp_path, "dpo", data, model, name, grad_accum=2, **extra)
        fsdp(tmp_path, "dpo", write_config(tmp_path / f"{name}.yaml", config))
        assert_same_run(tmp_path / "one", tmp_path / name, DPO_KEYS)


@pytest.mark.parametrize(
    ("launcher", "saved", "rel"),
    [
        # DeepSpeed's bf16: a bf16 module with fp32 masters in its optimizer; bf16 written.
        pytest.param(zero3, torch.bfloat16, 1e-3, marks=needs_deepspeed, id="zero3"),
        # FSDP's bf16: fp32 sharded weights, bf16 compute; the fp32 master weights written.
        pytest.param(fsdp, torch.float32, 1e-2, id="fsdp"),
    ],
)
def test_bf16_mixed_precision_trains_like_fp32(tmp_path, launcher, saved, rel):
    """mixed_precision: bf16 in the shipped accelerate config (dtype: auto follows it)."""
    model, data = one_process(tmp_path, "sft", SFT_RECORDS, grad_accum=8)
    path = write_config(tmp_path / "bf16.yaml",
                        stage(tmp_path, "sft", data, model, "bf16", grad_accum=4))  # fmt: skip
    launcher(tmp_path, "sft", path, mixed="bf16")
    for a, b in zip(metrics(tmp_path / "one"), metrics(tmp_path / "bf16"), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=rel)
        assert b["loss"] != a["loss"]  # computed in bf16
    assert {v.dtype for v in weights(tmp_path / "bf16").values()} == {saved}
