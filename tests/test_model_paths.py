"""A model or tokenizer given on the command line is found at once and without the network
(:func:`plamo_fast.model_paths.resolve_model`): a missing path is "not found" in well under 2 s
for sample, score and eval (transformers retried the hub for ~50 s and said it "couldn't
connect"), a hub name is looked up in the local hub cache only; and sample and score without
torch/transformers say in one line what to install, leaving nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chat_fixtures import write_jsonl

from plamo_fast.cli import main
from plamo_fast.model_paths import resolve_model

PROMPTS = [{"prompt": "日本の首都はどこですか？"}]
CANDIDATES = [{"prompt_index": 0, "prompt_messages": [{"role": "user", "content": "hi"}],
               "candidates": [{"text": "Hello!"}]}]  # fmt: skip


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Any connection is a test failure; the hub cache is an empty folder of the test's."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    cache = tmp_path / "hub-cache"
    try:
        from huggingface_hub import constants
    except ImportError:
        return cache
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def model_folder(folder: Path, *files: str) -> Path:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("{}\n")
    return folder


def cached_hub_model(cache: Path, repo: str, *files: str) -> Path:
    """``repo`` as ``hf download`` leaves it in the hub cache (refs/main -> a snapshot)."""
    storage = cache / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(commit)
    return model_folder(storage / "snapshots" / commit, *files)


def test_a_local_folder_is_used_as_it_is(tmp_path):
    model = model_folder(tmp_path / "m", "config.json", "tokenizer.json")
    assert resolve_model(str(model)) == str(model)
    assert resolve_model(model, "tokenizer") == str(model)
    tokenizer = model_folder(tmp_path / "t", "tokenizer_config.json")
    assert resolve_model(str(tokenizer), "tokenizer") == str(tokenizer)
    with pytest.raises(FileNotFoundError, match=r"no config\.json in it \(not a model folder\)"):
        resolve_model(str(tokenizer))
    weights_only = model_folder(tmp_path / "w", "config.json")
    with pytest.raises(FileNotFoundError, match="no tokenizer in it"):
        resolve_model(str(weights_only))
    with pytest.raises(FileNotFoundError, match="is a file; give the folder"):
        resolve_model(str(model / "config.json"))


@pytest.mark.parametrize(
    "name", ["./missing", "/nowhere/model", "~/no-such-model-here", "a/b/c", "runs/final", "x y"]
)
def test_a_missing_path_is_not_found_at_once(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # "runs/final" is a path here: its first part exists
    with pytest.raises(FileNotFoundError, match=r": not found \(no such folder\)$"):
        resolve_model(name)


def test_offline_a_hub_name_is_looked_up_in_the_local_cache_only(no_network, tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.chdir(tmp_path)
    snapshot = cached_hub_model(no_network, "org/tiny", "config.json", "tokenizer.json")
    assert resolve_model("org/tiny") == str(snapshot)
    for name in ("org/absent", "models/nope", "gpt2"):
        with pytest.raises(FileNotFoundError) as caught:
            resolve_model(name)
        message = str(caught.value)
        assert f"model {name}: not found: no such folder, and not in the local" in message
        assert "HF_HUB_OFFLINE is set" in message
        assert str(no_network) in message and f"`hf download {name}`" in message
    cached_hub_model(no_network, "org/config-only", "config.json")
    with pytest.raises(FileNotFoundError, match="org/config-only .*: no tokenizer in it"):
        resolve_model("org/config-only")


def _timed(argv: list[str], capsys) -> tuple[int, str, float]:
    started = time.perf_counter()
    code = main(argv)
    return code, capsys.readouterr().err, time.perf_counter() - started


MISSING = ["./no-such-model", "models/no-such-model"]  # a path; a hub name not in the cache


@pytest.mark.parametrize("missing", MISSING)
def test_commands_fail_at_once_on_a_missing_model(missing, tmp_path, monkeypatch, capsys):
    """sample (hf, vllm), score (--reward-model, --judge through hf) and eval jaster: exit 1
    with "not found" in well under 2 s (the hub retries took ~50 s), leaving no output."""
    monkeypatch.chdir(tmp_path)
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    candidates = write_jsonl(tmp_path / "c.jsonl", CANDIDATES)
    data = tmp_path / "jaster"
    data.mkdir()
    jnli = {"instruction": "答えてください。", "output_length": 3, "metrics": ["exact_match"],
            "few_shots": [], "samples": [{"input": "x", "output": "y"}]}  # fmt: skip
    (data / "jnli.json").write_text(json.dumps(jnli), encoding="utf-8")
    main(["--help"])  # the CLI's own imports are not what is timed
    capsys.readouterr()
    commands = [
        ["sample", str(prompts), "--model", missing, "-o", "out.jsonl", "--backend", "hf"],
        ["score", str(candidates), "--reward-model", missing, "-o", "out.jsonl"],
        ["score", str(candidates), "--judge", missing, "--backend", "hf", "-o", "out.jsonl"],
        ["eval", "jaster", "--data", str(data), "--model", missing, "--shots", "0",
         "--backend", "hf", "-o", "out"],
    ]  # fmt: skip
    if pytest.importorskip("importlib.util").find_spec("vllm") is not None:
        commands.append(
            ["sample", str(prompts), "--model", missing, "-o", "out.jsonl", "--backend", "vllm"]
        )
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv in commands:
        code, err, seconds = _timed([*argv, "-q"], capsys)
        assert code == 1, argv
        assert f"model {missing}: not found" in err and err.count("\n") == 1, err
        assert seconds < 2.0, (argv, seconds)
        after = sorted(p.name for p in tmp_path.iterdir())
        assert after == before, argv  # no OUT, no OUT.partial, no answer cache


def _without_torch(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``plamo-fast ARGV`` in a process where torch and transformers cannot be imported (the
    install without the [train] extra)."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from plamo_fast.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_sample_and_score_without_the_train_extra(tmp_path):
    """One line saying what to install, exit 1, and no OUT, OUT.partial or hidden partial."""
    model = model_folder(tmp_path / "model", "config.json", "tokenizer.json")
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    candidates = write_jsonl(tmp_path / "c.jsonl", CANDIDATES)
    runs = [
        (["sample", str(prompts), "--model", str(model), "-o", "o/c.jsonl", "--backend", "hf"],
         "--backend hf needs torch and transformers"),
        (["sample", str(prompts), "--model", str(model), "-o", "o/c.jsonl"],
         "--backend auto without --base-url (hf) needs torch and transformers"),
        (["score", str(candidates), "--reward-model", str(model), "-o", "o/s.jsonl"],
         "--reward-model needs torch and transformers"),
        (["score", str(candidates), "--judge", str(model), "--backend", "hf", "-o", "o/s.jsonl"],
         "--backend hf needs torch and transformers"),
    ]  # fmt: skip
    if pytest.importorskip("importlib.util").find_spec("vllm") is not None:
        runs.pop(1)  # auto would pick vLLM
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, message in runs:
        done = _without_torch([*argv, "-q"], tmp_path)
        assert done.returncode == 1, (argv, done.stderr)
        assert done.stderr == (
            f"plamo-fast: error: {message}: pip install 'plamo-fast[train]'\n"
        ), done.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == before, argv


def test_online_a_hub_name_not_in_the_cache_goes_to_the_loader(no_network, tmp_path, monkeypatch):
    """Online, the loader (transformers, vLLM) downloads what the cache lacks; a cached name is
    still its snapshot folder, and a missing path is still "not found"."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.chdir(tmp_path)
    assert resolve_model("org/absent") == "org/absent"
    snapshot = cached_hub_model(no_network, "org/tiny", "config.json", "tokenizer.json")
    assert resolve_model("org/tiny") == str(snapshot)
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_model("./absent")


def test_sft_without_accelerate_says_what_to_install(tmp_path, monkeypatch, capsys):
    """sft/dpo need accelerate too: one line, not a ModuleNotFoundError."""
    import importlib.util

    from plamo_fast import model_paths

    real = importlib.util.find_spec
    monkeypatch.setattr(
        model_paths.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "accelerate" else real(name, *a),
    )
    assert main(["sft", "--help"]) == 0  # help needs nothing
    capsys.readouterr()
    config = tmp_path / "c.yaml"
    config.write_text("stages: []\n")
    assert main(["sft", str(config)]) == 1
    err = capsys.readouterr().err
    assert "needs accelerate: pip install 'plamo-fast[train]'" in err and err.count("\n") == 1
