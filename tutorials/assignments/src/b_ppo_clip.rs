//! Assignment (b): PPO's clipped loss. Book chapter "PPO" (eqs. PPO-1, PPO-2).
//!
//! A minibatch of `n` samples: the new policy's `logp[i] = log pi(a_i|s_i)`, the policy that
//! collected them `old_logp[i]`, and the advantages `adv[i]`.
//!
//! Replace each `todo!()`, then grade: `cargo run -p policy-lab-assignments --bin b_ppo_clip`.
#![allow(unused_variables)]

/// The probability ratios `exp(logp - old_logp)` (eq. PPO-1).
pub fn ratios(logp: &[f32], old_logp: &[f32]) -> Vec<f32> {
    todo!()
}

/// The clipped surrogate loss, averaged over the minibatch (eq. PPO-2, negated to be
/// minimized): `mean_i -min(r_i A_i, clip(r_i, 1 - eps, 1 + eps) A_i)`.
pub fn clipped_loss(logp: &[f32], old_logp: &[f32], adv: &[f32], eps: f32) -> f32 {
    todo!()
}

/// The fraction of samples whose ratio is outside `[1 - eps, 1 + eps]` (CleanRL's `clipfrac`:
/// `|r - 1| > eps`).
pub fn clip_fraction(logp: &[f32], old_logp: &[f32], eps: f32) -> f32 {
    todo!()
}
