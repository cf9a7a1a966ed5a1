//! The fast paths: chains of tensor operations done as one, with their backward written by
//! hand, beside the definitions they reproduce. A student reads the definitions (`core`,
//! `lm::model`, `algos`); this module is what makes them fast on burn's CPU backend, and
//! [`set_enabled`]`(false)` (or `--kernels off`, or `POLICY_LAB_KERNELS=off`) turns every one
//! of them off, the language model's host decoder ([`crate::lm::infer`]) included, so that the
//! definitions run and give the same numbers.
//!
//! burn's CPU backend pays for every operation: a fresh array for its result, one pass over
//! memory, and under autodiff a graph node to register, keep and clean. Here each chain is one
//! pass over the raw `f32` values forward and one backward, and under autodiff a single node
//! (burn's custom-backward API: a `Backward` step registered in the graph).
//!
//! | kernel | the definition it reproduces | held to it by (`tests/fused.rs`) |
//! |---|---|---|
//! | [`gelu_tanh`] | `lm::model::gelu_tanh` (14 operations) | values and gradients within 1e-6 |
//! | [`selective_log_softmax`] | `lm::generate::selective_log_softmax` (7) | values and gradients within 1e-6 |
//! | [`linear`] with [`Activation::Tanh`] | `core::nn::Mlp`'s layer: burn's `Linear`, then `core::nn::tanh` (11) | to the bit |
//! | [`linear`], [`matmul_transposed`] | burn's `Linear` and `matmul` | within 1e-6 |
//! | [`clipped_surrogate`] | `core::objective::clipped_surrogate` of `core::objective::ratio` | to the bit |
//! | [`ppo_loss`] | `algos::ppo::loss` (about 30) | to the bit |
//! | [`Adam`] | `burn::optim::Adam` (about 15 per parameter) | to the bit, and its checkpoints |
//!
//! Each function returns `None` when it has no kernel for the backend, or when the kernels are
//! off, and the caller then runs the readable definition, which stays the specification:
//!
//! ```text
//! let h = kernels::gelu_tanh(&h).unwrap_or_else(|| gelu_tanh(h));
//! ```
//!
//! The kernels run on burn-ndarray's arrays (`NdArray`, and `Autodiff<NdArray>` for
//! gradients). On wgpu and CUDA burn fuses element-wise chains itself, and Flex keeps its own
//! layout; both take the definitions. The assignments' graders turn the kernels off (and the
//! student handout starts with them off), so that a student's definition is what the learners
//! run; the benchmarks turn them off to measure the difference in one process.
//!
//! The scalar functions ([`exp`], [`gelu`], [`silu`], [`tanh`]) are shared with the host
//! decoder ([`crate::lm::infer`]).
//!
//! Nothing here names an algorithm, a run or a language model's types: a kernel takes tensors,
//! plain numbers, or a small struct of its own ([`PpoTargets`], [`PpoCoefficients`]).

mod adam;
mod gelu;
mod host;
mod linear;
mod log_softmax;
mod ppo_loss;
mod scalar;
mod surrogate;

use std::sync::atomic::{AtomicU8, Ordering};

pub use adam::Adam;
pub use gelu::gelu_tanh;
pub use linear::{gemm, gemm_one_thread, linear, matmul_transposed, Activation, Matrix};
pub use log_softmax::selective_log_softmax;
pub use ppo_loss::{ppo_loss, PpoCoefficients, PpoLossParts, PpoTargets};
pub use scalar::{exp, gelu, gelu_grad, silu, tanh, TANH_CAP};
pub use surrogate::clipped_surrogate;

/// The environment variable that starts a process with the kernels off: `off` or `0`.
pub const ENV_VAR: &str = "POLICY_LAB_KERNELS";

/// Unset until first read: then on, unless [`ENV_VAR`] says `off` or `0`; [`set_enabled`]
/// overrides both. The student handout is written with the kernels off by default
/// (`tutorials/assignments/src/handout.rs` rewrites [`DEFAULT`]), so that a student's own
/// `clipped_surrogate` and `selective_log_softmax` are what their runs call.
static STATE: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = 2;

/// Whether the kernels are on when neither [`ENV_VAR`] nor [`set_enabled`] says otherwise.
pub const DEFAULT: bool = true;

/// Turns every kernel on or off (the host decoder included), for the whole process.
pub fn set_enabled(on: bool) {
    STATE.store(on as u8, Ordering::Relaxed);
}

/// Whether the kernels are on.
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        UNSET => {
            let on = match std::env::var(ENV_VAR) {
                Ok(v) => !matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "off" | "0" | "false"
                ),
                Err(_) => DEFAULT,
            };
            // Another thread's `set_enabled` in between wins.
            let _ = STATE.compare_exchange(UNSET, on as u8, Ordering::Relaxed, Ordering::Relaxed);
            STATE.load(Ordering::Relaxed) == 1
        }
        state => state == 1,
    }
}
