"""SFT on CPU with a tiny model: packed = unpacked loss, accumulation equivalence, the loss
falls, every parameter moves, two stages from the CLI, resume equivalence, guards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from train_fixtures import SFT_RECORDS, packed, tiny_model, torch, write_config

from plamo_fast.cli import main
from plamo_fast.outputs import read_marker, write_marker

ROOT = Path(__file__).resolve().parents[1]


def sft_config(tmp_path, data, model, **stage):
    return {
        "kind": "sft",
        "plot": False,
        "stages": [
            {
                "name": "s1",
                "model": str(model),
                "output": str(tmp_path / "out1"),
                "data": {"packed": [str(data)], "shuffle": False},
                "optim": {"lr": 1e-3, "schedule": "constant"},
                "micro_batch_rows": 1,
                "grad_accum": 2,
                "max_steps": 3,
                **stage,
            }
        ],
    }


def test_two_stage_sft_from_the_cli_loads_in_transformers(tmp_path, monkeypatch):
    """The shipped configs/tiny_cpu_sft.yaml, with paths given as overrides."""
    from transformers import AutoModelForCausalLM

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    monkeypatch.chdir(tmp_path)
    config = ROOT / "configs" / "tiny_cpu_sft.yaml"
    overrides = [
        f"stages.0.model={model}",
        f"stages.0.data.packed=[{data}]",
        f"stages.1.data.packed=[{data}]",
        "stages.1.max_steps=2",
        "plot=false",
    ]
    assert main(["sft", str(config), "-q", *overrides]) == 0
    for name, steps in (("tiny-sft-math", 4), ("tiny-sft-general", 2)):
        out = tmp_path / "runs" / name
        AutoModelForCausalLM.from_pretrained(out)
        assert (out / "tokenizer.json").exists()
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in lines] == list(range(1, steps + 1))
        assert {"loss", "lr", "grad_norm", "tokens_per_s", "trained_tokens"} <= set(lines[0])
    # The general stage started from the math stage's output.
    stage2 = json.loads((tmp_path / "runs" / "tiny-sft-general.run" / "config.json").read_text())
    assert stage2["model"] == "runs/tiny-sft-math"
    # Each output carries our marker with the run's fingerprint.
    marker = read_marker(tmp_path / "runs" / "tiny-sft-general")
    assert marker["command"] == "sft" and marker["fingerprint"]["config"]["max_steps"] == 2
    # A finished stage is skipped when the run is started again.
    assert main(["sft", str(config), "-q", *overrides]) == 0


def per_token_losses(model, rows):
    """Per-token CE of each row's trained tokens, as one flat tensor in document order."""
    from plamo_fast.train.data import collate
    from plamo_fast.train.losses import token_logps

    out = []
    for row in rows:
        batch = collate([row])
        logits = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        logp, mask = token_logps(logits, batch["labels"])
        out.append(-logp[mask])
    return torch.cat(out)


def test_packed_loss_equals_unpacked_loss(tmp_path):
    from transformers import AutoModelForCausalLM

    from plamo_fast.train.data import PackedRow, load_packed

    model_dir = tiny_model(tmp_path / "model")
    rows = load_packed([str(packed(tmp_path / "packed", model_dir, SFT_RECORDS, "sft"))])
    assert any(len(r.seq_lengths) > 1 for r in rows)
    single = []
    for r in rows:
        start = 0
        for n in r.seq_lengths.tolist():
            s = slice(start, start + n)
            single.append(
                PackedRow(r.input_ids[s], r.labels[s], r.position_ids[s], r.seq_lengths[:0] + n)
            )
            start += n
    for impl in ("sdpa", "eager"):
        model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=impl).eval()
        with torch.no_grad():
            a, b = per_token_losses(model, rows), per_token_losses(model, single)
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def final_weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_gradient_accumulation_is_equivalent_to_a_bigger_batch(tmp_path):
    """1 row x 8 micro-batches = 8 rows x 1 = 2 x 4: same loss and same gradient norm before
    clipping (a normalisation error would scale it; Adam's first step alone would hide it)."""
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    logged = []
    for name, rows, accum in (("a", 1, 8), ("b", 8, 1), ("c", 2, 4)):
        config = sft_config(tmp_path, data, model, micro_batch_rows=rows, grad_accum=accum,
                            max_steps=1, output=str(tmp_path / name))  # fmt: skip
        config["stages"][0]["optim"]["max_grad_norm"] = 1e9
        path = write_config(tmp_path / f"{name}.yaml", config)
        train(load_config(path, kind="sft"), "sft", progress=False)
        (record,) = [
            json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        ]
        logged.append(record)
    for other in logged[1:]:
        assert other["trained_tokens"] == logged[0]["trained_tokens"]
        assert other["loss"] == pytest.approx(logged[0]["loss"], rel=1e-5)
        assert other["grad_norm"] == pytest.approx(logged[0]["grad_norm"], rel=1e-4)


