//! Assignment (a): returns and GAE. Book chapters "The policy gradient and REINFORCE"
//! (eq. RF-3) and "Actor-critic and GAE" (eqs. GAE-1, GAE-2).
//!
//! One environment's rollout of `T` steps: `rewards[t]`, `dones[t]` (the episode ended at step
//! `t`, by termination: nothing comes after it), and for GAE the critic's `values[t] = V(s_t)`
//! and `last_value = V(s_T)`, the value of the observation after the last stored step (the
//! rollout was cut there, so the return must be bootstrapped from it unless `dones[T-1]`).
//!
//! Replace each `todo!()`, then grade: `cargo run -p policy-lab-assignments --bin a_returns_gae`.
#![allow(unused_variables)]

/// Discounted returns `G_t = r_t + gamma * G_{t+1}`, restarting after every `dones[t]`, and
/// `G_{T} = last_value` after the last step (eq. RF-3 with a bootstrap).
pub fn discounted_returns(
    rewards: &[f32],
    dones: &[bool],
    last_value: f32,
    gamma: f32,
) -> Vec<f32> {
    todo!("walk the rollout backwards")
}

/// Generalized advantage estimation: `delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)`
/// (eq. GAE-1) and `A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}` (eq. GAE-2), with
/// `V(s_T) = last_value`. Returns `(advantages, returns)` where `returns = advantages + values`.
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    last_value: f32,
    gamma: f32,
    lambda: f32,
) -> (Vec<f32>, Vec<f32>) {
    todo!("one backward pass, as in the book")
}
