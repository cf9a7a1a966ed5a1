//! The pieces every policy-gradient objective is built from, as plain tensor functions
//! (the book's PPO and GRPO chapters).
//!
//! Everything works on `[batch, tokens]` tensors with a `[batch, tokens]` mask of 1s and 0s:
//! for a toy environment each row is one step (`tokens = 1`) or one episode's actions; for a
//! language model each row is a completion and each column a generated token. The same
//! functions serve both.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

// ANCHOR: ppo_ratio
/// The probability ratio `pi(a|s) / pi_old(a|s) = exp(log pi - log pi_old)`, eq. (PPO-1).
pub fn ratio<B: Backend, const D: usize>(
    logp: Tensor<B, D>,
    old_logp: Tensor<B, D>,
) -> Tensor<B, D> {
    // Assignment (b) begins: the ratio of eq. (PPO-1), from the two log-probabilities.
    (logp - old_logp).exp()
    // Assignment (b) ends.
}
// ANCHOR_END: ppo_ratio

// ANCHOR: grpo_clipped_surrogate
/// The clipped surrogate loss per token, eq. (PPO-2), with separate low and high clip
/// ranges (DAPO's clip-higher when `eps_high > eps_low`):
///
/// ```text
/// loss = -min(ratio * A, clamp(ratio, 1 - eps_low, 1 + eps_high) * A)
/// ```
pub fn clipped_surrogate<B: Backend, const D: usize>(
    ratio: Tensor<B, D>,
    advantages: Tensor<B, D>,
    eps_low: f32,
    eps_high: f32,
) -> Tensor<B, D> {
    // Assignment (b) begins: the per-token loss of eq. (PPO-2), with the two clip ranges.
    let unclipped = ratio.clone() * advantages.clone();
    let clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * advantages;
    -unclipped.min_pair(clipped)
    // Assignment (b) ends.
}
// ANCHOR_END: grpo_clipped_surrogate

// ANCHOR: grpo_kl
/// An estimator of KL(pi || pi_ref) from samples of pi (Schulman, "Approximating KL
/// divergence", 2020), with `log_r = log pi_ref - log pi`:
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// `k1 = -log_r`: unbiased, high variance, can be negative.
    K1,
    /// `k2 = log_r^2 / 2`: biased, low variance, never negative.
    K2,
    /// `k3 = exp(log_r) - log_r - 1`: unbiased and never negative (GRPO's choice), eq. (GRPO-3).
    K3,
}

/// The per-token KL estimate between the policy and a reference policy.
pub fn kl<B: Backend, const D: usize>(
    logp: Tensor<B, D>,
    ref_logp: Tensor<B, D>,
    estimator: KlEstimator,
) -> Tensor<B, D> {
    // Assignment (d) begins: the three estimators above, per token, eq. (GRPO-3) for k3.
    let log_r = ref_logp - logp;
    match estimator {
        KlEstimator::K1 => -log_r,
        KlEstimator::K2 => log_r.clone() * log_r / 2.0,
        KlEstimator::K3 => log_r.clone().exp() - log_r - 1.0,
    }
    // Assignment (d) ends.
}
// ANCHOR_END: grpo_kl

// ANCHOR: grpo_aggregate
/// How per-token losses become one number, eq. (GRPO-4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Aggregation {
    /// The mean over each row's masked tokens, then the mean over rows (TRL's `grpo`).
    SequenceMean,
    /// The sum over all masked tokens divided by their number (`bnpo`; `dapo` when the
    /// batch is the whole global batch).
    TokenMean,
    /// The sum over all masked tokens divided by a constant (`dr_grpo`: batch size times the
    /// maximum completion length).
    Constant(f32),
}

/// Reduces `[batch, tokens]` per-token values over `mask` to a single value.
pub fn aggregate<B: Backend>(
    per_token: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    how: Aggregation,
) -> Tensor<B, 1> {
    // Assignment (g) begins: each aggregation of eq. (GRPO-4), over the masked tokens only.
    let masked = per_token * mask.clone();
    match how {
        Aggregation::SequenceMean => {
            let per_row = masked.sum_dim(1) / mask.sum_dim(1).clamp_min(1.0);
            per_row.mean().reshape([1])
        }
        Aggregation::TokenMean => {
            masked.sum().reshape([1]) / mask.sum().clamp_min(1.0).reshape([1])
        }
        Aggregation::Constant(c) => masked.sum().reshape([1]) / c,
    }
    // Assignment (g) ends.
}
// ANCHOR_END: grpo_aggregate

/// The masked mean of `x` (for metrics).
pub fn masked_mean<B: Backend>(x: Tensor<B, 2>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    aggregate(x, mask, Aggregation::TokenMean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    fn t(rows: &[&[f32]]) -> Tensor<B, 2> {
        let cols = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(
            burn::tensor::TensorData::new(flat, [rows.len(), cols]),
            &Default::default(),
        )
    }
    fn v(x: Tensor<B, 2>) -> Vec<f32> {
        x.into_data().to_vec().unwrap()
    }
    fn s(x: Tensor<B, 1>) -> f32 {
        x.into_scalar()
    }

    #[test]
    fn clipping_takes_the_pessimistic_side() {
        let ratio = t(&[&[0.5, 1.5, 1.1, 0.7]]);
        let adv = t(&[&[1.0, 1.0, -1.0, -1.0]]);
        // A > 0: min(0.5, 0.8) = 0.5 and min(1.5, 1.2) = 1.2; A < 0: min(-1.1, -1.1), min(-0.7, -0.8).
        let loss = v(clipped_surrogate(ratio.clone(), adv.clone(), 0.2, 0.2));
        assert_eq!(loss, vec![-0.5, -1.2, 1.1, 0.8]);
        // Clip-higher lets a good action's ratio grow to 1.28.
        let loss = v(clipped_surrogate(ratio, adv, 0.2, 0.28));
        assert!((loss[1] + 1.28).abs() < 1e-6);
    }

    #[test]
    fn kl_estimators() {
        let logp = t(&[&[-1.0, -2.0]]);
        let ref_logp = t(&[&[-1.5, -2.0]]);
        let k1 = v(kl(logp.clone(), ref_logp.clone(), KlEstimator::K1));
        let k2 = v(kl(logp.clone(), ref_logp.clone(), KlEstimator::K2));
        let k3 = v(kl(logp, ref_logp, KlEstimator::K3));
        assert_eq!(k1, vec![0.5, 0.0]);
        assert_eq!(k2, vec![0.125, 0.0]);
        assert!((k3[0] - ((-0.5f32).exp() + 0.5 - 1.0)).abs() < 1e-6 && k3[1] == 0.0);
    }

    #[test]
    fn aggregations_follow_trl() {
        // Two completions: 3 tokens and 1 token.
        let loss = t(&[&[1.0, 2.0, 3.0], &[10.0, 99.0, 99.0]]);
        let mask = t(&[&[1.0, 1.0, 1.0], &[1.0, 0.0, 0.0]]);
        assert_eq!(
            s(aggregate(
                loss.clone(),
                mask.clone(),
                Aggregation::SequenceMean
            )),
            (2.0 + 10.0) / 2.0
        );
        assert_eq!(
            s(aggregate(
                loss.clone(),
                mask.clone(),
                Aggregation::TokenMean
            )),
            16.0 / 4.0
        );
        assert_eq!(
            s(aggregate(loss, mask, Aggregation::Constant(2.0 * 3.0))),
            16.0 / 6.0
        );
    }
}
