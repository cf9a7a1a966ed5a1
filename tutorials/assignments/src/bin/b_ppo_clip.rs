//! Grades assignment (b): `cargo run -p policy-lab-assignments --bin b_ppo_clip`.
//! The reference is policy-lab's own `objective::{ratio, clipped_surrogate}`.

use burn::backend::NdArray;
use burn::tensor::Tensor;
use policy_lab::core::objective;
use policy_lab_assignments::b_ppo_clip::{clip_fraction, clipped_loss, ratios};
use policy_lab_assignments::grade::{close, grade, rng, Check};
use rand::RngExt;

type B = NdArray;

fn batch(seed: u64, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut r = rng(seed);
    let old: Vec<f32> = (0..n).map(|_| r.random_range(-3.0..-0.1)).collect();
    let new = old.iter().map(|o| o + r.random_range(-0.5..0.5)).collect();
    let adv = (0..n).map(|_| r.random_range(-2.0..2.0)).collect();
    (new, old, adv)
}

fn tensor(x: &[f32]) -> Tensor<B, 1> {
    Tensor::from_floats(x, &Default::default())
}

fn ratios_match() -> Result<(), String> {
    let (new, old, _) = batch(1, 256);
    let want = objective::ratio(tensor(&new), tensor(&old))
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    close("ratios", &ratios(&new, &old), &want, 1e-5)
}

fn loss_matches(eps: f32) -> Result<(), String> {
    for seed in 10..20 {
        let (new, old, adv) = batch(seed, 256);
        let r = objective::ratio(tensor(&new), tensor(&old));
        let want = objective::clipped_surrogate(r, tensor(&adv), eps, eps)
            .mean()
            .into_scalar();
        close(
            "loss",
            &[clipped_loss(&new, &old, &adv, eps)],
            &[want],
            1e-5,
        )
        .map_err(|e| format!("seed {seed}, eps {eps}: {e}"))?;
    }
    Ok(())
}

fn the_min_is_pessimistic() -> Result<(), String> {
    // A positive advantage gains nothing beyond 1 + eps; a negative one is not clipped when
    // the ratio grew (the min keeps the worse, unclipped term).
    let eps = 0.2;
    let up = (1.5f32).ln();
    close(
        "A > 0, ratio 1.5",
        &[clipped_loss(&[up], &[0.0], &[1.0], eps)],
        &[-1.2],
        1e-5,
    )?;
    close(
        "A < 0, ratio 1.5",
        &[clipped_loss(&[up], &[0.0], &[-1.0], eps)],
        &[1.5],
        1e-5,
    )?;
    let down = (0.5f32).ln();
    close(
        "A < 0, ratio 0.5",
        &[clipped_loss(&[down], &[0.0], &[-1.0], eps)],
        &[0.8],
        1e-5,
    )?;
    close(
        "A > 0, ratio 0.5",
        &[clipped_loss(&[down], &[0.0], &[1.0], eps)],
        &[-0.5],
        1e-5,
    )
}

fn clipfrac_matches() -> Result<(), String> {
    let (new, old, _) = batch(3, 400);
    let want = new
        .iter()
        .zip(&old)
        .filter(|(n, o)| ((*n - *o).exp() - 1.0).abs() > 0.2)
        .count() as f32
        / 400.0;
    close("clipfrac", &[clip_fraction(&new, &old, 0.2)], &[want], 1e-6)
}

fn main() {
    grade(
        "assignment (b): PPO's clipped loss",
        &[
            Check {
                name: "probability ratios",
                points: 2,
                test: ratios_match,
            },
            Check {
                name: "clipped loss, eps 0.2",
                points: 3,
                test: || loss_matches(0.2),
            },
            Check {
                name: "clipped loss, eps 0.1",
                points: 1,
                test: || loss_matches(0.1),
            },
            Check {
                name: "the four cases of the min",
                points: 3,
                test: the_min_is_pessimistic,
            },
            Check {
                name: "clip fraction",
                points: 1,
                test: clipfrac_matches,
            },
        ],
    )
}
