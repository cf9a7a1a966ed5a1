//! Grades assignment (c): `cargo run -p policy-lab-assignments --bin c_trpo_cg`.
//! References: policy-lab's `algos::trpo::conjugate_gradient`, and the Fisher matrix written
//! out from its definition, `F = mean_s sum_a p(a|s) g g^T` with `g` the score
//! `grad_W log p(a|s)`.

use policy_lab::algos::trpo;
use policy_lab_assignments::c_trpo_cg::{conjugate_gradient, fisher_vector_product};
use policy_lab_assignments::grade::{close, grade, rng, Check};
use rand::RngExt;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A random symmetric positive definite matrix `B^T B + I` of size `n`.
fn spd(seed: u64, n: usize) -> Vec<Vec<f32>> {
    let mut r = rng(seed);
    let b: Vec<Vec<f32>> = (0..n)
        .map(|_| (0..n).map(|_| r.random_range(-1.0..1.0)).collect())
        .collect();
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    (0..n).map(|k| b[k][i] * b[k][j]).sum::<f32>() + if i == j { 1.0 } else { 0.0 }
                })
                .collect()
        })
        .collect()
}

fn cg_solves() -> Result<(), String> {
    for (seed, n) in [(1, 5), (2, 12), (3, 30)] {
        let a = spd(seed, n);
        let mul = |v: &[f32]| a.iter().map(|row| dot(row, v)).collect::<Vec<f32>>();
        let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
        let x = conjugate_gradient(&mul, &b, 10 * n, 1e-10);
        close("A x", &mul(&x), &b, 1e-3).map_err(|e| format!("size {n}: {e}"))?;
    }
    Ok(())
}

fn cg_matches_policy_lab() -> Result<(), String> {
    // A few iterations only: the same iterates as policy-lab's.
    let a = spd(4, 20);
    let mul = |v: &[f32]| a.iter().map(|row| dot(row, v)).collect::<Vec<f32>>();
    let b: Vec<f32> = (0..20).map(|i| 1.0 - i as f32 / 10.0).collect();
    for steps in [1, 3, 6] {
        let want = trpo::conjugate_gradient(mul, &b, steps, 1e-10);
        close(
            "x",
            &conjugate_gradient(&mul, &b, steps, 1e-10),
            &want,
            1e-3,
        )
        .map_err(|e| format!("{steps} iterations: {e}"))?;
    }
    Ok(())
}

fn cg_stops_early() -> Result<(), String> {
    // b = 0 is solved before any iteration; a matrix-vector product would be wasted.
    let calls = std::cell::Cell::new(0);
    let mul = |v: &[f32]| {
        calls.set(calls.get() + 1);
        v.to_vec()
    };
    let x = conjugate_gradient(&mul, &[0.0; 4], 10, 1e-10);
    close("x", &x, &[0.0; 4], 0.0)?;
    match calls.get() {
        0 => Ok(()),
        n => Err(format!(
            "{n} products for b = 0; the residual is already below tol"
        )),
    }
}

/// The Fisher matrix from its definition.
fn explicit_fisher(w: &[f32], num_actions: usize, states: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let dim = w.len() / num_actions;
    let n = w.len();
    let mut f = vec![vec![0.0f32; n]; n];
    for s in states {
        let logits: Vec<f32> = (0..num_actions)
            .map(|a| dot(&w[a * dim..(a + 1) * dim], s))
            .collect();
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        let p: Vec<f32> = logits.iter().map(|l| l.exp() / z).collect();
        for a in 0..num_actions {
            // the score of action a: (1[a = b] - p_b) s_d at (b, d)
            let g: Vec<f32> = (0..n)
                .map(|k| ((if k / dim == a { 1.0 } else { 0.0 }) - p[k / dim]) * s[k % dim])
                .collect();
            for i in 0..n {
                for j in 0..n {
                    f[i][j] += p[a] * g[i] * g[j] / states.len() as f32;
                }
            }
        }
    }
    f
}

fn fvp_case(seed: u64) -> (Vec<f32>, Vec<Vec<f32>>, Vec<f32>) {
    let mut r = rng(seed);
    let (actions, dim) = (4, 3);
    let w = (0..actions * dim)
        .map(|_| r.random_range(-1.0..1.0))
        .collect();
    let states = (0..16)
        .map(|_| (0..dim).map(|_| r.random_range(-2.0..2.0)).collect())
        .collect();
    let v = (0..actions * dim)
        .map(|_| r.random_range(-1.0..1.0))
        .collect();
    (w, states, v)
}

fn fvp_matches(damping: f32) -> Result<(), String> {
    for seed in 10..15 {
        let (w, states, v) = fvp_case(seed);
        let f = explicit_fisher(&w, 4, &states);
        let want: Vec<f32> = f
            .iter()
            .zip(&v)
            .map(|(row, x)| dot(row, &v) + damping * x)
            .collect();
        close(
            "F v",
            &fisher_vector_product(&w, 4, &states, &v, damping),
            &want,
            1e-4,
        )
        .map_err(|e| format!("seed {seed}, damping {damping}: {e}"))?;
    }
    Ok(())
}

fn natural_gradient() -> Result<(), String> {
    // Together: CG on the student's F v solves (F + 0.1 I) x = g.
    let (w, states, g) = fvp_case(20);
    let fv = |v: &[f32]| fisher_vector_product(&w, 4, &states, v, 0.1);
    let x = conjugate_gradient(&fv, &g, 100, 1e-12);
    let f = explicit_fisher(&w, 4, &states);
    let back: Vec<f32> = f
        .iter()
        .zip(&x)
        .map(|(row, xi)| dot(row, &x) + 0.1 * xi)
        .collect();
    close("(F + 0.1 I) x", &back, &g, 1e-3)
}

fn main() {
    grade(
        "assignment (c): conjugate gradient and the Fisher-vector product",
        &[
            Check {
                name: "CG solves SPD systems of size 5, 12, 30",
                points: 3,
                test: cg_solves,
            },
            Check {
                name: "CG's first iterates",
                points: 2,
                test: cg_matches_policy_lab,
            },
            Check {
                name: "CG stops when the residual is small",
                points: 1,
                test: cg_stops_early,
            },
            Check {
                name: "F v without damping",
                points: 3,
                test: || fvp_matches(0.0),
            },
            Check {
                name: "F v with damping 0.1",
                points: 1,
                test: || fvp_matches(0.1),
            },
            Check {
                name: "the natural gradient by CG on F v",
                points: 2,
                test: natural_gradient,
            },
        ],
    )
}
