//! Element types of safetensors files, and the float conversions the merge kernels use.
//!
//! Merging computes in float32 (the mergekit convention) and rounds once, to nearest-even,
//! back to the stored type.

use crate::error::{Error, Result};

#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl Dtype {
    /// Parses the dtype string of a safetensors header.
    pub fn parse(name: &str) -> Option<Dtype> {
        Some(match name {
            "BOOL" => Dtype::BOOL,
            "U8" => Dtype::U8,
            "I8" => Dtype::I8,
            "F8_E5M2" => Dtype::F8_E5M2,
            "F8_E4M3" => Dtype::F8_E4M3,
            "I16" => Dtype::I16,
            "U16" => Dtype::U16,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I32" => Dtype::I32,
            "U32" => Dtype::U32,
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "I64" => Dtype::I64,
            "U64" => Dtype::U64,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::BOOL => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8_E5M2 => "F8_E5M2",
            Dtype::F8_E4M3 => "F8_E4M3",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::BOOL | Dtype::U8 | Dtype::I8 | Dtype::F8_E5M2 | Dtype::F8_E4M3 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// Types the merge kernels interpolate; anything else must be identical across models.
    pub fn is_mergeable_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
    }

    /// The smallest float32 magnitude that [`encode_f32`] rounds to infinity in this type
    /// (infinity itself where every finite float32 stays finite).
    pub fn overflow_threshold(self) -> f32 {
        match self {
            // Halfway between the largest half (65504) and 65536, which rounds to the even: inf.
            Dtype::F16 => 65520.0,
            // Halfway between the largest bfloat16 (0x7F7F) and inf (0x7F80); ties go to inf.
            Dtype::BF16 => f32::from_bits(0x7F7F_8000),
            _ => f32::INFINITY,
        }
    }
}

/// Decodes little-endian elements of a mergeable float type into float32.
pub fn decode_f32(dtype: Dtype, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let size = dtype.size();
    debug_assert_eq!(bytes.len(), out.len() * size);
    match dtype {
        Dtype::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
            }
        }
        Dtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
        Dtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Dtype::F64 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = f64::from_le_bytes(b.try_into().expect("chunk of 8")) as f32;
            }
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "dtype {} cannot be interpolated",
                other.name()
            )))
        }
    }
    Ok(())
}

/// Rounds float32 to bfloat16 bits, to nearest-even (torch's `.to(torch.bfloat16)`), keeping NaN a NaN.
#[inline(always)]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x0040) as u16;
    }
    let rounding_bias = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding_bias) >> 16) as u16
}

/// Encodes float32 values into little-endian elements of `dtype`, rounding once to nearest-even.
pub fn encode_f32(dtype: Dtype, values: &[f32], out: &mut [u8]) -> Result<()> {
    debug_assert_eq!(out.len(), values.len() * dtype.size());
    match dtype {
        Dtype::BF16 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(values) {
                o.copy_from_slice(&f32_to_bf16_bits(v).to_le_bytes());
            }
        }
        Dtype::F16 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(values) {
                o.copy_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
            }
        }
        Dtype::F32 => {
            for (o, &v) in out.chunks_exact_mut(4).zip(values) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        Dtype::F64 => {
            for (o, &v) in out.chunks_exact_mut(8).zip(values) {
                o.copy_from_slice(&(v as f64).to_le_bytes());
            }
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "dtype {} cannot be interpolated",
                other.name()
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        // 1.0 + 2^-8 is exactly halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(f32_to_bf16_bits(1.0 + 2f32.powi(-8)), 0x3F80);
        // 1.0 + 3 * 2^-8 is halfway and rounds up to the even neighbour.
        assert_eq!(f32_to_bf16_bits(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
        assert_eq!(f32_to_bf16_bits(f32::INFINITY), 0x7F80);
        assert!(f32::from_bits((f32_to_bf16_bits(f32::NAN) as u32) << 16).is_nan());
        for x in [0.1f32, -3.75, 1e-30, 6.5e4, -0.0] {
            assert_eq!(f32_to_bf16_bits(x), half::bf16::from_f32(x).to_bits());
        }
    }

    #[test]
    fn roundtrip_every_float_dtype() {
        for dtype in [Dtype::BF16, Dtype::F16, Dtype::F32, Dtype::F64] {
            let values = [0.5f32, -2.0, 0.0, 1024.0];
            let mut bytes = vec![0u8; values.len() * dtype.size()];
            encode_f32(dtype, &values, &mut bytes).unwrap();
            let mut back = [0f32; 4];
            decode_f32(dtype, &bytes, &mut back).unwrap();
            assert_eq!(back, values, "{dtype:?}");
        }
    }

    #[test]
    fn overflow_threshold_is_where_encoding_becomes_infinite() {
        for dtype in [Dtype::BF16, Dtype::F16, Dtype::F32, Dtype::F64] {
            let limit = dtype.overflow_threshold();
            let below = if limit.is_finite() {
                f32::from_bits(limit.to_bits() - 1)
            } else {
                f32::MAX
            };
            let mut bytes = vec![0u8; 2 * dtype.size()];
            let mut back = [0f32; 2];
            encode_f32(dtype, &[below, limit], &mut bytes).unwrap();
            decode_f32(dtype, &bytes, &mut back).unwrap();
            assert!(back[0].is_finite(), "{dtype:?}: {below} became {}", back[0]);
            assert_eq!(back[1], f32::INFINITY, "{dtype:?}");
        }
    }

    #[test]
    fn integer_dtypes_are_not_interpolated() {
        let mut out = [0f32; 1];
        assert!(decode_f32(Dtype::I64, &[0; 8], &mut out).is_err());
    }
}
