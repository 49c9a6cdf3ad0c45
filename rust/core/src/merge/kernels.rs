//! Numeric kernels of merging, on blocks of float32 values decoded from the stored dtype.
//!
//! SLERP follows mergekit's convention (flatten, float32, norms at or below 1e-8 count as 1,
//! cosine clamped to [-1, 1], linear interpolation when |cos| > 0.9995) so that users get the
//! model they expect. Sums are taken in float64 over fixed-size blocks and combined in a fixed
//! order, so the result does not depend on the number of threads.

pub const DOT_THRESHOLD: f64 = 0.9995;
pub const NORM_EPS: f64 = 1e-8;

/// Sums of squares and of products of two tensors, the statistics SLERP needs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    pub aa: f64,
    pub bb: f64,
    pub ab: f64,
}

impl std::ops::Add for Moments {
    type Output = Moments;

    fn add(self, other: Moments) -> Moments {
        Moments {
            aa: self.aa + other.aa,
            bb: self.bb + other.bb,
            ab: self.ab + other.ab,
        }
    }
}

/// The two weights a SLERP step applies to the original (unnormalized) tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlerpCoefficients {
    pub a: f32,
    pub b: f32,
    /// Whether the tensors were (anti-)parallel enough that linear interpolation was used.
    pub linear: bool,
    pub cosine: f64,
}

/// SLERP weights for interpolation factor `t` (0 gives A, 1 gives B).
///
/// The statistics are exact sums (float64); the coefficient chain then follows mergekit's
/// float32 arithmetic step by step (cosine, angle, products and quotients each rounded to
/// float32, transcendental functions correctly rounded), so that the merged weights agree with
/// mergekit's bit for bit on all but a few elements per million.
pub fn slerp_coefficients(t: f64, m: Moments) -> SlerpCoefficients {
    let t32 = t as f32;
    let one_minus_t32 = 1.0f32 - t32;
    let norm = |sum_sq: f64| {
        let n = sum_sq.sqrt();
        if n > NORM_EPS {
            n
        } else {
            1.0
        }
    };
    let cosine = (m.ab / (norm(m.aa) * norm(m.bb))).clamp(-1.0, 1.0);
    let cos32 = cosine as f32;
    if cos32.abs() > DOT_THRESHOLD as f32 {
        return SlerpCoefficients {
            a: one_minus_t32,
            b: t32,
            linear: true,
            cosine,
        };
    }
    let sin32 = |x: f32| (x as f64).sin() as f32;
    let theta = (cos32 as f64).acos() as f32;
    let sin_theta = sin32(theta);
    SlerpCoefficients {
        a: sin32(one_minus_t32 * theta) / sin_theta,
        b: sin32(t32 * theta) / sin_theta,
        linear: false,
        cosine,
    }
}

const LANES: usize = 8;

#[inline(always)]
fn moments_portable(a: &[f32], b: &[f32]) -> Moments {
    let mut aa = [0f64; LANES];
    let mut bb = [0f64; LANES];
    let mut ab = [0f64; LANES];
    let a_chunks = a.chunks_exact(LANES);
    let b_chunks = b.chunks_exact(LANES);
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            let (xv, yv) = (x[l] as f64, y[l] as f64);
            aa[l] += xv * xv;
            bb[l] += yv * yv;
            ab[l] += xv * yv;
        }
    }
    for (l, (&x, &y)) in a_rest.iter().zip(b_rest).enumerate() {
        let (xv, yv) = (x as f64, y as f64);
        aa[l] += xv * xv;
        bb[l] += yv * yv;
        ab[l] += xv * yv;
    }
    let total = |lanes: [f64; LANES]| lanes.iter().sum::<f64>();
    Moments {
        aa: total(aa),
        bb: total(bb),
        ab: total(ab),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn moments_avx2(a: &[f32], b: &[f32]) -> Moments {
    moments_portable(a, b)
}

/// Sums of squares and products of one block. Every code path performs the same float
/// operations in the same order, so results are identical on every CPU.
pub fn block_moments(a: &[f32], b: &[f32]) -> Moments {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { moments_avx2(a, b) };
    }
    moments_portable(a, b)
}

