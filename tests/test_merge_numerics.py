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


@pytest.mark.parametrize("method", ["slerp", "linear"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", [0, 1])
def test_nan_or_infinity_in_a_checkpoint_is_refused(tmp_path: Path, method, bad, which):
    """Either merge method refuses a non-finite input value, naming the tensor and the model,
    and leaves no output behind (linear merges used to write NaN and succeed)."""
    tensors = list(pair_tensors("F32", seed=5))
    poisoned = tensors[which]["multi_unit"][1].copy()
    poisoned[2_400_000] = bad  # in the last work unit
    tensors[which]["multi_unit"] = ("F32", poisoned)
    folders = [write_model(tmp_path / name, t) for name, t in zip("ab", tensors, strict=True)]
    with pytest.raises(ValueError) as caught:
        merge(folders, method=method, t=0.5, output=tmp_path / "out")
    message = str(caught.value)
    assert f'tensor "multi_unit" of model {which + 1} ({folders[which]})' in message
    assert "NaN or infinite" in message
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_linear_overflow_is_refused(tmp_path: Path):
    """Finite inputs whose weighted sum leaves the stored dtype's range (here float16, with a
    negative weight) are refused rather than written as infinity."""
    values = np.array([60000.0, -1.0, 2.0], np.float16)
    a = write_model(tmp_path / "a", {"w": ("F16", values)})
    b = write_model(tmp_path / "b", {"w": ("F16", -values)})
    with pytest.raises(ValueError, match=r'tensor "w": the merged values overflow F16'):
        merge([a, b], method="linear", weights=[2.0, -1.0], output=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # The same weights on values that stay in range merge.
    small = [
        write_model(tmp_path / n, {"w": ("F16", v / 10)})
        for n, v in (("c", values), ("d", -values))
    ]
    merged = merge(small, method="linear", weights=[2.0, -1.0], output=tmp_path / "ok")
    assert np.all(np.isfinite(read_model(merged.output)["w"][1]))


def test_linear_adds_each_model_with_one_rounding(tmp_path: Path):
    """Each model is added with a fused multiply-add, as mergekit's addcmul_ does: here
    -(1 + 2^-11) + (1 + 2^-12)² is 2^-24 exactly, where a separate product and sum give 0."""
    x = np.float32(1 + 2**-12)
    a = write_model(tmp_path / "a", {"w": ("F32", np.array([-(1 + 2**-11)], np.float32))})
    b = write_model(tmp_path / "b", {"w": ("F32", np.array([x], np.float32))})
    out = merge([a, b], method="linear", weights=[1.0, float(x)], output=tmp_path / "out")
    got = read_model(out.output)["w"][1]
    assert got[0] == np.float32(2**-24) / (np.float32(1) + x)
    # The reference rounds once too, also where float64 would round twice.
    assert ref.fma32(np.array([x]), x, np.array([-(1 + 2**-11)], np.float32))[0] == 2**-24
    tie = ref.fma32(
        np.array([1 + 2**-23], np.float32),
        np.float32(2**-24 * (1 - 2**-23)),
        np.array([1 + 2**-23], np.float32),
    )
    assert tie[0] == np.float32(1 + 2**-23)


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