def test_two_processes_equal_one(tmp_path):
    """DDP over two CPU processes (gloo) with half the accumulation each: the same loss,
    trained tokens and gradient norm as one process."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not found next to this python")
    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    records = {}
    for name, accum in (("one", 8), ("two", 4)):
        # Gradient checkpointing on the two-process side: DDP with recomputed activations.
        config = sft_config(tmp_path, data, model, grad_accum=accum, max_steps=3,
                            output=str(tmp_path / name),
                            gradient_checkpointing=name == "two")  # fmt: skip
        # A schedule that moves: accelerate must not step it once per process.
        config["stages"][0]["optim"].update(schedule="linear", warmup_steps=1, min_lr_ratio=0.0)
        path = write_config(tmp_path / f"{name}.yaml", config)
        launcher = [torchrun, "--nproc_per_node", "2"] if name == "two" else [sys.executable]
        env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
        subprocess.run([*launcher, "-m", "plamo_fast.cli", "sft", "-q", str(path)], env=env,
                       check=True, capture_output=True)  # fmt: skip
        records[name] = [
            json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        ]
    assert [r["lr"] for r in records["two"]] == pytest.approx([5e-4, 1e-3, 0.0])
    for a, b in zip(records["one"], records["two"], strict=True):
        assert a["lr"] == pytest.approx(b["lr"])
        assert a["trained_tokens"] == b["trained_tokens"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def test_loss_falls_and_every_parameter_changes(tmp_path):
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = sft_config(tmp_path, data, model, max_steps=25, grad_accum=8)
    config["stages"][0]["optim"]["lr"] = 1e-2
    train(load_config(write_config(tmp_path / "c.yaml", config), kind="sft"), "sft",
          progress=False)  # fmt: skip
    out = tmp_path / "out1"
    losses = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.3 * losses[0], losses
    before, after = final_weights(model), final_weights(out)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    runs = {}
    for name in ("straight", "killed"):
        config = sft_config(tmp_path, data, model, max_steps=6, save_every=2,
                            output=str(tmp_path / name))  # fmt: skip
        config["stages"][0]["data"]["shuffle"] = True
        config["stages"][0]["optim"].update(schedule="cosine", warmup_steps=2)
        path = write_config(tmp_path / f"{name}.yaml", config)
        if name == "killed":
            train(load_config(path, kind="sft"), "sft", progress=False, stop_after=3)
            assert not (tmp_path / name).exists()  # nothing finished-looking
            assert (tmp_path / "killed.run" / "checkpoints" / "step-000002").is_dir()
        train(load_config(path, kind="sft"), "sft", progress=False)
        runs[name] = [
            json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        ]
    assert [r["step"] for r in runs["killed"]] == list(range(1, 7))
    # Only the newest keep_checkpoints (default 2) remain.
    kept = sorted(p.name for p in (tmp_path / "killed.run" / "checkpoints").iterdir())
    assert kept == ["step-000002", "step-000004"]
    for a, b in zip(runs["straight"], runs["killed"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)
        assert a["lr"] == pytest.approx(b["lr"])
    wa, wb = final_weights(tmp_path / "straight"), final_weights(tmp_path / "killed")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_config_problems_are_all_reported(tmp_path, capsys):
    path = write_config(
        tmp_path / "bad.yaml",
        {"kind": "sft", "stages": [{"model": 3, "outptu": "x", "optim": {"lr": "fast"},
                                    "grad_accum": 0, "loss": "hinge"}], "dtype": "fp8"},
    )  # fmt: skip
    assert main(["sft", str(path), "stages.0.epochs=-1"]) == 1
    err = capsys.readouterr().err
    for needle in ("stages.0.model: expected str", "stages.0.outptu: unknown key",
                   "stages.0.optim.lr: expected float", "dtype: 'fp8'"):  # fmt: skip
        assert needle in err, err


def test_no_trained_tokens_is_refused_and_nan_stops(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    model = tiny_model(tmp_path / "model")
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pylist([{"input_ids": [1, 2, 3], "labels": [-100] * 3,
        "position_ids": [0, 1, 2], "seq_lengths": [3]}]), empty)  # fmt: skip
    path = write_config(tmp_path / "c.yaml", sft_config(tmp_path, empty, model))
    assert main(["sft", str(path), "-q"]) == 1
    assert "no trained token" in capsys.readouterr().err
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = sft_config(tmp_path, data, model, max_steps=4, save_every=1)
    config["stages"][0]["optim"]["lr"] = 1e30
    path = write_config(tmp_path / "nan.yaml", config)
    assert main(["sft", str(path), "-q"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"(loss|gradient norm) is (nan|inf)", err), err
    named = Path(re.search(r"Last good checkpoint: (\S+)", err).group(1))
    weights = final_weights(named)  # the named checkpoint holds no NaN or inf
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not (tmp_path / "out1").exists()


def test_a_stage_can_pack_raw_data_itself(tmp_path):
    from chat_fixtures import write_jsonl

    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model = tiny_model(tmp_path / "model")
    raw = write_jsonl(tmp_path / "raw.jsonl", SFT_RECORDS)
    config = sft_config(tmp_path, raw, model, max_steps=2)
    config["stages"][0]["data"] = {"raw": [str(raw)], "tokenizer": str(model), "max_length": 96}
    train(load_config(write_config(tmp_path / "c.yaml", config), kind="sft"), "sft",
          progress=False)  # fmt: skip
    assert (tmp_path / "out1.run" / "packed" / "data.parquet").exists()
    assert (tmp_path / "out1" / "model.safetensors").exists()
    # The uncompressed copy of the rows (12 bytes a token) goes once the model is published.
    left = {p.name for p in (tmp_path / "out1.run").iterdir()}
    assert "packed.arrow" not in left and "packed.arrow.json" not in left, left


def test_a_real_kill_resumes_to_the_same_result(tmp_path):
    """SIGKILL the CLI once it has written a checkpoint, run it again: same losses and weights
    as an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    paths = {}
    for name in ("straight", "killed"):
        config = sft_config(tmp_path, data, model, max_steps=20, save_every=3,
                            output=str(tmp_path / name))  # fmt: skip
        paths[name] = write_config(tmp_path / f"{name}.yaml", config)
    command = [sys.executable, "-m", "plamo_fast.cli", "sft", "-q"]
    proc = subprocess.Popen([*command, str(paths["killed"])], stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed.run" / "checkpoints" / "step-000003"
    deadline = time.time() + 120
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (tmp_path / "killed").exists()
    for name in ("killed", "straight"):
        subprocess.run([*command, str(paths[name])], check=True, capture_output=True)

    def losses(name):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x)["loss"] for x in lines]

    assert losses("killed") == pytest.approx(losses("straight"), rel=1e-5)
    a, b = final_weights(tmp_path / "straight"), final_weights(tmp_path / "killed")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_tensorboard_logging_when_asked_for(tmp_path):
    pytest.importorskip("tensorboard")
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = sft_config(tmp_path, data, model, max_steps=2)
    config["report_to"] = ["tensorboard"]
    train(load_config(write_config(tmp_path / "c.yaml", config), kind="sft"), "sft",
          progress=False)  # fmt: skip
    events = list((tmp_path / "out1.run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_a_changed_config_or_dpo_data_is_refused(tmp_path, capsys):
    from train_fixtures import DPO_RECORDS

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = sft_config(tmp_path, data, model, max_steps=2, save_every=1)
    assert main(["sft", str(write_config(tmp_path / "a.yaml", config)), "-q"]) == 0
    import shutil

    shutil.rmtree(tmp_path / "out1")  # the run folder stays; a changed lr must not resume it
    config["stages"][0]["optim"]["lr"] = 5e-5
    assert main(["sft", str(write_config(tmp_path / "b.yaml", config)), "-q"]) == 1
    err = capsys.readouterr().err
    assert "optim.lr: stored 0.001, now 5e-05" in err, err
    config["stages"][0]["optim"]["lr"] = 1e-3
    config["dtype"] = "bfloat16"  # the precision too: cached state was made in the old one
    assert main(["sft", str(write_config(tmp_path / "b.yaml", config)), "-q"]) == 1
    err = capsys.readouterr().err
    assert "precision: stored ['no', 'float32'], now ['no', 'bfloat16']" in err, err
    # A run folder from before precision was recorded still resumes.
    stored = tmp_path / "out1.run" / "fingerprint.json"
    old = json.loads(stored.read_text())
    del old["config"]["precision"]
    stored.write_text(json.dumps(old))
    config["dtype"] = "auto"
    assert main(["sft", str(write_config(tmp_path / "b.yaml", config)), "-q"]) == 0
    assert "resuming s1" in capsys.readouterr().out
    pairs = packed(tmp_path / "pairs", model, DPO_RECORDS, "dpo")
    config = sft_config(tmp_path, pairs, model, output=str(tmp_path / "o2"))
    assert main(["sft", str(write_config(tmp_path / "c.yaml", config)), "-q"]) == 1
    assert "SFT needs rows packed with --kind sft" in capsys.readouterr().err


def test_schedule_reaches_its_floor_and_epochs_cover_every_row(tmp_path):
    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")  # 8 rows
    config = sft_config(tmp_path, data, model, grad_accum=3, max_steps=None, epochs=1.0)
    config["stages"][0]["optim"].update(schedule="linear", min_lr_ratio=0.1, warmup_steps=0)
    train(load_config(write_config(tmp_path / "c.yaml", config), kind="sft"), "sft",
          progress=False)  # fmt: skip
    logged = [json.loads(x) for x in (tmp_path / "out1" / "metrics.jsonl").read_text().splitlines()]
    # 8 rows in steps of 3 micro-batches: 3 steps, the last one completed from the start.
    assert [r["step"] for r in logged] == [1, 2, 3] and logged[-1]["epoch"] == 1.0
    assert [r["lr"] for r in logged] == pytest.approx([1e-3, 5.5e-4, 1e-4])


def test_a_launch_accelerate_did_not_distribute_is_refused(tmp_path, monkeypatch, capsys):
    """Two launched processes that accelerate leaves undistributed (an FSDP or DeepSpeed
    config on a machine without GPUs) would each train the whole model into the same files."""
    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    path = write_config(tmp_path / "c.yaml", sft_config(tmp_path, data, model))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["sft", "-q", str(path)]) == 1
    err = capsys.readouterr().err
    assert "plamo-fast: error (rank 0): 2 processes were launched but accelerate set up 1" in err
    assert not (tmp_path / "out1").exists()


@pytest.mark.parametrize("shuffle", [False, True])
def test_rows_are_trained_in_order_unless_shuffled(tmp_path, shuffle):
    """One row per step: the trained tokens logged at each step are those of the row the
    order names (packed order with shuffle off, the seeded permutation with it on)."""
    import pyarrow.parquet as pq

    from plamo_fast.train.data import epoch_order

    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    labels = pq.read_table(data / "data.parquet").column("labels").to_pylist()
    per_row = [sum(1 for x in row[1:] if x != -100) for row in labels]
    config = sft_config(tmp_path, data, model, grad_accum=1, max_steps=len(per_row))
    config["stages"][0]["data"]["shuffle"] = shuffle
    assert main(["sft", "-q", str(write_config(tmp_path / "c.yaml", config))]) == 0
    logged = [json.loads(x) for x in (tmp_path / "out1" / "metrics.jsonl").read_text().splitlines()]
    order = [m[0] for m in epoch_order(len(per_row), 1, 0, 0, shuffle)]
    assert (order == sorted(order)) is not shuffle
    assert [r["trained_tokens"] for r in logged] == [per_row[i] for i in order]
    assert len(set(per_row)) > 1  # rows differ, so a wrong order shows


def run_sft(tmp_path: Path, name: str, config: dict) -> int:
    return main(["sft", "-q", str(write_config(tmp_path / f"{name}.yaml", config))])


@pytest.mark.parametrize("case", ["unrelated", "merge", "model", "inside_model", "holds_data",
                                  "cwd", "holds_cwd"])  # fmt: skip
def test_an_output_that_is_not_ours_is_refused_before_training(tmp_path, monkeypatch, capsys,
                                                               case):  # fmt: skip
    """A stage replaces its output when it finishes: an existing folder that is not an earlier
    output of a plamo-fast sft stage, the starting model, a folder holding the data or the
    current directory is refused before anything is trained or written."""
    model = tiny_model(tmp_path / "model")
    (tmp_path / "data").mkdir()
    data = packed(tmp_path / "data" / "packed", model, SFT_RECORDS, "sft")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out, message = {
        "unrelated": (tmp_path / "runs", "has no .plamo-fast-output.json"),
        "merge": (tmp_path / "merged", "is the output of plamo-fast merge, not of sft"),
        "model": (model, "is the input"),
        "inside_model": (model / "out", "inside the input folder"),
        "holds_data": (tmp_path / "data", "holds the input"),
        "cwd": (Path("."), "the current directory"),
        "holds_cwd": (tmp_path, "the current directory"),
    }[case]
    if case in ("unrelated", "merge"):
        out.mkdir()
        (out / "keep.txt").write_text("precious")
        if case == "merge":
            write_marker(out, "merge")
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert run_sft(tmp_path, "c", sft_config(tmp_path, data, model, output=str(out))) == 1
    err = capsys.readouterr().err
    assert message in err and "stage s1" in err, err
    assert {p.relative_to(tmp_path) for p in tmp_path.rglob("*")} == before | {Path("c.yaml")}


def test_a_finished_stage_is_not_reused_after_its_settings_changed(tmp_path, capsys):
    """A finished output is skipped only when it was trained with the same fingerprint
    (config, starting model, data, precision, max_steps); otherwise the stage is refused,
    naming what changed, and the output is left as it is."""
    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = sft_config(tmp_path, data, model, max_steps=2)
    assert run_sft(tmp_path, "a", config) == 0
    done = final_weights(tmp_path / "out1")
    assert run_sft(tmp_path, "a", config) == 0
    assert "stage s1 already done" in capsys.readouterr().out
    other = packed(tmp_path / "other", model, SFT_RECORDS[:8], "sft")
    for change, expected in (
        ({"optim": {"lr": 5e-4, "schedule": "constant"}}, "optim.lr: stored 0.001, now 0.0005"),
        ({"max_steps": 3}, "max_steps: stored 2, now 3"),
        ({"data": {"packed": [str(other)], "shuffle": False}}, "the packed data differ"),
    ):
        changed = sft_config(tmp_path, data, model, max_steps=2)
        changed["stages"][0].update(change)
        assert run_sft(tmp_path, "b", changed) == 1
        err = capsys.readouterr().err
        assert expected in err and "delete" in err and str(tmp_path / "out1.run") in err, err
    after = final_weights(tmp_path / "out1")
    assert all(torch.equal(done[k], after[k]) for k in done)


def test_a_stage_after_a_remade_stage_is_not_reused(tmp_path, capsys):
    """Stage 2 starts from stage 1's output: once stage 1 is trained again with other
    settings, stage 2's finished output is stale and refused."""
    model = tiny_model(tmp_path / "model")
    data = packed(tmp_path / "packed", model, SFT_RECORDS, "sft")
    config = sft_config(tmp_path, data, model, max_steps=1)
    second = dict(config["stages"][0], name="s2", output=str(tmp_path / "out2"))
    del second["model"]
    config["stages"].append(second)
    assert run_sft(tmp_path, "a", config) == 0
    import shutil

    shutil.rmtree(tmp_path / "out1")
    shutil.rmtree(tmp_path / "out1.run")
    config["stages"][0]["optim"]["lr"] = 5e-4
    assert run_sft(tmp_path, "a", config) == 1
    err = capsys.readouterr().err
    assert "stage s2" in err and f"the starting model {tmp_path / 'out1'} was made again" in err
    assert read_marker(tmp_path / "out1")["fingerprint"]["config"]["optim"]["lr"] == 5e-4


def pack_calls(monkeypatch) -> list:
    import plamo_fast.data.pack as pack_module

    calls = []
    real = pack_module.pack

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(pack_module, "pack", counted)
    return calls


def test_a_raw_stage_repacks_only_when_its_pack_changed(tmp_path, monkeypatch, capsys):
    """The stage's packed folder is reused only for the same raw files, tokenizer and packing
    settings; edited raw data is packed again, and the finished output (trained on the old
    data) is then refused, not reused."""
    from chat_fixtures import write_jsonl

    calls = pack_calls(monkeypatch)
    model = tiny_model(tmp_path / "model")
    raw = write_jsonl(tmp_path / "raw.jsonl", SFT_RECORDS)
    config = sft_config(tmp_path, raw, model, max_steps=1)
    config["stages"][0]["data"] = {"raw": [str(raw)], "tokenizer": str(model), "max_length": 96}
    assert run_sft(tmp_path, "c", config) == 0
    assert len(calls) == 1
    assert run_sft(tmp_path, "c", config) == 0  # unchanged: the pack is reused, stage skipped
    assert len(calls) == 1
    write_jsonl(raw, SFT_RECORDS[:6])
    assert run_sft(tmp_path, "c", config) == 1
    assert len(calls) == 2
    assert "the packed data differ" in capsys.readouterr().err
    report = json.loads((tmp_path / "out1.run" / "packed" / "pack_report.json").read_text())
    assert report["examples_read"] == 6


def test_raw_data_is_packed_once_on_two_processes(tmp_path):
    """Two processes (torchrun, gloo) of a stage with data.raw: the main process packs, the
    other waits for it, then both read the same rows."""
    import os
    import shutil
    import subprocess
    import sys

    from chat_fixtures import write_jsonl

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not found next to this python")
    model = tiny_model(tmp_path / "model")
    raw = write_jsonl(tmp_path / "raw.jsonl", SFT_RECORDS)
    config = sft_config(tmp_path, raw, model, grad_accum=2, max_steps=2)
    config["stages"][0]["data"] = {"raw": [str(raw)], "tokenizer": str(model), "max_length": 96}
    path = write_config(tmp_path / "c.yaml", config)
    log = tmp_path / "pack-calls.txt"
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1",
           "PLAMO_FAST_TEST_PACK_LOG": str(log)}  # fmt: skip
    launcher = Path(__file__).parent / "accelerate_cpu_launch.py"
    done = subprocess.run([torchrun, "--nproc_per_node", "2", str(launcher), "sft", "-q",
                           str(path)], env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert log.read_text().split() == ["0"]
    lines = (tmp_path / "out1" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2]


class FakeAccelerator:
    """The two things claim_run_dir asks of accelerate; ``barrier`` runs at the barrier (what
    the other processes do meanwhile)."""

    def __init__(self, main: bool, barrier=None):
        self.is_main_process = main
        self.barrier = barrier

    def wait_for_everyone(self):
        if self.barrier:
            self.barrier()


def fingerprint_and_stage(tmp_path):
    from plamo_fast.train.config import StageConfig

    stage = StageConfig(name="s1", model="m", output=str(tmp_path / "out"))
    record = {"config": {"optim": {"lr": 1e-3}}, "data_sha256": "ab" * 32, "rows": 8}
    return stage, record


def test_other_processes_read_the_fingerprint_only_after_the_barrier(tmp_path):
    """Rank 1 arrives while the main process is half way through writing fingerprint.json: it
    must read it only after the barrier, when the file is complete."""
    from plamo_fast.train.checkpoints import claim_run_dir

    stage, record = fingerprint_and_stage(tmp_path)
    run_dir = tmp_path / "out.run"
    run_dir.mkdir()
    stored = run_dir / "fingerprint.json"
    text = json.dumps(record)
    stored.write_text(text[: len(text) // 2])
    claim_run_dir(FakeAccelerator(False, lambda: stored.write_text(text)), run_dir, stage, record)
    changed = {**record, "rows": 9}
    with pytest.raises(Exception, match="rows: stored 8, now 9"):
        claim_run_dir(FakeAccelerator(False), run_dir, stage, changed)


def test_the_fingerprint_file_appears_only_complete(tmp_path, monkeypatch):
    """The main process writes fingerprint.json under another name and renames it: a write
    that stops half way leaves no fingerprint.json for another process to read."""
    import os

    from plamo_fast.train.checkpoints import claim_run_dir

    stage, record = fingerprint_and_stage(tmp_path)
    run_dir = tmp_path / "out.run"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        claim_run_dir(FakeAccelerator(True), run_dir, stage, record)
    assert not (run_dir / "fingerprint.json").exists()
    monkeypatch.undo()
    claim_run_dir(FakeAccelerator(True), run_dir, stage, record)
    assert json.loads((run_dir / "fingerprint.json").read_text()) == record
