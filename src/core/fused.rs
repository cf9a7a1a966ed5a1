//! Fused kernels: a chain of tensor operations done as one, with its backward written by hand.
//!
//! burn's CPU backend pays for every operation: a fresh array for its result, one pass over
//! memory, and under autodiff a graph node to register, keep and clean. GPT-2's GELU built from
//! `exp` and arithmetic ([`crate::lm::model::gelu_tanh`]) is 14 operations on a block's largest
//! activation, and its backward about twice as many; the log-probability of each sampled token
//! ([`crate::lm::generate::selective_log_softmax`]) is 7 on the full-vocabulary logits; a
//! hidden layer of the toy rungs' MLPs with its `tanh` ([`crate::core::nn::Mlp`]) is 11; PPO's
//! whole minibatch loss ([`crate::algos::ppo::loss`]) about 30. Here each is one pass over the
//! raw `f32` values forward and one backward, and under autodiff a single node (burn's
//! custom-backward API: a [`Backward`] step registered in the graph). [`Adam`] is burn's
//! optimizer step as one pass per parameter instead of about 15 tensor operations. The MLP
//! layer, PPO's surrogate and loss, and Adam do their definitions' operations in the same order,
//! so their numbers are the definitions' to the bit and a run's learning curve does not move.
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
//! take the definitions. [`set_enabled`] turns every kernel off: the assignments' graders do
//! (and the student handout starts with them off), so that a student's definition is what the
//! learners run, and the benchmarks do, to measure the difference in one process. `tests/fused.rs` holds each kernel to its definition: values
//! and gradients within 1e-6.
//!
//! The scalar functions at the end ([`exp`], [`gelu`], [`silu`]) are shared with the host
//! decoder ([`crate::lm::infer`]).

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind, OpsPrep};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamState, AdaptiveMomentumState, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor, TensorMetadata, TensorPrimitive};
use ndarray::{ArcArray, IxDyn};
use rayon::prelude::*;

use crate::algos::ppo::{LossParts, Minibatch, PpoConfig};
use crate::core::nn::TANH_CAP;

/// On by default; the student handout is written with `false` here
/// (`tutorials/assignments/src/handout.rs`), so that a student's own `clipped_surrogate` and
/// `selective_log_softmax` are what their runs call.
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
            let prep = GeluBackward.prepare::<NoCheckpointing>([x.node.clone()]);
            from_host(finish(prep, || x.primitive, y))
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
            let prep = SelectiveLogSoftmaxBackward.prepare::<NoCheckpointing>([l.node.clone()]);
            let state = || SoftmaxState {
                logits: l.primitive,
                log_z,
                targets,
                scale,
            };
            from_host(finish(prep, state, logp))
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

// ANCHOR: fused_clipped_surrogate
/// PPO's clipped surrogate with its ratio, per element, as
/// [`crate::core::objective::clipped_surrogate`] of [`crate::core::objective::ratio`]:
///
/// ```text
/// r = exp(logp - old_logp),   loss = -min(r A, clamp(r, 1 - eps_low, 1 + eps_high) A)
/// ```
///
/// Under autodiff one node, with a gradient for `logp` only (`old_logp` and the advantages
/// are constants of the update; if either is tracked this returns `None`):
///
/// ```text
/// dloss/dlogp = -g A r   where the unclipped side is the minimum, or the ratio is inside the clip range
///             = 0        elsewhere (the clipped side is the minimum and r is outside the range)
/// ```
///
/// The same operations in the same order as the definitions under burn's autodiff (the
/// library's `exp`, ties going to the unclipped side as `min_pair` sends them, the range's
/// ends inside it as `clamp`'s backward has them), so the gradient is the same to the bit and
/// a run's learning curve does not move.
pub fn clipped_surrogate<B: Backend, const D: usize>(
    logp: &Tensor<B, D>,
    old_logp: &Tensor<B, D>,
    advantages: &Tensor<B, D>,
    eps_low: f32,
    eps_high: f32,
) -> Option<Tensor<B, D>> {
    assert_eq!(logp.dims(), old_logp.dims());
    assert_eq!(logp.dims(), advantages.dims());
    let host = on_host(logp)?;
    let (old, adv) = (
        constant(on_host(old_logp)?)?,
        constant(on_host(advantages)?)?,
    );
    let (lo, hi) = (1.0 - eps_low, 1.0 + eps_high);
    let forward = |logp: &NdArrayTensor| {
        let lp = values(logp);
        let loss = slice(&lp)
            .iter()
            .zip(slice(&old))
            .zip(slice(&adv))
            .map(|((&lp, &old), &a)| surrogate((lp - old).exp(), a, (lo, hi)));
        array(lp.shape(), loss.collect())
    };
    Some(match host {
        Host::Plain(logp) => from_host(forward(&logp)),
        Host::Tracked(logp) => {
            let loss = forward(&logp.primitive);
            let prep = SurrogateBackward.prepare::<NoCheckpointing>([logp.node.clone()]);
            let state = || SurrogateState {
                logp: logp.primitive,
                old,
                advantages: adv,
                range: (lo, hi),
            };
            from_host(finish(prep, state, loss))
        }
    })
}

