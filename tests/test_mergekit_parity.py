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
            for seed in (11, 12)
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


@pytest.mark.parametrize(
    "dtype,params",
    [("BF16", "scalar"), ("BF16", "gradient_filter"), ("F16", "scalar_0.3"), ("F32", "scalar")],
)
def test_slerp_agrees_with_mergekit(checkpoints, dtype: str, params: str):
    script = mergekit_yaml()
    root, made = checkpoints
    a, b = made[dtype]
    config = {
        "merge_method": "slerp",
        "base_model": str(a),
        "models": [{"model": str(a)}, {"model": str(b)}],
        "parameters": PARAMETERS[params],
        "dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[dtype],
    }
    path = root / f"{dtype}_{params}.yml"
    path.write_text(yaml.safe_dump(config))
    theirs = root / f"mergekit_{dtype}_{params}"
    if not theirs.exists():
        subprocess.run(
            [str(script), str(path), str(theirs), "--quiet"],
            check=True,
            capture_output=True,
            timeout=900,
        )
    ours = merge([], config=load_config(path), output=root / f"ours_{dtype}_{params}").output

    got, want = read_model(ours), read_model(theirs)
    assert set(got) == set(want)
    inputs_a, inputs_b = read_model(a), read_model(b)
    identical = total = cancelled = 0
    for name, (stored, x) in got.items():
        y = want[name][1]
        assert want[name][0] == stored and x.shape == y.shape, name
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
