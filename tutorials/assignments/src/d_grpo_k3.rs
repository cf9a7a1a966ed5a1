//! Assignment (d): GRPO's group advantages and the k3 KL. Book chapter "GRPO on toy
//! environments" (eqs. GRPO-1, GRPO-3).
//!
//! `rewards` holds whole groups of `group_size` completions (or episodes) of the same prompt,
//! one group after the other.
//!
//! Replace each `todo!()`, then grade: `cargo run -p policy-lab-assignments --bin d_grpo_k3`.
#![allow(unused_variables)]

/// GRPO's advantages, eq. (GRPO-1), group by group, with the standard deviation and the
/// epsilon that TRL uses (the GRPO chapter says which, and why).
pub fn group_zscore(rewards: &[f32], group_size: usize) -> Vec<f32> {
    todo!()
}

/// The leave-one-out (RLOO) advantages of the GRPO chapter, group by group, not scaled.
pub fn leave_one_out(rewards: &[f32], group_size: usize) -> Vec<f32> {
    todo!()
}

/// The k3 estimate of KL(pi || pi_ref) per token, eq. (GRPO-3), from the policy's log-probs
/// `logp` of sampled tokens and the reference's `ref_logp` of the same tokens.
pub fn k3(logp: &[f32], ref_logp: &[f32]) -> Vec<f32> {
    todo!()
}