/// What the backward step of [`clipped_surrogate`] needs.
#[derive(Clone, Debug)]
struct SurrogateState {
    logp: NdArrayTensor,
    old: ArcArray<f32, IxDyn>,
    advantages: ArcArray<f32, IxDyn>,
    range: (f32, f32),
}

#[derive(Debug)]
struct SurrogateBackward;

impl Backward<NdArray, 1> for SurrogateBackward {
    type State = SurrogateState;

    fn backward(self, ops: Ops<SurrogateState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let (lo, hi) = s.range;
        unary::<NdArray, _>(ops.parents, ops.node, grads, |grad| {
            let (g, lp) = (values(&grad), values(&s.logp));
            let (old, adv) = (&s.old, &s.advantages);
            let dlogp = slice(&g)
                .iter()
                .zip(slice(&lp))
                .zip(slice(old).iter().zip(slice(adv)))
                .map(|((&g, &lp), (&old, &a))| surrogate_grad(g, (lp - old).exp(), a, (lo, hi)));
            array(lp.shape(), dlogp.collect())
        });
    }
}

/// One element of the clipped surrogate, `-min(r A, clamp(r, lo, hi) A)`, ties going to the
/// unclipped side as `min_pair` sends them.
fn surrogate(r: f32, a: f32, (lo, hi): (f32, f32)) -> f32 {
    let (unclipped, clipped) = (r * a, r.clamp(lo, hi) * a);
    -(if clipped < unclipped {
        clipped
    } else {
        unclipped
    })
}

/// The gradient of [`surrogate`] for `log r`, given the upstream gradient `g`: `-g A r` where
/// the unclipped side is the minimum or `r` is inside the range (its ends included, as
/// `clamp`'s backward has them), else 0.
fn surrogate_grad(g: f32, r: f32, a: f32, (lo, hi): (f32, f32)) -> f32 {
    let clipped_is_min = r.clamp(lo, hi) * a < r * a;
    let passes = !clipped_is_min || (lo <= r && r <= hi);
    let dr = if passes { -g * a } else { 0.0 };
    dr * r
}
// ANCHOR_END: fused_clipped_surrogate