#[inline(always)]
fn axpby_portable(ca: f32, a: &[f32], cb: f32, b: &[f32], out: &mut [f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = ca * x + cb * y;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpby_avx2(ca: f32, a: &[f32], cb: f32, b: &[f32], out: &mut [f32]) {
    axpby_portable(ca, a, cb, b, out)
}

/// `out = ca * a + cb * b` in float32, two roundings per element (no fused multiply-add),
/// as torch and numpy compute it.
pub fn axpby(ca: f32, a: &[f32], cb: f32, b: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { axpby_avx2(ca, a, cb, b, out) };
    }
    axpby_portable(ca, a, cb, b, out)
}

#[inline(always)]
fn accumulate_scaled_portable(acc: &mut [f32], w: f32, x: &[f32]) {
    for (o, &v) in acc.iter_mut().zip(x) {
        *o = v.mul_add(w, *o);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate_scaled_fma(acc: &mut [f32], w: f32, x: &[f32]) {
    accumulate_scaled_portable(acc, w, x)
}

/// `acc += w * x` in float32 with one rounding per element (a fused multiply-add), as
/// mergekit's `addcmul_` computes it on CPUs with FMA. Where the CPU has no FMA instruction the
/// library's correctly rounded `fmaf` gives the same bits, only slower.
pub fn accumulate_scaled(acc: &mut [f32], w: f32, x: &[f32]) {
    debug_assert_eq!(acc.len(), x.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { accumulate_scaled_fma(acc, w, x) };
    }
    accumulate_scaled_portable(acc, w, x)
}

/// Which of the two tensors has a NaN or infinity, judged from their statistics (a non-finite
/// value makes its own sum of squares non-finite; finite float32 squares cannot overflow a
/// float64 sum): 0 for the first, 1 for the second.
pub fn non_finite_input(m: Moments) -> Option<usize> {
    [m.aa, m.bb].iter().position(|v| !v.is_finite())
}

#[inline(always)]
fn all_below_portable(values: &[f32], limit: f32) -> bool {
    // No early exit, so that the comparison vectorizes; NaN compares false.
    values.iter().fold(true, |ok, v| ok & (v.abs() < limit))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn all_below_avx2(values: &[f32], limit: f32) -> bool {
    all_below_portable(values, limit)
}

/// Whether every value is a number of magnitude below `limit` (false for NaN).
pub fn all_below(values: &[f32], limit: f32) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { all_below_avx2(values, limit) };
    }
    all_below_portable(values, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments_of(a: &[f32], b: &[f32]) -> Moments {
        block_moments(a, b)
    }

    #[test]
    fn endpoints_are_exact() {
        let m = moments_of(&[1.0, 2.0, 3.0], &[-2.0, 0.5, 1.0]);
        let c0 = slerp_coefficients(0.0, m);
        assert_eq!((c0.a, c0.b), (1.0, 0.0));
        let c1 = slerp_coefficients(1.0, m);
        assert_eq!((c1.a, c1.b), (0.0, 1.0));
    }

    #[test]
    fn orthogonal_midpoint_is_symmetric() {
        let m = moments_of(&[1.0, 0.0], &[0.0, 1.0]);
        let c = slerp_coefficients(0.5, m);
        assert!(!c.linear);
        let expected = std::f64::consts::FRAC_PI_4.sin() as f32;
        assert_eq!(c.a, c.b);
        assert!((c.a - expected).abs() < 1e-7);
    }

    #[test]
    fn parallel_antiparallel_and_zero_use_linear() {
        for (a, b) in [
            ([1.0f32, 2.0], [2.0f32, 4.0]),
            ([1.0, 2.0], [-1.0, -2.0]),
            ([0.0, 0.0], [0.0, 0.0]),
        ] {
            let c = slerp_coefficients(0.25, moments_of(&a, &b));
            // all-zero: norms count as 1, cosine 0 -> slerp branch with theta = pi/2
            if a == [0.0, 0.0] {
                assert!(!c.linear);
            } else {
                assert!(c.linear, "{a:?} {b:?}");
                assert_eq!((c.a, c.b), (0.75, 0.25));
            }
        }
    }

    #[test]
    fn moments_match_naive_sums() {
        let a: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.11).cos()).collect();
        let m = moments_of(&a, &b);
        let naive: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        assert!((m.ab - naive).abs() < 1e-9);
        assert_eq!(non_finite_input(m), None);
        assert_eq!(non_finite_input(moments_of(&[f32::NAN], &[1.0])), Some(0));
        assert_eq!(
            non_finite_input(moments_of(&[1.0], &[f32::INFINITY])),
            Some(1)
        );
        assert_eq!(non_finite_input(moments_of(&[f32::MAX], &[f32::MAX])), None);
    }

    #[test]
    fn accumulation_rounds_once() {
        // (1 + 2^-12)² = 1 + 2^-11 + 2^-24 is no float32 (it rounds to 1 + 2^-11): a separate
        // product and sum give 0 here, a fused multiply-add the exact 2^-24.
        let x = 1.0f32 + 2f32.powi(-12);
        let mut acc = [-(1.0f32 + 2f32.powi(-11))];
        accumulate_scaled(&mut acc, x, &[x]);
        assert_eq!(acc[0], 2f32.powi(-24));
        let mut acc = vec![0.5f32; 19];
        let x: Vec<f32> = (0..19).map(|i| i as f32).collect();
        accumulate_scaled(&mut acc, 0.25, &x);
        assert!(acc.iter().zip(&x).all(|(a, v)| *a == 0.5 + 0.25 * v));
    }

    #[test]
    fn all_below_rejects_nan_infinity_and_the_limit() {
        let mut values: Vec<f32> = (0..37).map(|i| i as f32 - 18.0).collect();
        assert!(all_below(&values, 19.0));
        assert!(!all_below(&values, 18.0));
        assert!(all_below(&values, f32::INFINITY));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            values[33] = bad;
            assert!(!all_below(&values, f32::INFINITY), "{bad}");
        }
        assert!(all_below(&[], 1.0));
    }
}
