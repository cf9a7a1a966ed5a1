//! Advantage estimators, as plain functions on slices (the book's chapter on actor-critic
//! and GAE, and the GRPO chapter).
//!
//! * [`gae`]: generalized advantage estimation (Schulman et al., 2016), eq. (GAE-1, GAE-2);
//! * [`discounted_returns`]: Monte-Carlo returns, REINFORCE's eq. (RF-3);
//! * [`group_advantages`]: GRPO's group-relative advantages, as Hugging Face TRL computes
//!   them, eq. (GRPO-1), with the leave-one-out baseline and no-scaling variants;
//! * [`normalize`]: zero mean, unit standard deviation.
//!
//! Rollouts are stored time-major: index `t * num_envs + i` is step `t` of copy `i`.

use serde::{Deserialize, Serialize};

/// Generalized advantage estimation over a time-major rollout.
///
/// For every step, `next_values[k]` must already be the bootstrap value of what follows:
/// `0` when the step *terminated* the episode, `V(final observation)` when it was
/// *truncated*, `V(s_{t+1})` otherwise. `episode_ends[k]` is true when the step ended an
/// episode either way: the sum stops there.
///
/// ```text
/// delta_t = r_t + gamma * next_value_t - V(s_t)                        (GAE-1)
/// A_t     = delta_t + gamma * lambda * (1 - end_t) * A_{t+1}           (GAE-2)
/// return_t = A_t + V(s_t)         (the critic's regression target)
/// ```
///
/// Returns `(advantages, returns)`.
// ANCHOR: ac_gae
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    next_values: &[f32],
    episode_ends: &[bool],
    num_envs: usize,
    gamma: f32,
    lambda: f32,
) -> (Vec<f32>, Vec<f32>) {
    let n = rewards.len();
    assert!(
        values.len() == n
            && next_values.len() == n
            && episode_ends.len() == n
            && n.is_multiple_of(num_envs),
        "gae: every input needs one entry per step, a whole number of steps per copy"
    );
    // Assignment (a) begins: one backward pass per copy, eqs. (GAE-1, GAE-2), then the returns.
    let mut adv = vec![0.0; n];
    let mut next_adv = vec![0.0f32; num_envs];
    for k in (0..n).rev() {
        let i = k % num_envs;
        let delta = rewards[k] + gamma * next_values[k] - values[k];
        let carry = if episode_ends[k] { 0.0 } else { next_adv[i] };
        adv[k] = delta + gamma * lambda * carry;
        next_adv[i] = adv[k];
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, returns)
    // Assignment (a) ends.
}
// ANCHOR_END: ac_gae

// ANCHOR: rf_discounted_returns
/// Discounted returns `G_t = r_t + gamma * G_{t+1}` over a time-major rollout, restarting at
/// each episode end. `bootstrap[k]` is the value added after step `k` when it is the last
/// stored step of an unfinished (or truncated) episode; pass zeros for pure Monte Carlo.
pub fn discounted_returns(
    rewards: &[f32],
    episode_ends: &[bool],
    bootstrap: &[f32],
    num_envs: usize,
    gamma: f32,
) -> Vec<f32> {
    let n = rewards.len();
    assert!(episode_ends.len() == n && bootstrap.len() == n && n.is_multiple_of(num_envs));
    // Assignment (a) begins: G_t = r_t + gamma * G_{t+1} backwards, per copy, eq. (RF-3).
    let mut out = vec![0.0; n];
    let mut next = vec![0.0f32; num_envs];
    let steps = n / num_envs;
    for k in (0..n).rev() {
        let i = k % num_envs;
        let last_stored = k / num_envs == steps - 1;
        let after = if episode_ends[k] || last_stored {
            bootstrap[k]
        } else {
            next[i]
        };
        out[k] = rewards[k] + gamma * after;
        next[i] = out[k];
    }
    out
    // Assignment (a) ends.
}
// ANCHOR_END: rf_discounted_returns

/// The baseline a group's rewards are compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GroupBaseline {
    /// The group mean, `A_i = r_i - mean(r)` (GRPO, TRL).
    Mean,
    /// The mean of the *other* members, `A_i = r_i - mean_{j != i}(r_j)` (RLOO); equal to
    /// `G / (G - 1)` times the mean-centred advantage.
    LeaveOneOut,
}

/// How the centred advantages are scaled (TRL's `scale_rewards`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// Divide by the group's sample standard deviation + 1e-4 (TRL's default, `"group"`).
    Group,
    /// Divide by the standard deviation over the whole batch (`"batch"`).
    Batch,
    /// No division (Dr. GRPO, `"none"`).
    None,
}

/// The `eps` TRL adds to the standard deviation.
pub const GROUP_STD_EPS: f32 = 1e-4;

/// Group-relative advantages: `rewards` holds consecutive groups of `group_size`.
///
/// ```text
/// A_i = (r_i - baseline_i) / (std + 1e-4)        std: sample std (n - 1), per group or batch (GRPO-1)
/// ```
// ANCHOR: grpo_group_advantages
pub fn group_advantages(
    rewards: &[f32],
    group_size: usize,
    baseline: GroupBaseline,
    scale: ScaleRewards,
) -> Vec<f32> {
    assert!(
        group_size >= 2 && rewards.len().is_multiple_of(group_size),
        "groups of at least 2, and whole groups"
    );
    // Assignment (d) begins: each baseline and each scaling above, eq. (GRPO-1), with TRL's std.
    let g = group_size as f32;
    let mut adv = Vec::with_capacity(rewards.len());
    for group in rewards.chunks(group_size) {
        let mean = group.iter().sum::<f32>() / g;
        let std = sample_std(group);
        for &r in group {
            let centred = match baseline {
                GroupBaseline::Mean => r - mean,
                GroupBaseline::LeaveOneOut => r - (mean * g - r) / (g - 1.0),
            };
            adv.push(match scale {
                ScaleRewards::Group => centred / (std + GROUP_STD_EPS),
                _ => centred,
            });
        }
    }
    if scale == ScaleRewards::Batch {
        let std = sample_std(rewards);
        adv.iter_mut().for_each(|a| *a /= std + GROUP_STD_EPS);
    }
    adv
    // Assignment (d) ends.
}
// ANCHOR_END: grpo_group_advantages