// ANCHOR: fused_ppo_loss
/// PPO's whole loss on a minibatch, [`crate::algos::ppo::loss`], as one operation: from the
/// actor's `logits: [n, actions]` and the critic's `state_values: [n, 1]` to the loss (PPO-5)
/// and its parts. Under autodiff it is one node, where the definition makes about thirty
/// (the log-softmax, the action's log-probability, the entropy, the ratio and surrogate, the
/// clipped value loss, the means and the sum), and its backward step writes the two inputs'
/// gradients in one pass.
///
/// Each step does the definition's operations in the order burn's autodiff does them, the
/// row sums and means with the same ndarray calls as burn's CPU backend, so the loss, its parts
/// and both gradients are the definition's to the bit and a run's learning curve does not move
/// (`tests/fused.rs`). `None` unless both inputs are tracked on `Autodiff<NdArray>` and the
/// minibatch's targets are constants.
pub fn ppo_loss<B: Backend>(
    logits: &Tensor<B, 2>,
    state_values: &Tensor<B, 2>,
    mb: &Minibatch<B>,
    c: &PpoConfig,
) -> Option<(Tensor<B, 1>, LossParts)> {
    let (Host::Tracked(x), Host::Tracked(v)) = (on_host(logits)?, on_host(state_values)?) else {
        return None;
    };
    let [n, k] = logits.dims();
    let targets = PpoTargets {
        actions: mb.actions.to_data().convert::<i64>().to_vec().ok()?,
        old_logp: constant(on_host(&mb.old_logp)?)?,
        advantages: constant(on_host(&mb.advantages)?)?,
        returns: constant(on_host(&mb.returns)?)?,
        old_values: constant(on_host(&mb.old_values)?)?,
    };
    let coefficients = PpoCoefficients {
        clip: c.update.clip_coef,
        clip_vloss: c.update.clip_vloss,
        ent_coef: c.ent_coef,
        vf_coef: c.update.vf_coef,
    };
    let (xs, vs) = (values(&x.primitive), values(&v.primitive));
    let (xs, vs) = (slice(&xs), slice(&vs));
    let t = &targets;
    let (old, adv) = (slice(&t.old_logp), slice(&t.advantages));

    // log pi(.|s): burn's log-softmax, each row shifted by its maximum.
    let mut shifted = Vec::with_capacity(n * k);
    for row in xs.chunks_exact(k) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
        shifted.extend(row.iter().map(|&l| l - max));
    }
    let e1: Vec<f32> = shifted.iter().map(|&s| s.exp()).collect();
    let z = row_sums(&e1, n, k);
    let log_z: Vec<f32> = z.iter().map(|&z| z.ln()).collect();
    let lp: Vec<f32> = (0..n * k).map(|j| shifted[j] - log_z[j / k]).collect();
    // log pi(a|s), the entropy, the ratio (PPO-1) and the clipped surrogate (PPO-2).
    let logp: Vec<f32> = (0..n).map(|i| lp[i * k + t.actions[i] as usize]).collect();
    let e2: Vec<f32> = lp.iter().map(|&l| l.exp()).collect();
    let p_log_p: Vec<f32> = e2.iter().zip(&lp).map(|(&p, &l)| p * l).collect();
    let entropy: Vec<f32> = row_sums(&p_log_p, n, k).iter().map(|&s| -s).collect();
    let logratio: Vec<f32> = logp.iter().zip(old).map(|(&l, &o)| l - o).collect();
    let ratio: Vec<f32> = logratio.iter().map(|&l| l.exp()).collect();
    let range = coefficients.range();
    let pg: Vec<f32> = ratio
        .iter()
        .zip(adv)
        .map(|(&r, &a)| surrogate(r, a, range))
        .collect();
    // The value loss (PPO-4).
    let value_loss: Vec<f32> = (0..n)
        .map(|i| t.value_terms(vs[i], i, &coefficients).loss())
        .collect();
    let (pg_loss, v_loss, entropy) = (mean(&pg), mean(&value_loss), mean(&entropy));
    // eq. (PPO-5).
    let loss = pg_loss - entropy * coefficients.ent_coef + v_loss * coefficients.vf_coef;

    let parts = LossParts {
        pg_loss,
        v_loss,
        entropy,
        logratio,
        ratio: ratio.clone(),
    };
    let prep = PpoLossBackward.prepare::<NoCheckpointing>([x.node.clone(), v.node.clone()]);
    let state = || PpoLossState {
        n,
        k,
        lp,
        e1,
        e2,
        z,
        ratio,
        state_values: vs.to_vec(),
        targets,
        coefficients,
    };
    let loss = from_host(finish(prep, state, array(&[1], vec![loss])));
    Some((loss, parts))
}

/// A minibatch's targets as plain values.
#[derive(Clone, Debug)]
struct PpoTargets {
    actions: Vec<i64>,
    old_logp: ArcArray<f32, IxDyn>,
    advantages: ArcArray<f32, IxDyn>,
    returns: ArcArray<f32, IxDyn>,
    old_values: ArcArray<f32, IxDyn>,
}

#[derive(Clone, Copy, Debug)]
struct PpoCoefficients {
    clip: f32,
    clip_vloss: bool,
    ent_coef: f32,
    vf_coef: f32,
}

/// The steps of the value loss (PPO-4) of one sample, [`crate::algos::ppo::value_loss`]:
/// `unclipped = (v - R)^2`, `clipped = (old_v + clamp(v - old_v, -c, c) - R)^2`.
struct ValueTerms {
    diff: f32,
    unclipped: f32,
    /// `v - old_v`, and it after `clamp`'s first step (capped at `c`; its second raises it to
    /// `-c`).
    change: f32,
    below_max: f32,
    clipped_diff: f32,
    clipped: f32,
    clip_vloss: bool,
}

impl PpoCoefficients {
    /// The ratio's clip range, `[1 - clip, 1 + clip]`.
    fn range(&self) -> (f32, f32) {
        (1.0 - self.clip, 1.0 + self.clip)
    }
}

impl PpoTargets {
    fn value_terms(&self, v: f32, i: usize, c: &PpoCoefficients) -> ValueTerms {
        let (ret, old) = (slice(&self.returns)[i], slice(&self.old_values)[i]);
        let diff = v - ret;
        let change = v - old;
        let below_max = if change > c.clip { c.clip } else { change };
        let clamped = if below_max < -c.clip {
            -c.clip
        } else {
            below_max
        };
        let clipped_diff = (old + clamped) - ret;
        ValueTerms {
            diff,
            unclipped: diff * diff,
            change,
            below_max,
            clipped_diff,
            clipped: clipped_diff * clipped_diff,
            clip_vloss: c.clip_vloss,
        }
    }
}

