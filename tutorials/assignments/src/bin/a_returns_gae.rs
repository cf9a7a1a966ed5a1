//! Grades assignment (a): `cargo run -p policy-lab-assignments --bin a_returns_gae`.
//! The reference is policy-lab's own `advantage::{discounted_returns, gae}`.

use policy_lab::core::advantage;
use policy_lab_assignments::a_returns_gae::{discounted_returns, gae};
use policy_lab_assignments::grade::{close, grade, rng, Check};
use rand::RngExt;

/// A random rollout: rewards, values, episode ends (about one step in six), last value.
fn rollout(seed: u64, n: usize) -> (Vec<f32>, Vec<f32>, Vec<bool>, f32) {
    let mut r = rng(seed);
    let rewards = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
    let values = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
    let dones = (0..n).map(|_| r.random_bool(1.0 / 6.0)).collect();
    (rewards, values, dones, r.random_range(-1.0..1.0))
}

/// policy-lab's form: the value after each step (0 after an episode end) and the bootstrap.
fn next_values(values: &[f32], dones: &[bool], last: f32) -> Vec<f32> {
    (0..values.len())
        .map(|t| match (dones[t], values.get(t + 1)) {
            (true, _) => 0.0,
            (false, Some(v)) => *v,
            (false, None) => last,
        })
        .collect()
}

fn returns_by_hand() -> Result<(), String> {
    // r = 1, 1, 1 with gamma 0.5 and an episode end after step 2: 1.5, 1, then 1 + 0.5 * 4.
    let got = discounted_returns(&[1.0, 1.0, 1.0], &[false, true, false], 4.0, 0.5);
    close("returns", &got, &[1.5, 1.0, 3.0], 1e-6)
}

fn returns_random() -> Result<(), String> {
    for seed in 0..20 {
        let (rewards, _, dones, last) = rollout(seed, 64);
        let n = rewards.len();
        let bootstrap: Vec<f32> = (0..n).map(|t| if dones[t] { 0.0 } else { last }).collect();
        let want = advantage::discounted_returns(&rewards, &dones, &bootstrap, 1, 0.97);
        close(
            "returns",
            &discounted_returns(&rewards, &dones, last, 0.97),
            &want,
            1e-4,
        )
        .map_err(|e| format!("seed {seed}: {e}"))?;
    }
    Ok(())
}

fn gae_lambda(lambda: f32) -> Result<(), String> {
    for seed in 100..120 {
        let (rewards, values, dones, last) = rollout(seed, 64);
        let next = next_values(&values, &dones, last);
        let (want_adv, want_ret) =
            advantage::gae(&rewards, &values, &next, &dones, 1, 0.99, lambda);
        let (adv, ret) = gae(&rewards, &values, &dones, last, 0.99, lambda);
        close("advantages", &adv, &want_adv, 1e-4).map_err(|e| format!("seed {seed}: {e}"))?;
        close("returns", &ret, &want_ret, 1e-4).map_err(|e| format!("seed {seed}: {e}"))?;
    }
    Ok(())
}

fn gae_one_is_returns_minus_values() -> Result<(), String> {
    // lambda = 1: the advantage is the discounted return minus the baseline.
    let (rewards, values, dones, last) = rollout(7, 50);
    let (adv, _) = gae(&rewards, &values, &dones, last, 0.9, 1.0);
    let want: Vec<f32> = discounted_returns(&rewards, &dones, last, 0.9)
        .iter()
        .zip(&values)
        .map(|(g, v)| g - v)
        .collect();
    close("advantages with lambda = 1", &adv, &want, 1e-4)
}

fn main() {
    grade(
        "assignment (a): returns and GAE",
        &[
            Check {
                name: "returns, a case by hand",
                points: 2,
                test: returns_by_hand,
            },
            Check {
                name: "returns, 20 random rollouts",
                points: 3,
                test: returns_random,
            },
            Check {
                name: "GAE with lambda = 0 (one-step TD)",
                points: 2,
                test: || gae_lambda(0.0),
            },
            Check {
                name: "GAE with lambda = 0.95",
                points: 3,
                test: || gae_lambda(0.95),
            },
            Check {
                name: "GAE with lambda = 1 is returns minus values",
                points: 2,
                test: gae_one_is_returns_minus_values,
            },
        ],
    )
}
