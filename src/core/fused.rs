//! Fused kernels: a chain of tensor operations done as one, with its backward written by hand.
//!
//! burn's CPU backend pays for every operation: a fresh array for its result, one pass over
//! memory, and under autodiff a graph node to register, keep and clean. GPT-2's GELU built from
//! `exp` and arithmetic ([`crate::lm::model::gelu_tanh`]) is 14 operations on a block's largest
//! activation, and its backward about twice as many; the log-probability of each sampled token
//! ([`crate::lm::generate::selective_log_softmax`]) is 7 on the full-vocabulary logits. Here
//! each is one pass over the raw `f32` values forward and one backward, and under autodiff a
//! single node (burn's custom-backward API: a [`Backward`] step registered in the graph).
//!
//! Each function returns `None` when it has no kernel for the backend, and the caller then
//! runs the readable definition, which stays the specification:
//!
//! ```text
//! let h = fused::gelu_tanh(&h).unwrap_or_else(|| gelu_tanh(h));
//! ```
//!
//! The kernels run on burn-ndarray's arrays (`NdArray`, and `Autodiff<NdArray>` for gradients).
//! On wgpu and CUDA burn fuses element-wise chains itself, and Flex keeps its own layout; both
//! take the definitions. [`set_enabled`] turns every kernel off: the assignments' graders do,
//! so that a student's definition is what the learners run, and the benchmarks do, to measure
//! the difference in one process. `tests/fused.rs` holds each kernel to its definition: values
//! and gradients within 1e-6.
//!
//! The scalar functions at the end ([`exp`], [`gelu`], [`silu`]) are shared with the host
//! decoder ([`crate::lm::infer`]).

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor, TensorMetadata, TensorPrimitive};
use ndarray::{ArcArray, IxDyn};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns every fused kernel on (the default) or off, for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether the fused kernels are on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

// ANCHOR: fused_gelu
/// GPT-2's tanh GELU, `0.5 x (1 + tanh(u))` with `u = sqrt(2/pi) (x + 0.044715 x^3)`, as one
/// pass ([`gelu`]); under autodiff one node whose backward is [`gelu_grad`]:
///
/// ```text
/// dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2),   t = tanh(u)
/// ```
pub fn gelu_tanh<B: Backend, const D: usize>(x: &Tensor<B, D>) -> Option<Tensor<B, D>> {
    Some(match on_host(x)? {
        Host::Plain(x) => from_host(map(&x, gelu)),
        Host::Tracked(x) => {
            let y = map(&x.primitive, gelu);
            from_host(
                match GeluBackward
                    .prepare::<NoCheckpointing>([x.node.clone()])
                    .compute_bound()
                    .stateful()
                {
                    OpsKind::Tracked(prep) => prep.finish(x.primitive, y),
                    OpsKind::UnTracked(prep) => prep.finish(y),
                },
            )
        }
    })
}

/// The backward step of [`gelu_tanh`]; its state is the input `x`.
#[derive(Debug)]
struct GeluBackward;

impl Backward<NdArray, 1> for GeluBackward {
    type State = NdArrayTensor;

    fn backward(self, ops: Ops<NdArrayTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<NdArray, _>(ops.parents, ops.node, grads, |grad| {
            let (g, x) = (values(&grad), values(&x));
            let dx = slice(&g)
                .iter()
                .zip(slice(&x))
                .map(|(&g, &x)| g * gelu_grad(x));
            array(x.shape(), dx.collect())
        });
    }
}
// ANCHOR_END: fused_gelu

// ANCHOR: fused_selective_log_softmax
/// `log softmax(logits * scale)[target]` for every position, as
/// [`crate::lm::generate::selective_log_softmax`] of `logits * scale` (`scale` is `1 /
/// temperature`), in one pass per row: its maximum, `log_z = max + ln sum exp(l - max)`, and
/// `l[target] - log_z`. Under autodiff one node whose backward is, for each row with upstream
/// gradient `g`,
///
/// ```text
/// d/dl_v = g * scale * ([v = target] - softmax(l * scale)_v)
/// ```
///
/// `logits: [n, t, vocab]`, `targets: [n, t, 1]` → `[n, t, 1]`.
pub fn selective_log_softmax<B: Backend>(
    logits: &Tensor<B, 3>,
    targets: &Tensor<B, 3, Int>,
    scale: f32,
) -> Option<Tensor<B, 3>> {
    let host = on_host(logits)?;
    let [n, t, vocab] = logits.dims();
    let targets: Vec<i64> = targets.to_data().convert::<i64>().to_vec().ok()?;
    assert_eq!(targets.len(), n * t, "one target per position");
    let forward = |l: &NdArrayTensor| {
        let (logp, log_z) = log_softmax_at(slice(&values(l)), vocab, &targets, scale);
        (array(&[n, t, 1], logp), log_z)
    };
    Some(match host {
        Host::Plain(l) => from_host(forward(&l).0),
        Host::Tracked(l) => {
            let (logp, log_z) = forward(&l.primitive);
            from_host(
                match SelectiveLogSoftmaxBackward
                    .prepare::<NoCheckpointing>([l.node.clone()])
                    .compute_bound()
                    .stateful()
                {
                    OpsKind::Tracked(prep) => {
                        let state = SoftmaxState {
                            logits: l.primitive,
                            log_z,
                            targets,
                            scale,
                        };
                        prep.finish(state, logp)
                    }
                    OpsKind::UnTracked(prep) => prep.finish(logp),
                },
            )
        }
    })
}