impl ValueTerms {
    /// `0.5 max(unclipped, clipped)`, or `0.5 unclipped` without `clip_vloss`.
    fn loss(&self) -> f32 {
        if !self.clip_vloss {
            return self.unclipped * 0.5;
        }
        (if self.unclipped < self.clipped {
            self.clipped
        } else {
            self.unclipped
        }) * 0.5
    }

    /// The gradient for `v` given the upstream gradient `g` of [`Self::loss`], as burn's
    /// backward steps make it: `max_pair` sends `g` to the larger side, each square `2 x g`
    /// (as `g x + g x`), `clamp` passes it only inside the range.
    fn grad(&self, g: f32, c: &PpoCoefficients) -> f32 {
        let g = g * 0.5;
        let twice = |g: f32, x: f32| {
            let t = g * x;
            t + t
        };
        if !self.clip_vloss {
            return twice(g, self.diff);
        }
        let clipped_wins = self.unclipped < self.clipped;
        let (g_unclipped, g_clipped) = if clipped_wins { (0.0, g) } else { (g, 0.0) };
        let g_capped = twice(g_clipped, self.clipped_diff);
        let g_below_max = if self.below_max < -c.clip {
            0.0
        } else {
            g_capped
        };
        let g_change = if self.change > c.clip {
            0.0
        } else {
            g_below_max
        };
        twice(g_unclipped, self.diff) + g_change
    }
}

/// What the backward step of [`ppo_loss`] needs from its forward pass.
#[derive(Clone, Debug)]
struct PpoLossState {
    n: usize,
    k: usize,
    /// `log pi(.|s)`, `[n, k]`.
    lp: Vec<f32>,
    /// `exp(l - max)` of the log-softmax, `[n, k]`, and its row sums `z`.
    e1: Vec<f32>,
    z: Vec<f32>,
    /// `pi(.|s) = exp(log pi(.|s))`, `[n, k]`.
    e2: Vec<f32>,
    ratio: Vec<f32>,
    state_values: Vec<f32>,
    targets: PpoTargets,
    coefficients: PpoCoefficients,
}

#[derive(Debug)]
struct PpoLossBackward;

impl Backward<NdArray, 2> for PpoLossBackward {
    type State = PpoLossState;

    fn backward(self, ops: Ops<PpoLossState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let [parent_logits, parent_values] = ops.parents;
        let g = slice(&values(&grads.consume::<NdArray>(&ops.node)))[0];
        let (n, k, c) = (s.n, s.k, &s.coefficients);
        // Through the sum and the difference of (PPO-5), then each mean: 1/n of it per sample.
        let (g_pg, g_entropy, g_value) = (g, -g * c.ent_coef, g * c.vf_coef);
        let per_sample = (1.0f64 / n as f64) as f32;
        if let Some(node) = parent_logits {
            let adv = slice(&s.targets.advantages);
            // The surrogate's gradient for each log pi(a|s) (PPO-2), scattered to its action.
            let mut from_gather = vec![0.0f32; n * k];
            for i in 0..n {
                let g_logp = surrogate_grad(per_sample * g_pg, s.ratio[i], adv[i], c.range());
                from_gather[i * k + s.targets.actions[i] as usize] += g_logp;
            }
            // The entropy's: its mean, its negation, its row sum (the same for each action),
            // then p log p as a product and p = exp(log p).
            let rows = vec![-(per_sample * g_entropy); n];
            let g_row = row_sums(&rows, n, 1);
            let mut g_lp = vec![0.0f32; n * k];
            for j in 0..n * k {
                let g_plogp = 1.0 * g_row[j / k];
                let from_product = g_plogp * s.e2[j];
                let from_exp = (g_plogp * s.lp[j]) * s.e2[j];
                g_lp[j] = from_gather[j] + (from_exp + from_product);
            }
            // The log-softmax: `log p = shifted - log z`, `z` the row sum of `exp(shifted)`.
            let minus: Vec<f32> = g_lp.iter().map(|&g| -g).collect();
            let g_log_z = row_sums(&minus, n, k);
            let g_z: Vec<f32> = g_log_z
                .iter()
                .zip(&s.z)
                .map(|(&g, &z)| g * (1.0 / z))
                .collect();
            let g_e1 = row_sums(&g_z, n, 1);
            let g_x: Vec<f32> = (0..n * k)
                .map(|j| (1.0 * g_e1[j / k]) * s.e1[j] + g_lp[j])
                .collect();
            grads.register::<NdArray>(node.id, array(&[n, k], g_x));
        }
        if let Some(node) = parent_values {
            let g_v: Vec<f32> = (0..n)
                .map(|i| {
                    let terms = s.targets.value_terms(s.state_values[i], i, c);
                    terms.grad(per_sample * g_value, c)
                })
                .collect();
            grads.register::<NdArray>(node.id, array(&[n, 1], g_v));
        }
    }
}

