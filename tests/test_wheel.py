"""The abi3 wheel installs in a fresh virtualenv without torch, and `plamo-fast merge` works
from it. Builds the wheel with maturin unless PLAMO_FAST_WHEEL names one already built."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from plamo_fast.merge.synthetic import SHAPES, write_random_model

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def build_wheel(out: Path) -> Path:
    given = os.environ.get("PLAMO_FAST_WHEEL")
    if given:
        return Path(given)
    subprocess.run(
        [sys.executable, "-m", "maturin", "build", "--release", "-q", "-o", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("plamo_fast-*.whl")
    return wheel


def test_wheel_installs_without_torch_and_merges(tmp_path: Path):
    wheel = build_wheel(tmp_path / "dist")
    assert "abi3" in wheel.name
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.lower()
    for heavy in ("torch", "vllm", "transformers"):
        assert f"\n{heavy}==" not in f"\n{installed}", f"{heavy} pulled by the base install"

    write_random_model(tmp_path / "a", SHAPES["tiny"], seed=1)
    write_random_model(tmp_path / "b", SHAPES["tiny"], seed=2)
    proc = subprocess.run(
        [str(env_dir / "bin" / "plamo-fast"), "merge", "a", "b", "--t", "0.5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "a+b.slerp-t0.5"
    assert (out / "model.safetensors.index.json").exists()
    check = subprocess.run(
        [str(python), "-c", "import sys, plamo_fast.merge; print('torch' in sys.modules)"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "False"
