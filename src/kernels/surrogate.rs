//! PPO's and GRPO's clipped surrogate with its ratio, per element, as one operation.

use burn::backend::ndarray::NdArrayTensor;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use ndarray::{ArcArray, IxDyn};

use super::host::*;

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
///
/// Definition: `core::objective::clipped_surrogate` of `core::objective::ratio`. Held to it
/// by `tests/fused.rs`, `fused_clipped_surrogate_gives_the_definitions_values_and_gradients_to_the_bit`.
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
            let state = || SurrogateState {
                logp: logp.primitive.clone(),
                old,
                advantages: adv,
                range: (lo, hi),
            };
            from_host(finish_unary(&logp, state, loss))
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

impl UnaryGrad for SurrogateState {
    fn grad(self, upstream: NdArrayTensor) -> NdArrayTensor {
        let (g, lp) = (values(&upstream), values(&self.logp));
        let (old, adv) = (&self.old, &self.advantages);
        let dlogp = slice(&g)
            .iter()
            .zip(slice(&lp))
            .zip(slice(old).iter().zip(slice(adv)))
            .map(|((&g, &lp), (&old, &a))| surrogate_grad(g, (lp - old).exp(), a, self.range));
        array(lp.shape(), dlogp.collect())
    }
}

/// One element of the clipped surrogate, `-min(r A, clamp(r, lo, hi) A)`, ties going to the
/// unclipped side as `min_pair` sends them.
pub(super) fn surrogate(r: f32, a: f32, (lo, hi): (f32, f32)) -> f32 {
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
pub(super) fn surrogate_grad(g: f32, r: f32, a: f32, (lo, hi): (f32, f32)) -> f32 {
    let clipped_is_min = r.clamp(lo, hi) * a < r * a;
    let passes = !clipped_is_min || (lo <= r && r <= hi);
    let dr = if passes { -g * a } else { 0.0 };
    dr * r
}
// ANCHOR_END: fused_clipped_surrogate
