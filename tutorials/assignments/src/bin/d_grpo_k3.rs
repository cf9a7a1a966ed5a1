//! Grades assignment (d): `cargo run -p policy-lab-assignments --bin d_grpo_k3`.
//! The references are policy-lab's own `advantage::group_advantages` and `objective::kl`, and
//! the exact KL of two categorical distributions.

use burn::backend::NdArray;
use burn::tensor::Tensor;
use policy_lab::core::advantage::{group_advantages, GroupBaseline, ScaleRewards};
use policy_lab::core::objective::{kl, KlEstimator};
use policy_lab_assignments::d_grpo_k3::{group_zscore, k3, leave_one_out};
use policy_lab_assignments::grade::{close, grade, rng, Check};
use rand::RngExt;

type B = NdArray;

fn rewards(seed: u64, n: usize) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| {
            if r.random_bool(0.4) {
                1.0
            } else {
                r.random_range(0.0..0.3)
            }
        })
        .collect()
}

fn zscore_matches() -> Result<(), String> {
    for (seed, g) in [(1, 4), (2, 8), (3, 16)] {
        let r = rewards(seed, g * 6);
        let want = group_advantages(&r, g, GroupBaseline::Mean, ScaleRewards::Group);
        close("z-scores", &group_zscore(&r, g), &want, 1e-4)
            .map_err(|e| format!("groups of {g}: {e}"))?;
    }
    Ok(())
}

fn equal_rewards_give_zero() -> Result<(), String> {
    close(
        "a group of equal rewards",
        &group_zscore(&[0.5; 8], 8),
        &[0.0; 8],
        1e-6,
    )
}

fn loo_matches() -> Result<(), String> {
    for (seed, g) in [(4, 2), (5, 8)] {
        let r = rewards(seed, g * 5);
        let want = group_advantages(&r, g, GroupBaseline::LeaveOneOut, ScaleRewards::None);
        close("leave-one-out", &leave_one_out(&r, g), &want, 1e-5)
            .map_err(|e| format!("groups of {g}: {e}"))?;
    }
    Ok(())
}

fn k3_matches_and_is_positive() -> Result<(), String> {
    let mut r = rng(6);
    let logp: Vec<f32> = (0..300).map(|_| r.random_range(-4.0..-0.01)).collect();
    let ref_logp: Vec<f32> = logp.iter().map(|l| l + r.random_range(-1.0..1.0)).collect();
    let t = |x: &[f32]| Tensor::<B, 1>::from_floats(x, &Default::default());
    let want = kl(t(&logp), t(&ref_logp), KlEstimator::K3)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let got = k3(&logp, &ref_logp);
    close("k3", &got, &want, 1e-5)?;
    match got.iter().position(|k| *k < 0.0) {
        Some(i) => Err(format!("k3[{i}] = {} is negative", got[i])),
        None => Ok(()),
    }
}

fn k3_is_unbiased() -> Result<(), String> {
    // Tokens sampled from pi: the mean of k3 approaches KL(pi || pi_ref) exactly.
    let pi = [0.5f32, 0.3, 0.15, 0.05];
    let pref = [0.25f32, 0.25, 0.25, 0.25];
    let exact: f32 = pi.iter().zip(&pref).map(|(p, q)| p * (p / q).ln()).sum();
    let mut r = rng(7);
    let n = 200_000;
    let (mut logp, mut ref_logp) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let u: f32 = r.random_range(0.0..1.0);
        let mut acc = 0.0;
        let a = pi.iter().position(|p| {
            acc += p;
            u < acc
        });
        let a = a.unwrap_or(3);
        logp.push(pi[a].ln());
        ref_logp.push(pref[a].ln());
    }
    let mean = k3(&logp, &ref_logp).iter().sum::<f32>() / n as f32;
    close("mean of k3 over 200,000 samples", &[mean], &[exact], 0.01)
}

fn main() {
    grade(
        "assignment (d): GRPO's group advantages and the k3 KL",
        &[
            Check {
                name: "z-scored group advantages",
                points: 3,
                test: zscore_matches,
            },
            Check {
                name: "a group of equal rewards",
                points: 1,
                test: equal_rewards_give_zero,
            },
            Check {
                name: "leave-one-out advantages",
                points: 2,
                test: loo_matches,
            },
            Check {
                name: "k3 per token, never negative",
                points: 2,
                test: k3_matches_and_is_positive,
            },
            Check {
                name: "k3 is unbiased",
                points: 2,
                test: k3_is_unbiased,
            },
        ],
    )
}
