"""Parity with the peer, mergekit 0.1.5, run from its own virtualenv on the same checkpoints.

The virtualenv is found through PLAMO_FAST_MERGEKIT_PYTHON or at the places .ci/run and the
benchmarks create it; the test is skipped (not failed) where mergekit is not installed.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from plamo_fast.merge import load_config, merge
from plamo_fast.merge.synthetic import SHAPES, write_random_model
from plamo_fast.reference.safetensors_io import read_model
from plamo_fast.reference.slerp import decode

pytestmark = pytest.mark.peer

CANDIDATES = [
    os.environ.get("PLAMO_FAST_MERGEKIT_PYTHON", ""),
    str(Path.home() / ".cache/plamo-fast/mergekit-0.1.5/bin/python"),
    "/root/venvs/mergekit/bin/python",
]


def mergekit_yaml() -> Path:
    for python in CANDIDATES:
        if python and Path(python).exists():
            script = Path(python).parent / "mergekit-yaml"
            if script.exists():
                return script
    pytest.skip("mergekit 0.1.5 virtualenv not found (set PLAMO_FAST_MERGEKIT_PYTHON)")


# Big enough that the embeddings span several of the native core's work units.
SHAPE = dataclasses.replace(SHAPES["small"], layers=3, vocab=5000)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("peer")
    made = {}
    for dtype in ("BF16", "F16", "F32"):
        made[dtype] = tuple(
            write_random_model(
                root / f"{dtype}_{seed}",
                SHAPE,
                seed=seed,
                dtype=dtype,
                max_shard_bytes=SHAPE.num_bytes(dtype) // 3,
            )
            for seed in (11, 12, 13)
        )
    return root, made


def ulps(dtype: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    def ordered(s):
        bits = s.view(np.uint16).astype(np.int64)
        sign, mag = bits >> 15, bits & 0x7FFF
        return np.where(sign == 1, -mag, mag)

    return np.abs(ordered(x) - ordered(y))


PARAMETERS = {
    "scalar": {"t": 0.5},
    "scalar_0.3": {"t": 0.3},
    "gradient_filter": {
        "t": [
            {"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
            {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]},
            {"value": 0.5},
        ]
    },
}


DTYPE_NAMES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}


def merge_both(root: Path, name: str, config: dict) -> tuple[dict, dict]:
    """Runs mergekit and plamo-fast on the same config; the merged tensors of each."""
    script = mergekit_yaml()
    path = root / f"{name}.yml"
    path.write_text(yaml.safe_dump(config))
    theirs = root / f"mergekit_{name}"
    if not theirs.exists():
        subprocess.run(
            [str(script), str(path), str(theirs), "--quiet"],
            check=True,
            capture_output=True,
            timeout=900,
        )
    ours = merge([], config=load_config(path), output=root / f"ours_{name}").output
    got, want = read_model(ours), read_model(theirs)
    assert set(got) == set(want)
    for tensor, (stored, x) in got.items():
        assert want[tensor][0] == stored and x.shape == want[tensor][1].shape, tensor
    return got, want


@pytest.mark.parametrize(
    "dtype,params",
    [("BF16", "scalar"), ("BF16", "gradient_filter"), ("F16", "scalar_0.3"), ("F32", "scalar")],
)
def test_slerp_agrees_with_mergekit(checkpoints, dtype: str, params: str):
    root, made = checkpoints
    a, b = made[dtype][:2]
    config = {
        "merge_method": "slerp",
        "base_model": str(a),
        "models": [{"model": str(a)}, {"model": str(b)}],
        "parameters": PARAMETERS[params],
        "dtype": DTYPE_NAMES[dtype],
    }
    got, want = merge_both(root, f"{dtype}_{params}", config)
    inputs_a, inputs_b = read_model(a), read_model(b)
    identical = total = cancelled = 0
    for name, (_, x) in got.items():
        y = want[name][1]
        # Where the two products cancel (b close to -(ca/cb)·a), the result is far smaller than
        # its terms and a one-ulp difference in a float32 coefficient, which mergekit's float32
        # reductions cause now and then, moves it by more than one ulp of the result. There
        # the difference must stay within float32 rounding of the terms.
        terms = np.maximum(
            np.abs(decode(dtype, inputs_a[name][1])), np.abs(decode(dtype, inputs_b[name][1]))
        )
        diff = np.abs(decode(dtype, x).astype(np.float64) - decode(dtype, y))
        within_rounding = diff <= 2.0**-21 * terms
        if dtype == "F32":
            assert np.all(within_rounding), name
        else:
            far = (ulps(dtype, x, y) > 1) & ~within_rounding
            assert not far.any(), (name, np.argwhere(far)[:5])
            cancelled += int(np.count_nonzero(ulps(dtype, x, y) > 1))
        bits = np.uint32 if dtype == "F32" else np.uint16
        identical += int(np.count_nonzero(x.view(bits) == y.view(bits)))
        total += x.size
    print(
        f"{dtype} {params}: {identical}/{total} = {identical / total:.6%} bit-identical, "
        f"{cancelled} elements over 1 ulp where the products cancel"
    )
    if dtype != "F32":
        assert identical / total >= 0.9999, f"{identical}/{total} bit-identical"


# Per-model weights (mergekit's linear takes them from each model's parameters), as a number,
# a gradient across the layers, or filter conditions; `normalize` at the top level.
LINEAR = {
    "three_weighted": ([0.5, 0.3, 0.2], {}),
    "unnormalized": ([0.7, 0.6], {"normalize": False}),
    "gradient_filter": (
        [
            [
                {"filter": "self_attn", "value": [0.1, 0.9]},
                {"filter": "mlp", "value": 0.3},
                {"value": 1},
            ],
            [0.25, 0.5, 1.0],
        ],
        {},
    ),
}


@pytest.mark.parametrize(
    "dtype,params",
    [
        ("BF16", "three_weighted"),
        ("BF16", "gradient_filter"),
        ("F16", "unnormalized"),
        ("F32", "three_weighted"),
    ],
)
def test_linear_agrees_with_mergekit(checkpoints, dtype: str, params: str):
    """mergekit's linear merge computes in float32 (multiply, then add, model by model, then
    divide by the sum of the weights) and rounds once to the stored dtype, as plamo-fast does:
    the same bits everywhere."""
    root, made = checkpoints
    weights, parameters = LINEAR[params]
    models = made[dtype][: len(weights)]
    config = {
        "merge_method": "linear",
        "models": [
            {"model": str(m), "parameters": {"weight": w}}
            for m, w in zip(models, weights, strict=True)
        ],
        "parameters": parameters,
        "dtype": DTYPE_NAMES[dtype],
    }
    got, want = merge_both(root, f"linear_{dtype}_{params}", config)
    bits = np.uint32 if dtype == "F32" else np.uint16
    for name, (_, x) in got.items():
        y = want[name][1]
        different = np.flatnonzero(x.view(bits) != y.view(bits))
        assert different.size == 0, (name, different[:5], x.ravel()[different[:5]])
