"""`plamo-fast merge` as a user runs it: defaults, refusals, exit codes, atomic output."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import random_storage, write_model
from plamo_fast.cli import main
from plamo_fast.merge.synthetic import SHAPES, write_random_model
from plamo_fast.reference.safetensors_io import read_model, read_safetensors

CLI = [sys.executable, "-m", "plamo_fast.cli"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}
    )


def test_users_own_example_works_as_written(tiny_pair, tmp_path: Path):
    a, b = tiny_pair
    proc = run_cli("merge", "a", "b", "--t", "0.5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "a+b.slerp-t0.5"
    assert proc.stdout.strip() == str(out)
    assert "merged 39 tensors" in proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "model.safetensors.index.json" in names
    for copied in ("config.json", "generation_config.json", "tokenizer_config.json"):
        assert (out / copied).read_bytes() == (a / copied).read_bytes()
    assert json.loads((out / "plamo_fast_merge.json").read_text())["t"] == 0.5
    # Every tensor of A is there once, listed in the index under the file holding it.
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(read_model(a))
    for name, shard in index["weight_map"].items():
        assert name in read_safetensors(out / shard)
    # A second run refuses to overwrite, --overwrite replaces.
    again = run_cli("merge", "a", "b", "--t", "0.5", cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert run_cli("merge", "a", "b", "--t", "0.5", "--overwrite", cwd=tmp_path).returncode == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_shards_respect_max_shard_size(tiny_pair, tmp_path: Path):
    a, b = tiny_pair
    limit = 40_000
    assert (
        main(
            [
                "merge",
                str(a),
                str(b),
                "-o",
                str(tmp_path / "o"),
                "-q",
                "--max-shard-size",
                f"{limit}B",
            ]
        )
        == 0
    )
    shards = sorted((tmp_path / "o").glob("*.safetensors"))
    assert len(shards) > 3
    largest_tensor = max(arr.nbytes for _, arr in read_model(a).values())
    for shard in shards:
        data = sum(arr.nbytes for _, arr in read_safetensors(shard).values())
        assert data <= max(limit, largest_tensor)


def test_linear_three_models_cli(tiny_pair, tmp_path: Path):
    a, b = tiny_pair
    c = write_random_model(tmp_path / "c", SHAPES["tiny"], seed=3)
    out = tmp_path / "avg"
    assert (
        main(
            [
                "merge",
                str(a),
                str(b),
                str(c),
                "--method",
                "linear",
                "--weights",
                "1,1,2",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    assert json.loads((out / "plamo_fast_merge.json").read_text())["weights"] == [1.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--t", "1.5"], "t must be between 0 and 1"),
        (["--method", "ties"], "is not slerp or linear"),
        (["--weights", "1,2"], "--weights applies to --method linear"),
        (["--max-shard-size", "five"], "cannot read size"),
        (["--threads", "-1"], "threads must be"),
    ],
)
def test_bad_arguments(tiny_pair, tmp_path: Path, capsys, args, message):
    a, b = tiny_pair
    code = main(["merge", str(a), str(b), "-o", str(tmp_path / "o"), "-q", *args])
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert message in err
    assert not (tmp_path / "o").exists()


def test_usage_errors_exit_2(capsys):
    assert main(["merge", "--no-such-option"]) == 2
    assert main(["no-such-command"]) == 2


def mismatch_pair(tmp_path: Path, change: str):
    rng = np.random.default_rng(0)
    ta = {
        "model.embed_tokens.weight": ("BF16", random_storage(rng, "BF16", (10, 4))),
        "model.layers.0.mlp.up_proj.weight": ("BF16", random_storage(rng, "BF16", (4, 4))),
        "lm_head.weight": ("BF16", random_storage(rng, "BF16", (10, 4))),
    }
    tb = dict(ta)
    vocab_b = 10
    if change == "shape":
        tb["model.layers.0.mlp.up_proj.weight"] = ("BF16", random_storage(rng, "BF16", (4, 5)))
    elif change == "dtype":
        tb["model.layers.0.mlp.up_proj.weight"] = ("F32", rng.standard_normal((4, 4)))
    elif change == "missing":
        tb["model.layers.0.mlp.extra"] = ("BF16", random_storage(rng, "BF16", (4,)))
    elif change == "tied":
        del tb["lm_head.weight"]
    elif change == "vocab":
        vocab_b = 12
        tb["model.embed_tokens.weight"] = ("BF16", random_storage(rng, "BF16", (12, 4)))
        tb["lm_head.weight"] = ("BF16", random_storage(rng, "BF16", (12, 4)))
    return (
        write_model(tmp_path / "a", ta, vocab_size=10),
        write_model(tmp_path / "b", tb, vocab_size=vocab_b),
    )


@pytest.mark.parametrize(
    "change,message",
    [
        ("shape", "has shape [4, 4]"),
        ("dtype", "has dtype BF16"),
        ("missing", "model.layers.0.mlp.extra"),
        ("tied", "lm_head.weight is stored in"),
        ("vocab", "different vocabulary sizes"),
    ],
)
def test_incompatible_models_refused_before_writing(tmp_path: Path, capsys, change, message):
    a, b = mismatch_pair(tmp_path, change)
    out = tmp_path / "out"
    assert main(["merge", str(a), str(b), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_traceback_only_with_debug(tmp_path: Path):
    proc = run_cli("merge", str(tmp_path / "x"), str(tmp_path / "y"), "-q")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("plamo-fast: error:")
    debug = run_cli(
        "merge", str(tmp_path / "x"), str(tmp_path / "y"), "-q", env={"PLAMO_FAST_DEBUG": "1"}
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["merge", "--help"], ["pack", "--help"], ["demo", "--help"]]
)
def test_help_is_fast_and_does_not_import_torch(args):
    code = (
        "import sys, time; t = time.perf_counter(); from plamo_fast.cli import main; "
        f"rc = main({args!r}); print(time.perf_counter() - t, 'torch' in sys.modules)"
    )
    best = min(
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()[-2]
        )
        for _ in range(3)
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.split()[-1] == "False"
    assert best < 0.5


def test_interrupt_leaves_nothing_finished_looking(tiny_pair, tmp_path: Path, monkeypatch):
    """A Ctrl-C during the merge cancels the native workers and removes the partial folder."""
    from plamo_fast.merge import api

    def interrupting_reporter(total, show):
        def update(done):
            raise KeyboardInterrupt

        return update, lambda: None

    a = write_random_model(tmp_path / "big_a", SHAPES["small"], seed=1)
    b = write_random_model(tmp_path / "big_b", SHAPES["small"], seed=2)
    monkeypatch.setattr(api, "_progress_reporter", interrupting_reporter)
    with pytest.raises(KeyboardInterrupt):
        api.merge([a, b], t=0.5, output=tmp_path / "out", threads=1)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.fixture(scope="module")
def medium_pair(tmp_path_factory) -> tuple[Path, Path]:
    """About 190 MB each: big enough that a signal lands while the merge runs."""
    shape = dataclasses.replace(SHAPES["small"], layers=6, hidden=1024, intermediate=2816)
    root = tmp_path_factory.mktemp("medium")
    return (
        write_random_model(root / "a", shape, seed=1),
        write_random_model(root / "b", shape, seed=2),
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_merge_leaves_no_output_folder(tmp_path: Path, medium_pair, sig):
    a, b = medium_pair
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*CLI, "merge", str(a), str(b), "-o", str(out), "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.partial-*/model-*")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the merge finished before the signal arrived")
    assert not out.exists()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert not list(tmp_path.glob(".out.partial-*"))
    else:
        # A hard kill cannot clean up; what remains is a hidden, clearly partial folder.
        assert all(p.name.startswith(".out.partial-") for p in tmp_path.glob(".out*"))


def write_config(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config))
    return path


def test_config_file_from_the_cli(tiny_pair, tmp_path: Path):
    a, b = tiny_pair
    config = write_config(
        tmp_path / "slerp.yml",
        {
            "merge_method": "slerp",
            "base_model": str(a),
            "dtype": "bfloat16",
            "models": [{"model": str(a)}, {"model": str(b)}],
            "parameters": {"t": [{"filter": "mlp", "value": [0, 1]}, {"value": 0.5}]},
        },
    )
    out = tmp_path / "from_config"
    assert main(["merge", "--config", str(config), "-o", str(out), "-q"]) == 0
    provenance = json.loads((out / "plamo_fast_merge.json").read_text())
    assert provenance["config"] == str(config.resolve())


@pytest.mark.parametrize(
    "change,message",
    [
        ({"merge_method": "ties"}, "merge_method 'ties' is not supported"),
        ({"base_model": None}, "slerp needs 'base_model'"),
        ({"dtype": "float16"}, "dtype F16 asked for but the models store BF16"),
        ({"tokenizer_source": "union"}, "tokenizer merging is not supported"),
        ({"surprise": 1}, "unknown key 'surprise'"),
        (
            {
                "models": None,
                "slices": [
                    {
                        "sources": [
                            {"model": "A", "layer_range": [0, 2]},
                            {"model": "B", "layer_range": [2, 4]},
                        ]
                    }
                ],
            },
            "layer-range slicing is not supported",
        ),
    ],
)
def test_config_refusals(tiny_pair, tmp_path: Path, capsys, change, message):
    a, b = tiny_pair
    config = {
        "merge_method": "slerp",
        "base_model": str(a),
        "parameters": {"t": 0.5},
        "models": [{"model": str(a)}, {"model": str(b)}],
    }
    config.update(change)
    if "slices" in change:
        for source, path in zip(config["slices"][0]["sources"], (a, b), strict=False):
            source["model"] = str(path)
    config = {k: v for k, v in config.items() if v is not None}
    path = write_config(tmp_path / "bad.yml", config)
    assert main(["merge", "--config", str(path), "-o", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "o").exists()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def runs_pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two tiny models in a folder ``runs`` (as training writes them)."""
    runs = tmp_path / "runs"
    shape = SHAPES["tiny"]
    a = write_random_model(runs / "a", shape, seed=1)
    b = write_random_model(runs / "b", shape, seed=2)
    return runs, a, b