/// The sum of each row of `[rows, cols]` values, by the ndarray call burn's CPU backend makes
/// for `sum_dim` (so that the bits agree).
fn row_sums(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    ndarray::ArrayView2::from_shape((rows, cols), v)
        .expect("rows x cols values")
        .sum_axis(ndarray::Axis(1))
        .to_vec()
}

/// The mean, by the ndarray call burn's CPU backend makes for `mean`.
fn mean(v: &[f32]) -> f32 {
    ndarray::ArrayView1::from(v).mean().unwrap_or(f32::NAN)
}
// ANCHOR_END: fused_ppo_loss

// ANCHOR: fused_adam
/// Adam (Kingma and Ba, 2015) as burn's `Adam` computes it, with burn's state (so an
/// optimizer's checkpoint is the same file), as one pass over each parameter's values on the
/// CPU backend. burn's own step is about fifteen whole-tensor operations per parameter, each
/// a fresh array; here each value's moments, update and new value are computed in one loop,
/// with the same operations in the same order, so the numbers are burn's to the bit. On other
/// backends, or with the kernels off, it is burn's `Adam`. With `t` the step count, `g` the
/// gradient and `lr` the learning rate:
///
/// ```text
/// m = beta_1 m + (1 - beta_1) g,        v = beta_2 v + (1 - beta_2) g^2
/// c = sqrt(1 - beta_2^t),               p -= lr (m c / (1 - beta_1^t)) / (sqrt(v) + epsilon c)
/// ```
#[derive(Clone)]
pub struct Adam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    burn: burn::optim::Adam,
}

impl Default for Adam {
    fn default() -> Self {
        Self::new()
    }
}

impl Adam {
    /// burn's defaults: `beta_1 = 0.9`, `beta_2 = 0.999`, `epsilon = 1e-5`.
    pub fn new() -> Self {
        Self::with(0.9, 0.999, 1e-5)
    }

    pub fn with_epsilon(self, epsilon: f32) -> Self {
        Self::with(self.beta_1, self.beta_2, epsilon)
    }

    fn with(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        let burn = burn::optim::AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            burn,
        }
    }

    /// The optimizer for a module `M` on the autodiff backend `B`.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Adam, M, B> {
        OptimizerAdaptor::from(self)
    }

    /// One step on host values: `None` unless the tensors are burn-ndarray's (and the kernels
    /// on).
    fn host_step<B: Backend, const D: usize>(
        &self,
        lr: f64,
        tensor: &Tensor<B, D>,
        grad: &Tensor<B, D>,
        state: Option<&AdamState<B, D>>,
    ) -> Option<(Tensor<B, D>, AdamState<B, D>)> {
        let (Host::Plain(p), Host::Plain(g)) = (on_host(tensor)?, on_host(grad)?) else {
            return None;
        };
        let (p, g) = (values(&p), values(&g));
        let moments = match state {
            Some(s) if s.momentum.max_moment_2.is_none() => Some((
                constant(on_host(&s.momentum.moment_1)?)?,
                constant(on_host(&s.momentum.moment_2)?)?,
                s.momentum.time,
            )),
            Some(_) => return None,
            None => None,
        };
        let (b1, b2) = (self.beta_1, self.beta_2);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let n = p.len();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let g = slice(&g);
        let time = match &moments {
            Some((m_old, v_old, time)) => {
                let (m_old, v_old) = (slice(m_old), slice(v_old));
                for i in 0..n {
                    m[i] = m_old[i] * b1 + g[i] * f1;
                    v[i] = v_old[i] * b2 + (g[i] * g[i]) * f2;
                }
                time + 1
            }
            None => {
                for i in 0..n {
                    m[i] = g[i] * f1;
                    v[i] = (g[i] * g[i]) * f2;
                }
                1
            }
        };
        let t = time as i32;
        let correction = (1.0 - b2.powi(t)).sqrt();
        let factor = correction / (1.0 - b1.powi(t));
        let eps = self.epsilon * correction;
        let lr = lr as f32;
        let new: Vec<f32> = slice(&p)
            .iter()
            .zip(m.iter().zip(&v))
            .map(|(&p, (&m, &v))| p - ((m * factor) / (v.sqrt() + eps)) * lr)
            .collect();
        let shape = p.shape().to_vec();
        let tensor = |values: Vec<f32>| from_host::<B, D, _>(array(&shape, values));
        let momentum = AdaptiveMomentumState::new(time, tensor(m), tensor(v));
        Some((tensor(new), AdamState::new(momentum)))
    }
}

