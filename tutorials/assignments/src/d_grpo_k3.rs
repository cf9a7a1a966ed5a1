//! Assignment (d): GRPO's group advantages and the k3 KL. Book chapter "GRPO on toy
//! environments" (eqs. GRPO-1, GRPO-3).
//!
//! `rewards` holds whole groups of `group_size` completions (or episodes) of the same prompt,
//! one group after the other.
//!
//! Replace each `todo!()`, then grade: `cargo run -p policy-lab-assignments --bin d_grpo_k3`.
#![allow(unused_variables)]

/// GRPO's advantages (eq. GRPO-1): each reward minus its group's mean, divided by the group's
/// sample standard deviation (n - 1 in the denominator, as torch.std) plus `1e-4`.
pub fn group_zscore(rewards: &[f32], group_size: usize) -> Vec<f32> {
    todo!()
}

/// Leave-one-out advantages: each reward minus the mean of the *other* rewards of its group
/// (no scaling).
pub fn leave_one_out(rewards: &[f32], group_size: usize) -> Vec<f32> {
    todo!()
}

/// The k3 estimate of KL(pi || pi_ref) per token (eq. GRPO-3), from the policy's log-probs
/// `logp` of sampled tokens and the reference's `ref_logp` of the same tokens:
/// with `log_r = ref_logp - logp`, `k3 = exp(log_r) - log_r - 1`.
pub fn k3(logp: &[f32], ref_logp: &[f32]) -> Vec<f32> {
    todo!()
}
