//! Scalar functions the kernels and the host decoder (`lm::infer`) share: a vectorizable
//! `exp`, `tanh` as burn computes it, GPT-2's GELU and SiLU.

/// Where `core::nn::tanh` caps its input: `tanh(30) = 1` in f32, `exp(60)` is finite.
pub const TANH_CAP: f32 = 30.0;

/// `e^x` in f32 without a library call, so that loops of it become SIMD code: `x = n ln 2 +
/// r` with `|r| <= ln 2 / 2`, `e^x = 2^n e^r`, `e^r` by its Taylor polynomial to `r^7`
/// (relative error below 2e-7 on that interval) and `2^n` written straight into the exponent
/// bits. Inputs are clamped to `[-87, 88]`, where `e^x` is a normal f32.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so that `n ln 2` is exact in f32 for the n that occur.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and removing 1.5 * 2^23 rounds to the nearest integer (a plain SIMD add).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `tanh(z)` as [`crate::core::nn::tanh`] computes it on burn's CPU backend, operation for
/// operation: `z` capped at [`TANH_CAP`], `e = exp(2z)` (the library's `exp`), then
/// `(1 / (e + 1)) * -2 + 1`. The same values to the bit, so that a run's learning curve does
/// not move with the kernels on.
#[inline(always)]
pub fn tanh(z: f32) -> f32 {
    tanh_of_exp(tanh_exp(z))
}

/// `e = exp(2z)`, `z` capped at [`TANH_CAP`].
#[inline(always)]
pub(super) fn tanh_exp(z: f32) -> f32 {
    (capped(z) * 2.0).exp()
}

/// `tanh(z)` from `e = exp(2z)`.
#[inline(always)]
pub(super) fn tanh_of_exp(e: f32) -> f32 {
    (1.0 / (e + 1.0)) * -2.0 + 1.0
}

/// What [`tanh_backward`] needs: `e = exp(2z)`, or `inf` where `z` is above the cap, whose
/// gradient is 0 (`e` itself never reaches `inf` there: at most `exp(60)`).
#[inline(always)]
pub(super) fn saved_exp(z: f32, e: f32) -> f32 {
    if z > TANH_CAP {
        f32::INFINITY
    } else {
        e
    }
}

/// `g * tanh'(z)` from `e` of [`saved_exp`], in the order burn's autodiff takes
/// [`crate::core::nn::tanh`]'s operations backwards: `+ 1` passes `g`, `* -2` gives `-2g`,
/// `1 / s` (with `s = e + 1`) multiplies by `-1 / (s s)`, `exp` by `e`, `* 2` by 2, and the cap
/// by 0 above it; in all `g 4e / (e + 1)^2 = g (1 - tanh(z)^2)`.
#[inline(always)]
pub(super) fn tanh_backward(g: f32, e: f32) -> f32 {
    if e == f32::INFINITY {
        return 0.0;
    }
    let s = e + 1.0;
    (((g * -2.0) * -(1.0 / (s * s))) * e) * 2.0
}

/// `z` capped at [`TANH_CAP`] as burn's `clamp_max` does it (a NaN stays a NaN).
#[inline(always)]
pub(super) fn capped(z: f32) -> f32 {
    if z > TANH_CAP {
        TANH_CAP
    } else {
        z
    }
}

/// `sqrt(2 / pi)`, GELU's tanh scale.
const GELU_K: f32 = 0.797_884_6;
const GELU_A: f32 = 0.044_715;

/// GPT-2's tanh GELU of one value (as [`crate::lm::model::gelu_tanh`]). With `e = e^{2u}`,
/// `tanh(u) = (e - 1) / (e + 1)`, so `0.5 x (1 + tanh(u)) = x e / (e + 1)`: the same function
/// without the cancellation in `1 + tanh(u)` where `tanh(u)` is near -1 (at `x` below about -3).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    let e = exp(2.0 * (x + GELU_A * x * x * x) * GELU_K);
    x * (e / (e + 1.0))
}

/// The derivative of [`gelu`]: with `s = 1 / (e + 1)`, `1 + tanh(u) = 2 e s` and `1 -
/// tanh(u)^2 = 4 e s^2`, so
///
/// ```text
/// dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx = e s (1 + 2 x s du/dx),
/// du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
/// ```
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    let e = exp(2.0 * (x + GELU_A * x * x * x) * GELU_K);
    let s = 1.0 / (e + 1.0);
    let du = GELU_K * (1.0 + 3.0 * GELU_A * x * x);
    e * s * (1.0 + 2.0 * x * s * du)
}

/// SiLU of one value, `x / (1 + e^{-x})`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_2e_7_relative_of_the_library_exp() {
        let mut worst = 0.0f64;
        for i in -87_000..88_000 {
            let x = i as f32 * 1e-3 + 0.000_37;
            let (ours, std) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((ours - std) / std).abs());
        }
        assert!(worst < 2e-7, "worst relative error {worst:e}");
        // Far below the clamp: the smallest value it gives, not 0, and never NaN.
        assert!(exp(-1e9) > 0.0 && exp(-1e9) < 2e-38);
        assert!(exp(1e9).is_finite());
    }

    #[test]
    fn gelu_grad_is_the_derivative_of_gelu() {
        for i in -400..400 {
            let x = i as f64 * 0.02 + 0.003;
            let h = 1e-3;
            let numeric = (gelu((x + h) as f32) as f64 - gelu((x - h) as f32) as f64) / (2.0 * h);
            let got = gelu_grad(x as f32) as f64;
            assert!(
                (got - numeric).abs() < 2e-3,
                "at {x}: {got} against {numeric}"
            );
        }
    }
}