impl<B: Backend> SimpleOptimizer<B> for Adam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdamState<B, D>>,
    ) -> (Tensor<B, D>, Option<AdamState<B, D>>) {
        match self.host_step(lr, &tensor, &grad, state.as_ref()) {
            Some((tensor, state)) => (tensor, Some(state)),
            None => self.burn.step(lr, tensor, grad, state),
        }
    }

    fn to_device<const D: usize>(state: AdamState<B, D>, device: &B::Device) -> AdamState<B, D> {
        <burn::optim::Adam as SimpleOptimizer<B>>::to_device(state, device)
    }
}
// ANCHOR_END: fused_adam

// ANCHOR: fused_linear
/// What follows a [`linear`] layer's product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    /// `tanh` as [`crate::core::nn::tanh`] builds it ([`tanh`]), the MLPs' hidden layers.
    Tanh,
    /// GPT-2's tanh GELU ([`gelu`]).
    GeluTanh,
}

/// A linear layer with its activation, `y = act(x W + b)` for `x: [m, k]`, `W: [k, n]` (burn's
/// layout) and an optional `b: [n]`, as one operation: the bias written into the output first
/// and the product added to it, the activation applied in place. Under autodiff one node whose
/// backward is, with `dz = dy * act'(z)` (`z = x W + b`),
///
/// ```text
/// dx = dz Wᵀ,    dW = xᵀ dz,    db = the column sums of dz
/// ```
///
/// The three products are matrixmultiply's `sgemm` (the kernel under burn's CPU backend), cut
/// by rows of their result over the machine's cores when they are large enough ([`gemm`]);
/// each result element is computed by the same arithmetic however the rows are cut, so a run
/// gives the same numbers on any number of cores.
pub fn linear<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Tensor<B, 2>,
    bias: Option<&Tensor<B, 1>>,
    activation: Activation,
) -> Option<Tensor<B, 2>> {
    product(x, weight, false, bias, activation)
}

/// `x Wᵀ` for `W: [n, k]`, as [`linear`] without a bias or an activation (`dW = dzᵀ x`): the
/// tied output layer, `hidden · wteᵀ`.
pub fn matmul_transposed<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Tensor<B, 2>,
) -> Option<Tensor<B, 2>> {
    product(x, weight, true, None, Activation::Identity)
}

/// [`linear`] and [`matmul_transposed`]: `act(x W + b)`, `W` read transposed when `transposed`.
fn product<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Tensor<B, 2>,
    transposed: bool,
    bias: Option<&Tensor<B, 1>>,
    activation: Activation,
) -> Option<Tensor<B, 2>> {
    let [m, k] = x.dims();
    let n = weight.dims()[if transposed { 0 } else { 1 }];
    let shape = LinearShape {
        m,
        k,
        n,
        transposed,
    };
    assert_eq!(shape.weight_dims(), weight.dims(), "x is [{m}, {k}]");
    let forward = |x: &NdArrayTensor, w: &NdArrayTensor, b: Option<&NdArrayTensor>| {
        let (x, w) = (values(x), values(w));
        let (mut z, beta) = match b {
            Some(b) => (slice(&values(b)).repeat(m), 1.0),
            None => (vec![0.0; m * n], 0.0),
        };
        gemm(Matrix::of(&x, m, k), shape.weight(&w), beta, &mut z);
        match activation {
            Activation::Identity => (array(&[m, n], z), None),
            Activation::Tanh => {
                // The library's `exp` one value at a time, then the rest in a loop that
                // vectorizes; `z`'s buffer then keeps what the backward step needs.
                let e: Vec<f32> = z.iter().map(|&z| tanh_exp(z)).collect();
                let y = e.iter().map(|&e| tanh_of_exp(e)).collect();
                z.iter_mut()
                    .zip(&e)
                    .for_each(|(z, &e)| *z = saved_exp(*z, e));
                (array(&[m, n], y), Some(array(&[m, n], z)))
            }
            Activation::GeluTanh => {
                let y = z.iter().map(|&v| gelu(v)).collect();
                (array(&[m, n], y), Some(array(&[m, n], z)))
            }
        }
    };
    let (x, w) = (on_host(x)?, on_host(weight)?);
    let b = match bias {
        Some(b) => Some(on_host(b)?),
        None => None,
    };
    Some(match (x, w, b) {
        (Host::Plain(x), Host::Plain(w), b) => {
            let b = b.map(|b| match b {
                Host::Plain(b) => b,
                Host::Tracked(_) => unreachable!("one backend for the three tensors"),
            });
            from_host(forward(&x, &w, b.as_ref()).0)
        }
        (Host::Tracked(x), Host::Tracked(w), b) => {
            let b = b.map(|b| match b {
                Host::Tracked(b) => b,
                Host::Plain(_) => unreachable!("one backend for the three tensors"),
            });
            let (y, z) = forward(&x.primitive, &w.primitive, b.as_ref().map(|b| &b.primitive));
            let state = LinearState {
                x: x.primitive,
                w: w.primitive,
                z,
                shape,
                activation,
            };
            let (x_node, w_node) = (x.node, w.node);
            let backward = LinearBackward;
            from_host(match b {
                Some(b) => finish(
                    backward.prepare::<NoCheckpointing>([x_node, w_node, b.node]),
                    || state,
                    y,
                ),
                None => finish(
                    backward.prepare::<NoCheckpointing>([x_node, w_node]),
                    || state,
                    y,
                ),
            })
        }
        _ => unreachable!("one backend for the three tensors"),
    })
}