/// Per row of `vocab` logits: `(log p(target), log_z)`, both of `logits * scale`.
fn log_softmax_at(
    logits: &[f32],
    vocab: usize,
    targets: &[i64],
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut logp = Vec::with_capacity(targets.len());
    let mut log_z = Vec::with_capacity(targets.len());
    for (row, &target) in logits.chunks_exact(vocab).zip(targets) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l)) * scale;
        let sum: f32 = row.iter().map(|&l| exp(l * scale - max)).sum();
        let z = max + sum.ln();
        logp.push(row[target as usize] * scale - z);
        log_z.push(z);
    }
    (logp, log_z)
}

/// What the backward step of [`selective_log_softmax`] needs from its forward pass.
#[derive(Clone, Debug)]
struct SoftmaxState {
    logits: NdArrayTensor,
    log_z: Vec<f32>,
    targets: Vec<i64>,
    scale: f32,
}

#[derive(Debug)]
struct SelectiveLogSoftmaxBackward;

impl Backward<NdArray, 1> for SelectiveLogSoftmaxBackward {
    type State = SoftmaxState;

    fn backward(self, ops: Ops<SoftmaxState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        unary::<NdArray, _>(ops.parents, ops.node, grads, |grad| {
            let (g, logits) = (values(&grad), values(&s.logits));
            let (g, l) = (slice(&g), slice(&logits));
            let vocab = l.len() / s.targets.len();
            let mut dl = vec![0.0f32; l.len()];
            for (r, (out, row)) in dl
                .chunks_exact_mut(vocab)
                .zip(l.chunks_exact(vocab))
                .enumerate()
            {
                let (gs, z) = (g[r] * s.scale, s.log_z[r]);
                for (o, &l) in out.iter_mut().zip(row) {
                    *o = -gs * exp(l * s.scale - z);
                }
                out[s.targets[r] as usize] += gs;
            }
            array(logits.shape(), dl)
        });
    }
}
// ANCHOR_END: fused_selective_log_softmax

/// A tensor's primitive when its backend is burn-ndarray, with or without autodiff.
enum Host {
    Plain(NdArrayTensor),
    Tracked(FloatTensor<Autodiff<NdArray>>),
}

/// `x`'s primitive as a [`Host`] when the kernels are on and `B` is `NdArray` or
/// `Autodiff<NdArray>` (a type check at run time: the functions stay generic over `B`).
fn on_host<B: Backend, const D: usize>(x: &Tensor<B, D>) -> Option<Host> {
    if !enabled() {
        return None;
    }
    let primitive: Box<dyn Any> = Box::new(x.clone().into_primitive().tensor());
    match primitive.downcast::<NdArrayTensor>() {
        Ok(plain) => Some(Host::Plain(*plain)),
        Err(other) => other.downcast().ok().map(|tracked| Host::Tracked(*tracked)),
    }
}

/// Back from a kernel's result to `Tensor<B, D>`; `P` is `B`'s float primitive (what
/// [`on_host`] found).
fn from_host<B: Backend, const D: usize, P: 'static>(primitive: P) -> Tensor<B, D> {
    let primitive: Box<dyn Any> = Box::new(primitive);
    let primitive = primitive
        .downcast::<B::FloatTensorPrimitive>()
        .expect("the backend on_host found");
    Tensor::from_primitive(TensorPrimitive::Float(*primitive))
}

/// An f32 tensor's values in row-major order (shared with the tensor when it is laid out so).
fn values(t: &NdArrayTensor) -> ArcArray<f32, IxDyn> {
    match t.clone() {
        NdArrayTensor::F32(storage) => {
            let a = storage.into_shared();
            if a.is_standard_layout() {
                a
            } else {
                a.as_standard_layout().into_owned().into_shared()
            }
        }
        other => panic!(
            "the fused kernels take f32 tensors, not {:?}",
            other.dtype()
        ),
    }
}

fn slice(a: &ArcArray<f32, IxDyn>) -> &[f32] {
    a.as_slice().expect("row-major")
}

fn array(shape: &[usize], data: Vec<f32>) -> NdArrayTensor {
    NdArrayTensor::from(ArcArray::from_shape_vec(IxDyn(shape), data).expect("shape of the data"))
}

fn map(t: &NdArrayTensor, f: impl Fn(f32) -> f32) -> NdArrayTensor {
    let x = values(t);
    let y = slice(&x).iter().map(|&v| f(v));
    array(x.shape(), y.collect())
}

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
