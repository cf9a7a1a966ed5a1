//! PPO's whole minibatch loss (PPO-5) as one operation, with both inputs' gradients.

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use ndarray::{ArcArray, IxDyn};

use super::host::*;
use super::surrogate::{surrogate, surrogate_grad};

// ANCHOR: fused_ppo_loss
/// PPO's whole loss on a minibatch, `algos::ppo::loss`, as one operation: from the
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
///
/// Definition: `algos::ppo::loss`. Held to it by `tests/fused.rs`,
/// `fused_ppo_loss_gives_the_definitions_loss_parts_and_gradients_to_the_bit`.
pub fn ppo_loss<B: Backend>(
    logits: &Tensor<B, 2>,
    state_values: &Tensor<B, 2>,
    targets: PpoTargets<'_, B>,
    coefficients: PpoCoefficients,
) -> Option<(Tensor<B, 1>, PpoLossParts)> {
    let (Host::Tracked(x), Host::Tracked(v)) = (on_host(logits)?, on_host(state_values)?) else {
        return None;
    };
    let [n, k] = logits.dims();
    let targets = HostTargets {
        actions: targets.actions.to_data().convert::<i64>().to_vec().ok()?,
        old_logp: constant(on_host(targets.old_logp)?)?,
        advantages: constant(on_host(targets.advantages)?)?,
        returns: constant(on_host(targets.returns)?)?,
        old_values: constant(on_host(targets.old_values)?)?,
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

    let parts = PpoLossParts {
        pg_loss,
        v_loss,
        entropy,
        logratio,
        ratio: ratio.clone(),
    };
    let prep = NodeBackward::<PpoLossState>::new()
        .prepare::<NoCheckpointing>([x.node.clone(), v.node.clone()]);
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

/// What the loss compares the networks' outputs against, one entry per sample (`[n]`): the
/// constants of the update (none may be tracked by autodiff).
pub struct PpoTargets<'a, B: Backend> {
    pub actions: &'a Tensor<B, 1, Int>,
    /// `log pi_old(a|s)`, recorded when the action was taken.
    pub old_logp: &'a Tensor<B, 1>,
    pub advantages: &'a Tensor<B, 1>,
    /// The value targets.
    pub returns: &'a Tensor<B, 1>,
    /// The critic's values when the data was collected.
    pub old_values: &'a Tensor<B, 1>,
}

/// The loss's coefficients: the clip range `clip` of the ratio (and of the value change,
/// with `clip_vloss`), and the weights of the entropy bonus and the value loss.
#[derive(Clone, Copy, Debug)]
pub struct PpoCoefficients {
    pub clip: f32,
    pub clip_vloss: bool,
    pub ent_coef: f32,
    pub vf_coef: f32,
}

/// The loss's parts, for the metrics: the surrogate's and the value loss's means, the mean
/// entropy, and per sample the log-ratio and the ratio.
#[derive(Clone, Debug, PartialEq)]
pub struct PpoLossParts {
    pub pg_loss: f32,
    pub v_loss: f32,
    pub entropy: f32,
    pub logratio: Vec<f32>,
    pub ratio: Vec<f32>,
}

/// The targets as plain values.
#[derive(Clone, Debug)]
struct HostTargets {
    actions: Vec<i64>,
    old_logp: ArcArray<f32, IxDyn>,
    advantages: ArcArray<f32, IxDyn>,
    returns: ArcArray<f32, IxDyn>,
    old_values: ArcArray<f32, IxDyn>,
}

/// The steps of the value loss (PPO-4) of one sample, `algos::ppo::value_loss`:
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

impl HostTargets {
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
    targets: HostTargets,
    coefficients: PpoCoefficients,
}

impl NodeGrad<2> for PpoLossState {
    fn backward(ops: Ops<Self, 2>, grads: &mut Gradients) {
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
