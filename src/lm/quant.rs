//! ggml's tensor types, as a GGUF file stores them, and their values as `f32`.
//!
//! A quantized tensor is a run of blocks, each of a fixed number of values and bytes. Inside a
//! block, small integers `q` and one or two `f16` numbers give each value back:
//!
//! | type | values a block | bytes | a value |
//! |---|---:|---:|---|
//! | `F32`, `F16`, `BF16` | 1 | 4, 2, 2 | itself |
//! | `Q8_0` | 32 | 34 | `d * q`, `q` an `i8` |
//! | `Q4_0` | 32 | 18 | `d * (q - 8)`, `q` 4 bits |
//! | `Q4_1` | 32 | 20 | `d * q + m`, `q` 4 bits |
//! | `Q4_K` | 256 | 144 | `d * s_j * q - dmin * m_j`, 8 sub-blocks of 32 with 6-bit `s_j`, `m_j` |
//! | `Q5_K` | 256 | 176 | as `Q4_K`, `q` 5 bits (its fifth bit stored apart) |
//! | `Q6_K` | 256 | 210 | `d * s_j * (q - 32)`, 16 sub-blocks of 16 with 8-bit `s_j`, `q` 6 bits |
//!
//! Held to the `gguf` Python package's `dequantize`, type by type, by `tests/lm_gguf.rs` on the
//! files that `tests/fixtures/gguf/make_gguf_fixtures.py` writes.

use half::{bf16, f16};

/// A tensor type of ggml that this reader turns into `f32` (its number in a GGUF file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
    BF16,
}

/// Every type number ggml has given a name, for the message that refuses one this reader lacks.
const NAMES: [(u32, &str); 30] = [
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (6, "Q5_0"),
    (7, "Q5_1"),
    (8, "Q8_0"),
    (9, "Q8_1"),
    (10, "Q2_K"),
    (11, "Q3_K"),
    (12, "Q4_K"),
    (13, "Q5_K"),
    (14, "Q6_K"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (30, "BF16"),
    (39, "MXFP4"),
];

impl GgmlType {
    /// The type numbered `id` in a GGUF file, or a message naming it.
    pub fn from_id(id: u32) -> Result<Self, String> {
        Ok(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::BF16,
            other => {
                let name = NAMES.iter().find(|(n, _)| *n == other).map(|(_, s)| *s);
                return Err(format!(
                    "the tensor type {} is not read here: this reader dequantizes F32, F16, \
                     BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K",
                    name.map_or(format!("number {other}"), |n| format!("{n} ({other})"))
                ));
            }
        })
    }

    /// Its name, as llama.cpp writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q8_0 => "Q8_0",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
            Self::BF16 => "BF16",
        }
    }

    /// `(values, bytes)` of one block.
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q8_0 => (32, 34),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q4K => (256, 144),
            Self::Q5K => (256, 176),
            Self::Q6K => (256, 210),
        }
    }

    /// The bytes of `n` values, or `None` when `n` is not a whole number of blocks.
    pub fn bytes_of(self, n: usize) -> Option<usize> {
        let (values, bytes) = self.block();
        n.is_multiple_of(values).then(|| n / values * bytes)
    }

    /// The values of `data`, the blocks of this type one after another.
    pub fn dequantize(self, data: &[u8]) -> Vec<f32> {
        let (values, bytes) = self.block();
        let mut out = Vec::with_capacity(data.len() / bytes * values);
        for block in data.chunks_exact(bytes) {
            match self {
                Self::F32 => out.push(f32::from_le_bytes([block[0], block[1], block[2], block[3]])),
                Self::F16 => out.push(half_at(block, 0)),
                Self::BF16 => out.push(bf16::from_bits(u16_at(block, 0)).to_f32()),
                Self::Q8_0 => q8_0(block, &mut out),
                Self::Q4_0 => q4(half_at(block, 0), 0.0, 8.0, &block[2..18], &mut out),
                Self::Q4_1 => q4(
                    half_at(block, 0),
                    half_at(block, 2),
                    0.0,
                    &block[4..20],
                    &mut out,
                ),
                Self::Q4K => q4_k(block, &mut out),
                Self::Q5K => q5_k(block, &mut out),
                Self::Q6K => q6_k(block, &mut out),
            }
        }
        out
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// The `f16` at byte `at`, as `f32`.
fn half_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16_at(b, at)).to_f32()
}

/// `Q8_0`: `d` (f16), then 32 `i8`.
fn q8_0(block: &[u8], out: &mut Vec<f32>) {
    let d = half_at(block, 0);
    out.extend(block[2..34].iter().map(|&q| d * (q as i8) as f32));
}

/// `Q4_0` (`d`, then 16 bytes `qs`) and `Q4_1` (`d`, `m`, then `qs`): value `j < 16` is the
/// low half of byte `j`, value `j + 16` its high half; `d * (q - offset) + m` (`Q4_0`: offset
/// 8, no `m`; `Q4_1`: no offset).
fn q4(d: f32, m: f32, offset: f32, qs: &[u8], out: &mut Vec<f32>) {
    out.extend(qs.iter().map(|&q| d * ((q & 0xF) as f32 - offset) + m));
    out.extend(qs.iter().map(|&q| d * ((q >> 4) as f32 - offset) + m));
}

