"""``plamo-fast env``: the report's base fields in text and JSON, packages that are absent shown
as "not installed", the GPUs as torch lists them, and vLLM and DeepSpeed never imported."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
import types

import pytest

from plamo_fast import __version__
from plamo_fast.cli import env as env_module
from plamo_fast.cli import main


def run_env(capsys, *args: str) -> str:
    assert main(["env", *args]) == 0
    return capsys.readouterr().out


def hide(monkeypatch, *modules: str) -> None:
    """Make ``modules`` look absent to the report."""
    real = env_module.find_spec
    monkeypatch.setattr(env_module, "find_spec", lambda m: None if m in modules else real(m))


def test_text_report_has_the_base_fields(capsys, monkeypatch):
    hide(monkeypatch, "torch")  # keeps the test fast; torch is covered below
    lines = run_env(capsys).splitlines()
    assert lines[0].startswith("Copy-paste")
    assert f"- plamo-fast: {__version__} (" in lines[2]
    assert f"- Python: {platform.python_version()} {platform.python_implementation()}" in lines[3]
    assert lines[4].startswith(f"- Platform: {platform.platform()} ({platform.machine()}")
    text = "\n".join(lines)
    for label, module in [("numpy", "numpy"), ("pyarrow", "pyarrow")]:
        assert f"- {label}: {importlib.metadata.version(module)}\n" in text
    for label in ("PyTorch", "CUDA", "GPUs", "transformers", "accelerate", "DeepSpeed", "vLLM",
                  "polars", "datasets", "Backends", "Extras"):  # fmt: skip
        assert f"\n- {label}: " in text, label
    assert "- Backends: openai: usable;" in text


def test_json_report_parses(capsys, monkeypatch):
    hide(monkeypatch, "torch")
    info = json.loads(run_env(capsys, "--json"))
    assert info["plamo_fast"]["version"] == __version__
    assert info["python"]["version"] == platform.python_version()
    assert set(info["packages"]) == {m for _, m, _ in env_module.PACKAGES}
    assert info["packages"]["numpy"] == importlib.metadata.version("numpy")
    assert info["packages"]["torch"] is None and info["torch"] is None
    assert info["backends"]["openai"] == "usable"
    assert info["backends"]["hf"].startswith("needs torch")
    assert isinstance(info["extras"], dict)


def test_absent_packages_are_shown_as_not_installed(capsys, monkeypatch):
    hide(monkeypatch, "torch", "vllm", "polars", "deepspeed", "transformers")
    text = run_env(capsys)
    for label in ("PyTorch", "vLLM", "polars", "DeepSpeed", "transformers"):
        assert f"- {label}: not installed\n" in text, label
    assert "- CUDA: unknown (no torch)\n- GPUs: unknown (no torch)\n" in text
    assert "hf: needs torch, transformers (pip install 'plamo-fast[train]')" in text
    assert "vllm: not installed (pip install 'plamo-fast[vllm]')" in text
    assert "auto without --base-url: hf" in text


def test_gpus_as_torch_lists_them(capsys, monkeypatch):
    """A stand-in torch with two GPUs (the tests run without one)."""
    gpus = [("NVIDIA H200", 150_000_000_000), ("NVIDIA H200", 150_000_000_000)]
    fake = types.ModuleType("torch")
    fake.version = types.SimpleNamespace(cuda="12.8")
    fake.backends = types.SimpleNamespace()
    fake.cuda = types.SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: len(gpus),
        get_device_properties=lambda i: types.SimpleNamespace(
            name=gpus[i][0], total_memory=gpus[i][1]
        ),
    )
    monkeypatch.setitem(sys.modules, "torch", fake)
    installed = {"torch": "2.9", "vllm": "0.11"}
    monkeypatch.setattr(env_module, "find_spec", lambda m: object() if m in installed else None)
    monkeypatch.setattr(env_module, "package_version", lambda m, d: installed.get(m))
    text = run_env(capsys)
    assert "- CUDA: 12.8, available: yes\n" in text
    assert "- GPUs: NVIDIA H200 (139.7 GiB), NVIDIA H200 (139.7 GiB)\n" in text
    assert "vllm: usable" in text and "auto without --base-url: vllm" in text
    info = json.loads(run_env(capsys, "--json"))
    assert info["torch"]["gpus"] == [{"name": "NVIDIA H200", "memory_gib": 139.7}] * 2


@pytest.mark.slow
def test_vllm_and_deepspeed_are_never_imported():
    code = (
        "import sys; from plamo_fast.cli.env import collect; collect(); "
        "print(sorted(m for m in ('vllm', 'deepspeed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
