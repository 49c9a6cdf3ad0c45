"""SLERP and linear merges against the numpy reference, on real files through the native core."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import random_storage, write_model
from plamo_fast.errors import ModelMismatchError
from plamo_fast.merge import load_config, merge
from plamo_fast.reference import slerp as ref
from plamo_fast.reference.safetensors_io import read_model


def ordered(dtype: str, storage: np.ndarray) -> np.ndarray:
    """Maps floats to integers whose difference counts ulps (-0 and +0 equal)."""
    if dtype in ("BF16", "F16"):
        bits = storage.view(np.uint16).astype(np.int64)
        sign, mag = bits >> 15, bits & 0x7FFF
    else:
        bits = storage.astype(np.float32).view(np.uint32).astype(np.int64)
        sign, mag = bits >> 31, bits & 0x7FFFFFFF
    return np.where(sign == 1, -mag, mag)


def pair_tensors(dtype: str, seed: int = 0) -> tuple[dict, dict]:
    """Random tensors covering the interesting geometries, including one over several units."""
    rng = np.random.default_rng(seed)
    a, b = {}, {}

    def add(name, x, y):
        a[name], b[name] = (dtype, x), (dtype, y)

    add("random", random_storage(rng, dtype, (64, 48)), random_storage(rng, dtype, (64, 48)))
    base = (rng.standard_normal((300,)) * 0.02).astype(np.float32)
    add(
        "nearly_parallel",
        ref.encode(dtype, base),
        ref.encode(dtype, base + rng.standard_normal(300).astype(np.float32) * 2e-4),
    )
    add("parallel_scaled", ref.encode(dtype, base), ref.encode(dtype, base * np.float32(3)))
    add("anti_parallel", ref.encode(dtype, base), ref.encode(dtype, -base))
    add(
        "both_zero",
        ref.encode(dtype, np.zeros(17, np.float32)),
        ref.encode(dtype, np.zeros(17, np.float32)),
    )
    add("one_zero", ref.encode(dtype, np.zeros(33, np.float32)), random_storage(rng, dtype, (33,)))
    add(
        "tiny_norm",
        ref.encode(dtype, np.full(8, 1e-10, np.float32)),
        random_storage(rng, dtype, (8,)),
    )
    add("scalar", random_storage(rng, dtype, ()), random_storage(rng, dtype, ()))
    add("empty", random_storage(rng, dtype, (0, 4)), random_storage(rng, dtype, (0, 4)))
    # 2.5 units of the native core's 1M-element work units.
    add(
        "multi_unit",
        random_storage(rng, dtype, (2_500_001,), 0.02),
        random_storage(rng, dtype, (2_500_001,), 0.02),
    )
    return a, b


@pytest.mark.parametrize("dtype", ["BF16", "F16", "F32"])
@pytest.mark.parametrize("t", [0.3, 0.5, 0.77])
def test_slerp_matches_reference(tmp_path: Path, dtype: str, t: float):
    ta, tb = pair_tensors(dtype)
    a = write_model(tmp_path / "a", ta, shards=2)
    b = write_model(tmp_path / "b", tb, shards=3)
    result = merge([a, b], t=t, output=tmp_path / "out", max_shard_size="3MB")
    merged = read_model(result.output)
    assert set(merged) == set(ta)
    for name, (stored_dtype, got) in merged.items():
        assert stored_dtype == dtype
        assert got.shape == ta[name][1].shape, name
        expected = ref.slerp(t, dtype, ta[name][1], tb[name][1])
        if dtype == "F32":
            ca, cb = ref.slerp_coefficients(t, ta[name][1], tb[name][1])
            bound = np.maximum(np.abs(ca * ta[name][1]), np.abs(cb * tb[name][1]))
            assert np.all(np.abs(got - expected) <= 1e-6 * bound), name
        else:
            ulps = np.abs(ordered(dtype, got) - ordered(dtype, expected))
            assert ulps.size == 0 or ulps.max() <= 1, name
            # Same float32 operations as the reference: expect the same bits.
            assert np.array_equal(got, expected), name
    assert result.linear_fallbacks >= 3  # nearly parallel, scaled, anti-parallel


@pytest.mark.parametrize("dtype", ["BF16", "F16", "F32"])
def test_t0_and_t1_are_the_inputs_bit_for_bit(tmp_path: Path, dtype: str):
    ta, tb = pair_tensors(dtype, seed=3)
    ta["negative_zero"] = (dtype, ref.encode(dtype, np.array([-0.0, 1.0], np.float32)))
    tb["negative_zero"] = (dtype, ref.encode(dtype, np.array([0.5, -0.0], np.float32)))
    a = write_model(tmp_path / "a", ta)
    b = write_model(tmp_path / "b", tb)
    for t, source in ((0.0, ta), (1.0, tb)):
        merged = read_model(merge([a, b], t=t, output=tmp_path / f"out{t}").output)
        for name, (_, got) in merged.items():
            assert got.tobytes() == source[name][1].tobytes(), (t, name)


def test_output_bytes_do_not_depend_on_thread_count(tmp_path: Path):
    ta, tb = pair_tensors("BF16", seed=4)
    a, b = write_model(tmp_path / "a", ta), write_model(tmp_path / "b", tb)
    outs = [
        merge([a, b], t=0.4, threads=n, output=tmp_path / f"out{n}", max_shard_size="2MB").output
        for n in (1, 2, 3)
    ]
    files = sorted(p.name for p in outs[0].glob("*.safetensors"))
    assert len(files) >= 2
    for out in outs[1:]:
        assert sorted(p.name for p in out.glob("*.safetensors")) == files
        for name in files:
            assert (out / name).read_bytes() == (outs[0] / name).read_bytes()


def test_nan_in_a_checkpoint_is_refused(tmp_path: Path):
    ta, tb = pair_tensors("F32", seed=5)
    bad = ta["random"][1].copy()
    bad[3, 4] = np.nan
    ta["random"] = ("F32", bad)
    a, b = write_model(tmp_path / "a", ta), write_model(tmp_path / "b", tb)
    with pytest.raises(ValueError, match="'random'|\"random\".*NaN"):
        merge([a, b], t=0.5, output=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("dtype", ["BF16", "F32"])
def test_linear_matches_reference(tmp_path: Path, dtype: str):
    rng = np.random.default_rng(6)
    models, storages = [], []
    for k in range(3):
        tensors = {
            "w": (dtype, random_storage(rng, dtype, (1_200_000,))),
            "b": (dtype, random_storage(rng, dtype, (7,))),
        }
        storages.append(tensors)
        models.append(write_model(tmp_path / f"m{k}", tensors))
    weights = [0.5, 0.3, 0.2]
    merged = read_model(
        merge(models, method="linear", weights=weights, output=tmp_path / "out").output
    )
    for name in ("w", "b"):
        expected = ref.linear(weights, dtype, [s[name][1] for s in storages])
        assert np.array_equal(merged[name][1], expected), name


def test_integer_buffers_are_copied_when_identical(tmp_path: Path):
    rng = np.random.default_rng(7)
    ids = np.arange(10, dtype=np.int64)
    ta = {"w": ("BF16", random_storage(rng, "BF16", (4, 4))), "ids": ("I64", ids)}
    tb = {"w": ("BF16", random_storage(rng, "BF16", (4, 4))), "ids": ("I64", ids)}
    a, b = write_model(tmp_path / "a", ta), write_model(tmp_path / "b", tb)
    merged = read_model(merge([a, b], t=0.5, output=tmp_path / "out").output)
    assert np.array_equal(merged["ids"][1], ids)
    tb["ids"] = ("I64", ids + 1)
    b2 = write_model(tmp_path / "b2", tb)
    with pytest.raises(ModelMismatchError, match="ids"):
        merge([a, b2], t=0.5, output=tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def write_layered_pair(tmp_path: Path, layers: int = 5):
    rng = np.random.default_rng(8)
    names = ["model.embed_tokens.weight"]
    for i in range(layers):
        names += [
            f"model.layers.{i}.self_attn.q_proj.weight",
            f"model.layers.{i}.mlp.up_proj.weight",
            f"model.layers.{i}.input_layernorm.weight",
        ]
    names += ["model.norm.weight", "lm_head.weight"]
    ta = {n: ("BF16", random_storage(rng, "BF16", (6, 5))) for n in names}
    tb = {n: ("BF16", random_storage(rng, "BF16", (6, 5))) for n in names}
    return write_model(tmp_path / "a", ta, shards=2), write_model(tmp_path / "b", tb), ta, tb


def expected_t(name: str, layers: int) -> float:
    """Hand-derived mergekit semantics for the config in test_gradient_and_filter_forms_of_t."""
    attn, mlp = [0.0, 0.5, 1.0], [1.0, 0.0]
    if ".layers." not in name:
        return 0.25  # the catch-all value; non-layer tensors sit at position 0
    i = int(name.split(".")[2])
    pos = i / (layers - 1)
    if "self_attn" in name:
        grad = attn
    elif "mlp" in name:
        grad = mlp
    else:
        return 0.25
    scaled = pos * (len(grad) - 1)
    i0 = int(scaled)
    i1 = min(len(grad) - 1, i0 + 1)
    return (1 - (scaled - i0)) * grad[i0] + (scaled - i0) * grad[i1]


def test_gradient_and_filter_forms_of_t(tmp_path: Path):
    a, b, ta, tb = write_layered_pair(tmp_path)
    config = {
        "slices": [
            {
                "sources": [
                    {"model": str(b), "layer_range": [0, 5]},
                    {"model": str(a), "layer_range": [0, 5]},
                ]
            }
        ],
        "merge_method": "slerp",
        "base_model": str(a),
        "parameters": {
            "t": [
                {"filter": "self_attn", "value": [0, 0.5, 1]},
                {"filter": "mlp", "value": [1, 0]},
                {"value": 0.25},
            ]
        },
        "dtype": "bfloat16",
    }
    path = tmp_path / "slerp.yml"
    path.write_text(yaml.safe_dump(config))
    loaded = load_config(path)
    assert loaded.models[0].path == a  # base first even when listed second
    merged = read_model(merge([], config=loaded, output=tmp_path / "out").output)
    checked = 0
    for name, (_, got) in merged.items():
        t = expected_t(name, 5)
        assert np.array_equal(got, ref.slerp(t, "BF16", ta[name][1], tb[name][1])), (name, t)
        checked += 1
    assert checked == len(ta)
    # Spot checks of the derivation itself: first layer attention is A, last is B.
    assert expected_t("model.layers.0.self_attn.q_proj.weight", 5) == 0.0
    assert expected_t("model.layers.4.self_attn.q_proj.weight", 5) == 1.0
    assert expected_t("model.layers.1.mlp.up_proj.weight", 5) == 0.75


def test_linear_config_with_per_model_weights(tmp_path: Path):
    a, b, ta, tb = write_layered_pair(tmp_path, layers=2)
    config = {
        "merge_method": "linear",
        "models": [
            {"model": str(a), "parameters": {"weight": 0.7}},
            {"model": str(b), "parameters": {"weight": [0.1, 0.9]}},
        ],
    }
    path = tmp_path / "linear.yml"
    path.write_text(yaml.safe_dump(config))
    merged = read_model(merge([], config=load_config(path), output=tmp_path / "out").output)
    name = "model.layers.1.mlp.up_proj.weight"  # position 1 -> weight of b = 0.9
    expected = ref.linear([0.7, 0.9], "BF16", [ta[name][1], tb[name][1]])
    assert np.array_equal(merged[name][1], expected)
    name = "model.embed_tokens.weight"  # position 0 -> 0.1
    expected = ref.linear([0.7, 0.1], "BF16", [ta[name][1], tb[name][1]])
    assert np.array_equal(merged[name][1], expected)
