//! Assignment (a)'s cases: random time-major rollouts with terminations, truncations and
//! several copies, their returns, and their GAE at three values of lambda.

use policy_lab::core::advantage;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// A time-major rollout of `num_envs` copies (index `t * num_envs + i`), as policy-lab's
/// advantage functions take it, with episodes that end by termination (nothing follows: the
/// next value is 0) and by truncation (a time limit: the next value is V of the final
/// observation, not 0).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rollout {
    pub rewards: Vec<f32>,
    pub values: Vec<f32>,
    /// What follows each step: 0 after a termination, V(final observation) after a
    /// truncation, V(s_{t+1}) otherwise (and V(s_T) after the last stored step).
    pub next_values: Vec<f32>,
    pub episode_ends: Vec<bool>,
    /// For `discounted_returns`: the value added after a step that ends an episode or is the
    /// last stored step (0 after a termination).
    pub bootstrap: Vec<f32>,
    pub num_envs: usize,
    pub gamma: f32,
}

impl Rollout {
    /// policy-lab's `discounted_returns` of this rollout (the student's, in a handout).
    pub fn returns(&self) -> Vec<f32> {
        advantage::discounted_returns(
            &self.rewards,
            &self.episode_ends,
            &self.bootstrap,
            self.num_envs,
            self.gamma,
        )
    }

    /// policy-lab's `gae` of this rollout, `(advantages, returns)` (the student's, in a
    /// handout).
    pub fn gae(&self, lambda: f32) -> (Vec<f32>, Vec<f32>) {
        advantage::gae(
            &self.rewards,
            &self.values,
            &self.next_values,
            &self.episode_ends,
            self.num_envs,
            self.gamma,
            lambda,
        )
    }
}

/// Assignment (a)'s cases: returns, and GAE at three values of lambda.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReturnsGaeCases {
    pub seed: u64,
    pub returns: Vec<(Rollout, Vec<f32>)>,
    /// `(rollout, lambda, advantages, returns)`.
    pub gae: Vec<(Rollout, f32, Vec<f32>, Vec<f32>)>,
}

/// The file that holds assignment (a)'s cases in a case folder.
pub const RETURNS_GAE: &str = "a_returns_gae.json";

/// A random rollout: 1 to 4 copies of 8 to 16 steps; about one step in eight terminates an
/// episode and one in twelve truncates one.
pub fn rollout(rng: &mut StdRng) -> Rollout {
    let num_envs = rng.random_range(1..=4usize);
    let steps = rng.random_range(8..=16usize);
    let n = num_envs * steps;
    let rewards: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut next_values = vec![0.0; n];
    let mut episode_ends = vec![false; n];
    let mut bootstrap = vec![0.0; n];
    for k in 0..n {
        let u: f32 = rng.random_range(0.0..1.0);
        if u < 0.125 {
            episode_ends[k] = true; // terminated: nothing follows
        } else if u < 0.125 + 1.0 / 12.0 {
            episode_ends[k] = true; // truncated: V of the final observation follows
            next_values[k] = rng.random_range(-1.0..1.0);
            bootstrap[k] = next_values[k];
        } else if k + num_envs < n {
            next_values[k] = values[k + num_envs];
        } else {
            next_values[k] = rng.random_range(-1.0..1.0); // V(s_T): the rollout was cut
            bootstrap[k] = next_values[k];
        }
    }
    Rollout {
        rewards,
        values,
        next_values,
        episode_ends,
        bootstrap,
        num_envs,
        gamma: [0.9, 0.97, 0.99][rng.random_range(0..3)],
    }
}

/// Assignment (a)'s cases for `seed`, computed by policy-lab's own functions.
pub fn returns_gae(seed: u64) -> ReturnsGaeCases {
    let mut rng = StdRng::seed_from_u64(seed);
    let returns = (0..8)
        .map(|_| {
            let r = rollout(&mut rng);
            let g = r.returns();
            (r, g)
        })
        .collect();
    let gae = [0.0, 0.95, 1.0]
        .into_iter()
        .flat_map(|lambda| (0..4).map(move |_| lambda))
        .map(|lambda| {
            let r = rollout(&mut rng);
            let (adv, ret) = r.gae(lambda);
            (r, lambda, adv, ret)
        })
        .collect();
    ReturnsGaeCases { seed, returns, gae }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped public cases are what this library computes for seed 0: a change to
    /// `core::advantage` (or to the draws) must come with `--bin cases` run again.
    #[test]
    fn the_rollouts_have_terminations_truncations_and_several_copies() {
        let cases = returns_gae(0);
        let rollouts: Vec<&Rollout> = cases.returns.iter().map(|(r, _)| r).collect();
        let truncated = |r: &Rollout| {
            (0..r.rewards.len()).any(|k| r.episode_ends[k] && r.next_values[k] != 0.0)
        };
        let terminated = |r: &Rollout| {
            (0..r.rewards.len()).any(|k| r.episode_ends[k] && r.next_values[k] == 0.0)
        };
        assert!(rollouts.iter().any(|r| truncated(r)));
        assert!(rollouts.iter().any(|r| terminated(r)));
        assert!(rollouts.iter().any(|r| r.num_envs > 1));
        // A held-out seed draws other cases.
        assert_ne!(returns_gae(1).returns[0].1, cases.returns[0].1);
    }
}
