//! Assignment (b): PPO's clipped loss. Book chapter "PPO" (eqs. PPO-1, PPO-2).
//!
//! A minibatch of `n` samples: the new policy's `logp[i] = log pi(a_i|s_i)`, the policy that
//! collected them `old_logp[i]`, and the advantages `adv[i]`.
//!
//! Replace each `todo!()`, then grade: `cargo run -p policy-lab-assignments --bin b_ppo_clip`.
#![allow(unused_variables)]

/// The probability ratios of eq. (PPO-1), one per sample, from the log-probabilities.
pub fn ratios(logp: &[f32], old_logp: &[f32]) -> Vec<f32> {
    todo!()
}

/// The clipped surrogate objective of eq. (PPO-2) with clip range `eps`, averaged over the
/// minibatch and negated, so that it is a loss to minimize.
pub fn clipped_loss(logp: &[f32], old_logp: &[f32], adv: &[f32], eps: f32) -> f32 {
    todo!()
}

/// The fraction of the minibatch's samples that the clip of eq. (PPO-2) acts on, as CleanRL
/// logs it (`clipfrac`; the PPO chapter's "The diagnostics").
pub fn clip_fraction(logp: &[f32], old_logp: &[f32], eps: f32) -> f32 {
    todo!()
}