@pytest.mark.parametrize(
    "output,message",
    [
        ("runs", "holds the input"),
        ("runs/a", "is the input"),
        ("runs/a/merged", "inside the input folder"),
        (".", "the current directory"),
    ],
)
def test_output_that_would_delete_an_input_is_refused(
    runs_pair, tmp_path: Path, monkeypatch, capsys, output: str, message: str
):
    """`merge runs/a runs/b -o runs --overwrite` used to replace `runs`, deleting both inputs."""
    runs, a, b = runs_pair
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = main(["merge", "runs/a", "runs/b", "-o", output, "--overwrite", "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_output_holding_the_config_file_is_refused(tiny_pair, tmp_path: Path, capsys):
    """A config kept inside an earlier merge output is an input of a rerun into that output."""
    a, b = tiny_pair
    out = tmp_path / "merged"
    config = {"merge_method": "linear", "models": [{"model": str(a)}, {"model": str(b)}]}
    config["parameters"] = {"weight": 1.0}
    first = write_config(tmp_path / "c.yml", config)
    assert main(["merge", "--config", str(first), "-o", str(out), "-q"]) == 0
    kept = write_config(out / "linear.yml", config)
    before = snapshot(out)
    code = main(["merge", "--config", str(kept), "-o", str(out), "--overwrite", "-q"])
    assert code == 1 and "holds the input" in capsys.readouterr().err
    assert snapshot(out) == before


@pytest.mark.parametrize("marker", [None, {"command": "pack"}])
def test_overwrite_refuses_a_folder_that_is_not_a_merge_output(
    tiny_pair, tmp_path: Path, capsys, marker
):
    """--overwrite replaces only an earlier merge output (it carries the marker file)."""
    from plamo_fast.outputs import MARKER

    a, b = tiny_pair
    theirs = tmp_path / "precious"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    if marker is not None:
        (theirs / MARKER).write_text(json.dumps(marker))
    before = snapshot(theirs)
    code = main(["merge", str(a), str(b), "-o", str(theirs), "--overwrite", "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--overwrite refused" in err, err
    assert snapshot(theirs) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_overwrite_replaces_an_earlier_merge_output(tiny_pair, tmp_path: Path):
    from plamo_fast.outputs import read_marker

    a, b = tiny_pair
    out = tmp_path / "merged"
    assert main(["merge", str(a), str(b), "-o", str(out), "--t", "0.25", "-q"]) == 0
    assert read_marker(out)["command"] == "merge"
    first = snapshot(out)
    assert main(["merge", str(a), str(b), "-o", str(out), "--t", "0.75", "--overwrite", "-q"]) == 0
    assert json.loads((out / "plamo_fast_merge.json").read_text())["t"] == 0.75
    assert (
        snapshot(out)["model-00001-of-00001.safetensors"]
        != first["model-00001-of-00001.safetensors"]
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def record_fsyncs(monkeypatch, out: Path) -> list[tuple[str, bool]]:
    """Patches os.fsync to record (path, whether `out` existed yet) for each call."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the file behind a descriptor")
    calls: list[tuple[str, bool]] = []
    real = os.fsync

    def fsync(fd):
        calls.append((os.readlink(f"/proc/self/fd/{fd}"), out.exists()))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_merge_output_is_durable(tiny_pair, tmp_path: Path, monkeypatch):
    """The README promises a merge that survives a crash once it returns: every file written
    (the index, config, tokenizer and provenance files as well as the shards) is fsynced before
    the rename, and the parent folder after it."""
    from plamo_fast.outputs import MARKER

    a, b = tiny_pair
    out = tmp_path / "merged"
    calls = record_fsyncs(monkeypatch, out)
    assert main(["merge", str(a), str(b), "-o", str(out), "-q"]) == 0
    before_rename = {Path(path).name for path, published in calls if not published}
    for name in (
        "model.safetensors.index.json",
        "config.json",
        "generation_config.json",
        "tokenizer_config.json",
        "plamo_fast_merge.json",
        MARKER,
        *(p.name for p in out.glob("*.safetensors")),
    ):
        assert name in before_rename, name
    assert (str(tmp_path.resolve()), True) in calls  # the parent, after the rename


def test_no_fsync_skips_every_flush(tiny_pair, tmp_path: Path, monkeypatch):
    a, b = tiny_pair
    calls = record_fsyncs(monkeypatch, tmp_path / "o")
    assert main(["merge", str(a), str(b), "-o", str(tmp_path / "o"), "--no-fsync", "-q"]) == 0
    assert calls == []