/// Registers a kernel's node in the graph with its backward step (prepared with its `N`
/// parents) and its output `y`; `state`, what the backward step keeps, is made only when a
/// parent wants a gradient.
fn finish<BO, const N: usize>(
    prep: OpsPrep<BO, NdArray, BO::State, NoCheckpointing, N>,
    state: impl FnOnce() -> BO::State,
    y: NdArrayTensor,
) -> FloatTensor<Autodiff<NdArray>>
where
    BO: Backward<NdArray, N>,
{
    match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// The sizes of a [`product`]: `x: [m, k]`, `W: [k, n]`, or `[n, k]` read transposed.
#[derive(Clone, Copy, Debug)]
struct LinearShape {
    m: usize,
    k: usize,
    n: usize,
    transposed: bool,
}

impl LinearShape {
    fn weight_dims(&self) -> [usize; 2] {
        if self.transposed {
            [self.n, self.k]
        } else {
            [self.k, self.n]
        }
    }

    /// The stored weight as the `[k, n]` matrix of the product.
    fn weight<'a>(&self, w: &'a ArcArray<f32, IxDyn>) -> Matrix<'a> {
        let [rows, cols] = self.weight_dims();
        let stored = Matrix::of(w, rows, cols);
        if self.transposed {
            stored.transposed()
        } else {
            stored
        }
    }
}

/// What the backward step of [`product`] needs: its inputs, and what the activation's
/// derivative is computed from (GELU: the pre-activation `z`; tanh: `e^{2z}`, see
/// [`saved_exp`]).
#[derive(Clone, Debug)]
struct LinearState {
    x: NdArrayTensor,
    w: NdArrayTensor,
    z: Option<NdArrayTensor>,
    shape: LinearShape,
    activation: Activation,
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<NdArray, 2> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        linear_backward(ops, grads);
    }
}

impl Backward<NdArray, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        linear_backward(ops, grads);
    }
}

/// `dz = dy * act'(z)`; then `dx = dz Wᵀ`, `dW = xᵀ dz` (for a transposed weight, `dzᵀ x`) and
/// `db` the column sums of `dz`, for each parent (`x`, `W`, then `b` if any) that wants its
/// gradient.
fn linear_backward<const N: usize>(ops: Ops<LinearState, N>, grads: &mut Gradients) {
    let s = ops.state;
    let mut parents = ops.parents.into_iter();
    let (parent_x, parent_w, parent_b) = (
        parents.next().flatten(),
        parents.next().flatten(),
        parents.next().flatten(),
    );
    let node = &ops.node;
    let LinearShape {
        m,
        k,
        n,
        transposed,
    } = s.shape;
    let grad = values(&grads.consume::<NdArray>(node));
    let dz: Vec<f32> = match (&s.z, s.activation) {
        (Some(e), Activation::Tanh) => {
            let e = values(e);
            let (g, e) = (slice(&grad), slice(&e));
            g.iter()
                .zip(e)
                .map(|(&g, &e)| tanh_backward(g, e))
                .collect()
        }
        (Some(z), Activation::GeluTanh) => {
            let z = values(z);
            let (g, z) = (slice(&grad), slice(&z));
            g.iter().zip(z).map(|(&g, &z)| g * gelu_grad(z)).collect()
        }
        _ => slice(&grad).to_vec(),
    };
    let dz_matrix = Matrix::of_slice(&dz, m, n);
    if let Some(node) = parent_x {
        let w = values(&s.w);
        let mut dx = vec![0.0; m * k];
        gemm(dz_matrix, s.shape.weight(&w).transposed(), 0.0, &mut dx);
        grads.register::<NdArray>(node.id, array(&[m, k], dx));
    }
    if let Some(node) = parent_w {
        let x = values(&s.x);
        let x_matrix = Matrix::of(&x, m, k);
        let mut dw = vec![0.0; k * n];
        if transposed {
            gemm(dz_matrix.transposed(), x_matrix, 0.0, &mut dw);
        } else {
            gemm(x_matrix.transposed(), dz_matrix, 0.0, &mut dw);
        }
        grads.register::<NdArray>(node.id, array(&s.shape.weight_dims(), dw));
    }
    if let Some(node) = parent_b {
        let mut db = vec![0.0f32; n];
        for row in dz.chunks_exact(n) {
            db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
        }
        grads.register::<NdArray>(node.id, array(&[n], db));
    }
}

