"""Reference SLERP and linear merging in numpy, following the mergekit convention.

Per tensor: flatten, compute in float32 (statistics in float64), a norm at or below 1e-8 counts
as 1, cosine clamped to [-1, 1], linear interpolation when |cos| > 0.9995, otherwise
``sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b`` on the original tensors, one rounding back to the
stored dtype.
"""

from __future__ import annotations

import math

import numpy as np

DOT_THRESHOLD = 0.9995
NORM_EPS = 1e-8


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16 bits, NaN kept quiet."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
    nan = np.isnan(x)
    rounded = np.where(nan, (bits >> 16) | 0x0040, rounded)
    return rounded.astype(np.uint16)


def decode(dtype: str, storage: np.ndarray) -> np.ndarray:
    if dtype == "BF16":
        return bf16_bits_to_f32(storage)
    return storage.astype(np.float32)


def encode(dtype: str, values: np.ndarray) -> np.ndarray:
    if dtype == "BF16":
        return f32_to_bf16_bits(values)
    return values.astype({"F16": np.float16, "F32": np.float32, "F64": np.float64}[dtype])


def slerp_coefficients(t: float, a: np.ndarray, b: np.ndarray) -> tuple[np.float32, np.float32]:
    """Exact statistics (float64), then mergekit's float32 coefficient chain: every product and
    quotient rounded to float32, sin/acos correctly rounded to float32."""
    a64 = a.astype(np.float64).ravel()
    b64 = b.astype(np.float64).ravel()
    norm_a = math.sqrt(float(np.dot(a64, a64)))
    norm_b = math.sqrt(float(np.dot(b64, b64)))
    norm_a = norm_a if norm_a > NORM_EPS else 1.0
    norm_b = norm_b if norm_b > NORM_EPS else 1.0
    cos32 = np.float32(min(1.0, max(-1.0, float(np.dot(a64, b64)) / (norm_a * norm_b))))
    t32 = np.float32(t)
    one_minus_t32 = np.float32(1.0) - t32
    if abs(cos32) > np.float32(DOT_THRESHOLD):
        return one_minus_t32, t32

    def sin32(x: np.float32) -> np.float32:
        return np.float32(math.sin(float(x)))

    theta = np.float32(math.acos(float(cos32)))
    sin_theta = sin32(theta)
    return sin32(one_minus_t32 * theta) / sin_theta, sin32(t32 * theta) / sin_theta


def slerp(t: float, dtype: str, a_storage: np.ndarray, b_storage: np.ndarray) -> np.ndarray:
    """Merged storage values (uint16 bits for BF16) of one tensor."""
    if t == 0.0:
        return a_storage.copy()
    if t == 1.0:
        return b_storage.copy()
    a = decode(dtype, a_storage)
    b = decode(dtype, b_storage)
    ca, cb = slerp_coefficients(t, a, b)
    return encode(dtype, ca * a + cb * b)


def fma32(x: np.ndarray, w: np.float32, acc: np.ndarray) -> np.ndarray:
    """Correctly rounded float32 ``x * w + acc`` (one rounding, as a fused multiply-add).

    The product of two float32 values is exact in float64, and so is the sum ``s`` plus its
    error ``e`` (TwoSum). Rounding ``s`` to float32 is right unless ``s`` lies exactly halfway
    between two float32 values and ``e`` is not zero; then ``e`` says which side is nearer."""
    p = x.astype(np.float64) * np.float64(w)
    a = acc.astype(np.float64)
    s = a + p
    v = s - a
    e = (a - (s - v)) + (p - v)
    r = s.astype(np.float32)
    toward = np.where(s > r.astype(np.float64), np.float32(np.inf), np.float32(-np.inf))
    other = np.nextafter(r, toward.astype(np.float32))
    halfway = (r.astype(np.float64) + other.astype(np.float64)) / 2 == s
    wrong_side = halfway & (e != 0) & ((e > 0) == (other > r))
    return np.where(wrong_side, other, r).astype(np.float32)


def linear(
    weights: list[float], dtype: str, storages: list[np.ndarray], normalize: bool = True
) -> np.ndarray:
    """Weighted average ``Σ w_i x_i / Σ w_i`` in float32: a fused multiply-add per model (as
    mergekit's ``addcmul_``), the division, one rounding to the stored dtype at the end."""
    w32 = [np.float32(w) for w in weights]
    acc = np.zeros(storages[0].shape, dtype=np.float32)
    for w, s in zip(w32, storages, strict=True):
        acc = fma32(decode(dtype, s), w, acc)
    if normalize:
        acc = acc / np.float32(sum(w32, np.float32(0)))
    return encode(dtype, acc)