/// Which groups have rewards that are all equal (their advantages are all zero).
pub fn zero_std_groups(rewards: &[f32], group_size: usize) -> Vec<bool> {
    rewards
        .chunks(group_size)
        .map(|g| g.iter().all(|r| *r == g[0]))
        .collect()
}

/// The sample standard deviation (Bessel-corrected, `n - 1`), as `torch.std` computes it.
pub fn sample_std(x: &[f32]) -> f32 {
    let n = x.len() as f32;
    if x.len() < 2 {
        return 0.0;
    }
    let mean = x.iter().sum::<f32>() / n;
    (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / (n - 1.0)).sqrt()
}

/// Shifts and scales `x` to mean 0 and standard deviation 1: `(x - mean) / (std + eps)`,
/// with the sample std (as `torch.std` in CleanRL's `(adv - adv.mean()) / (adv.std() + 1e-8)`).
pub fn normalize(x: &mut [f32], eps: f32) {
    if x.is_empty() {
        return;
    }
    let mean = x.iter().sum::<f32>() / x.len() as f32;
    let std = sample_std(x);
    x.iter_mut().for_each(|v| *v = (*v - mean) / (std + eps));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn gae_with_lambda_one_is_the_return_minus_the_value() {
        // One copy, three steps, the last one terminates.
        let (r, v) = ([1.0, 2.0, 3.0], [0.5, 0.1, 0.2]);
        let next = [0.1, 0.2, 0.0];
        let (adv, ret) = gae(&r, &v, &next, &[false, false, true], 1, 0.9, 1.0);
        let g2 = 3.0;
        let g1 = 2.0 + 0.9 * g2;
        let g0 = 1.0 + 0.9 * g1;
        close(&ret, &[g0, g1, g2]);
        close(&adv, &[g0 - 0.5, g1 - 0.1, g2 - 0.2]);
    }

    #[test]
    fn gae_with_lambda_zero_is_the_td_error_and_stops_at_episode_ends() {
        // Two copies interleaved: k = t * 2 + i.
        let r = [1.0, 0.0, 1.0, 0.0];
        let v = [0.5, 0.5, 0.5, 0.5];
        let next = [0.7, 0.4, 0.9, 0.3];
        let (adv, _) = gae(&r, &v, &next, &[false, true, false, false], 2, 0.5, 0.0);
        close(
            &adv,
            &[1.0 + 0.35 - 0.5, 0.2 - 0.5, 1.0 + 0.45 - 0.5, 0.15 - 0.5],
        );
        // With lambda = 1, copy 1's step 0 does not see its step 1 (the episode ended).
        let (adv, _) = gae(&r, &v, &next, &[false, true, false, false], 2, 0.5, 1.0);
        assert!((adv[1] - (0.2 - 0.5)).abs() < 1e-6);
        assert!((adv[0] - (1.0 + 0.35 - 0.5 + 0.5 * adv[2])).abs() < 1e-6);
    }

    #[test]
    fn returns_restart_at_episode_ends_and_bootstrap() {
        let r = [1.0, 1.0, 1.0, 1.0];
        let ret = discounted_returns(
            &r,
            &[false, true, false, false],
            &[0.0, 0.0, 0.0, 10.0],
            1,
            0.5,
        );
        close(&ret, &[1.5, 1.0, 1.0 + 0.5 * (1.0 + 5.0), 6.0]);
    }

    #[test]
    fn group_advantages_match_trl() {
        // TRL: (r - mean) / (std(unbiased) + 1e-4) per group.
        let r = [
            1.0, 0.0, 0.0, 1.0, /* second group */ 2.0, 2.0, 2.0, 2.0,
        ];
        let adv = group_advantages(&r, 4, GroupBaseline::Mean, ScaleRewards::Group);
        let std = (4.0f32 * 0.25 / 3.0).sqrt();
        let a = 0.5 / (std + 1e-4);
        close(&adv, &[a, -a, -a, a, 0.0, 0.0, 0.0, 0.0]);
        let none = group_advantages(&r, 4, GroupBaseline::Mean, ScaleRewards::None);
        close(&none, &[0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
        let loo = group_advantages(&r, 4, GroupBaseline::LeaveOneOut, ScaleRewards::None);
        close(
            &loo,
            &[
                1.0 - 1.0 / 3.0,
                -2.0 / 3.0,
                -2.0 / 3.0,
                1.0 - 1.0 / 3.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
        );
        let batch = group_advantages(&r, 4, GroupBaseline::Mean, ScaleRewards::Batch);
        let s = sample_std(&r);
        close(
            &batch,
            &none.iter().map(|x| x / (s + 1e-4)).collect::<Vec<_>>(),
        );
        assert_eq!(zero_std_groups(&r, 4), vec![false, true]);
    }

    #[test]
    fn normalize_gives_zero_mean_unit_std() {
        let mut x = [1.0, 2.0, 3.0, 10.0];
        normalize(&mut x, 1e-8);
        assert!(x.iter().sum::<f32>().abs() < 1e-5);
        assert!((sample_std(&x) - 1.0).abs() < 1e-5);
    }
}