/// The scale and the minimum of sub-block `j` (0 to 7) of a `Q4_K` or `Q5_K` block, packed
/// 6 bits each into 12 bytes: sub-blocks 0-3 in the low 6 bits of bytes 0-3 and 4-7; 4-7 in
/// the halves of bytes 8-11, with their top 2 bits in the top bits of bytes 0-7.
fn scale_min(scales: &[u8], j: usize) -> (f32, f32) {
    let (s, m) = if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    };
    (s as f32, m as f32)
}

// ANCHOR: gpus_gguf_q4_k
/// `Q4_K`: `d`, `dmin` (f16), 12 bytes of scales and minimums, 128 bytes of 4-bit values. Each
/// 32 bytes hold two sub-blocks of 32: the low halves, then the high halves.
fn q4_k(block: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (half_at(block, 0), half_at(block, 2));
    let (scales, qs) = (&block[4..16], &block[16..144]);
    for (pair, q) in qs.chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min(scales, 2 * pair);
        let (s2, m2) = scale_min(scales, 2 * pair + 1);
        out.extend(q.iter().map(|&q| d * s1 * (q & 0xF) as f32 - dmin * m1));
        out.extend(q.iter().map(|&q| d * s2 * (q >> 4) as f32 - dmin * m2));
    }
}
// ANCHOR_END: gpus_gguf_q4_k

/// `Q5_K`: as `Q4_K` (`d`, `dmin`, 12 bytes of scales), then 32 bytes holding each value's
/// fifth bit (bit `2 * pair` for the low halves of pair `pair`, the next bit for the high
/// halves), then the 128 bytes of low 4 bits.
fn q5_k(block: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (half_at(block, 0), half_at(block, 2));
    let (scales, qh, qs) = (&block[4..16], &block[16..48], &block[48..176]);
    for (pair, q) in qs.chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min(scales, 2 * pair);
        let (s2, m2) = scale_min(scales, 2 * pair + 1);
        let bit = |l: usize, shift: usize| (((qh[l] >> shift) & 1) << 4) as f32;
        out.extend((0..32).map(|l| d * s1 * ((q[l] & 0xF) as f32 + bit(l, 2 * pair)) - dmin * m1));
        out.extend(
            (0..32).map(|l| d * s2 * ((q[l] >> 4) as f32 + bit(l, 2 * pair + 1)) - dmin * m2),
        );
    }
}

/// `Q6_K`: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 `i8` scales, `d` (f16). Each
/// half of 128 values takes 64 low bytes and 32 high bytes: value `l + 32 k` (`k` 0 to 3) has
/// its low bits in byte `l` (`k` even) or `l + 32` (`k` odd), low half for `k < 2`, and its
/// high bits at bit `2 k` of high byte `l`; sub-block `l / 16 + 2 k` gives its scale.
fn q6_k(block: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, sc) = (&block[0..128], &block[128..192], &block[192..208]);
    let d = half_at(block, 208);
    for half in 0..2 {
        let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &sc[8 * half..]);
        let mut values = [0.0f32; 128];
        for l in 0..32 {
            for k in 0..4 {
                let low = ql[l + 32 * (k % 2)];
                let low = if k < 2 { low & 0xF } else { low >> 4 };
                let q = (low | (((qh[l] >> (2 * k)) & 3) << 4)) as i32 - 32;
                values[l + 32 * k] = d * (sc[l / 16 + 2 * k] as i8) as f32 * q as f32;
            }
        }
        out.extend(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_is_d_times_q() {
        let mut block = f16::from_f32(0.5).to_bits().to_le_bytes().to_vec();
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let v = GgmlType::Q8_0.dequantize(&block);
        assert_eq!(v.len(), 32);
        assert_eq!(v[0], -8.0);
        assert_eq!(v[31], 7.5);
    }

    #[test]
    fn q4_0_puts_the_low_halves_first() {
        let mut block = f16::from_f32(2.0).to_bits().to_le_bytes().to_vec();
        block.extend([0x9Au8; 16]); // low 0xA = 10, high 9
        let v = GgmlType::Q4_0.dequantize(&block);
        assert_eq!(v[..16], [4.0; 16]); // (10 - 8) * 2
        assert_eq!(v[16..], [2.0; 16]); // (9 - 8) * 2
    }

    #[test]
    fn an_unknown_type_is_refused_by_name() {
        let e = GgmlType::from_id(11).unwrap_err();
        assert!(e.contains("Q3_K (11)"), "{e}");
        assert!(GgmlType::from_id(99).unwrap_err().contains("number 99"));
    }

    #[test]
    fn a_partial_block_has_no_size() {
        assert_eq!(GgmlType::Q4K.bytes_of(512), Some(288));
        assert_eq!(GgmlType::Q4K.bytes_of(100), None);
    }
}