/// A matrix inside a slice: element `(i, j)` at `i * row_stride + j * col_stride`.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// `rows x cols`, row-major.
    pub fn of_slice(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "{} values for {rows} x {cols}",
            data.len()
        );
        Matrix {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    fn of(array: &'a ArcArray<f32, IxDyn>, rows: usize, cols: usize) -> Self {
        Self::of_slice(slice(array), rows, cols)
    }

    /// The same values read as the transpose (no copy).
    pub fn transposed(self) -> Self {
        Matrix {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Rows `start..start + count`.
    fn rows(self, start: usize, count: usize) -> Self {
        Matrix {
            data: &self.data[start * self.row_stride..],
            rows: count,
            ..self
        }
    }
}

/// Products of at least this many multiply-adds are cut over the cores (below it, waking a
/// second thread costs more than it saves).
const PARALLEL_WORK: usize = 1 << 21;

/// `c = a b + beta c` with `c` row-major `[a.rows, b.cols]`, cut by rows of `c` over the cores
/// when the product is large enough ([`PARALLEL_WORK`]).
pub fn gemm(a: Matrix, b: Matrix, beta: f32, c: &mut [f32]) {
    assert_eq!(
        a.cols, b.rows,
        "a is {} x {}, b {} x {}",
        a.rows, a.cols, b.rows, b.cols
    );
    let (m, n) = (a.rows, b.cols);
    let parts = rayon::current_num_threads().min(m / 16).max(1);
    if parts == 1 || m * a.cols * n < PARALLEL_WORK {
        return gemm_one_thread(a, b, beta, c);
    }
    let per_part = m.div_ceil(parts);
    c[..m * n]
        .par_chunks_mut(per_part * n)
        .enumerate()
        .for_each(|(i, c)| gemm_one_thread(a.rows(i * per_part, c.len() / n), b, beta, c));
}

/// [`gemm`] on the calling thread: matrixmultiply's `sgemm`.
pub fn gemm_one_thread(a: Matrix, b: Matrix, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows);
    assert!(c.len() >= m * n);
    let last = |x: &Matrix| (x.rows.max(1) - 1) * x.row_stride + (x.cols.max(1) - 1) * x.col_stride;
    assert!(m == 0 || k == 0 || last(&a) < a.data.len());
    assert!(k == 0 || n == 0 || last(&b) < b.data.len());
    // SAFETY: the asserts keep every index the strides reach inside the three slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
// ANCHOR_END: fused_linear

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

/// The values of a tensor the gradient does not flow into (`None` when it is tracked).
fn constant(t: Host) -> Option<ArcArray<f32, IxDyn>> {
    match t {
        Host::Plain(t) => Some(values(&t)),
        Host::Tracked(t) => (!t.is_tracked()).then(|| values(&t.primitive)),
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
fn tanh_exp(z: f32) -> f32 {
    (capped(z) * 2.0).exp()
}

/// `tanh(z)` from `e = exp(2z)`.
#[inline(always)]
fn tanh_of_exp(e: f32) -> f32 {
    (1.0 / (e + 1.0)) * -2.0 + 1.0
}

/// What [`tanh_backward`] needs: `e = exp(2z)`, or `inf` where `z` is above the cap, whose
/// gradient is 0 (`e` itself never reaches `inf` there: at most `exp(60)`).
#[inline(always)]
fn saved_exp(z: f32, e: f32) -> f32 {
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
fn tanh_backward(g: f32, e: f32) -> f32 {
    if e == f32::INFINITY {
        return 0.0;
    }
    let s = e + 1.0;
    (((g * -2.0) * -(1.0 / (s * s))) * e) * 2.0
}

/// `z` capped at [`TANH_CAP`] as burn's `clamp_max` does it (a NaN stays a NaN).
#[inline(always)]
fn capped(z: f32) -> f32 {
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
