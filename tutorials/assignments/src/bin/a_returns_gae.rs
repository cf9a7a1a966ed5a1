//! Grades assignment (a), returns and GAE: `cargo run -p policy-lab-assignments --bin a_returns_gae`.
//!
//! The student writes policy-lab's own `core::advantage::{discounted_returns, gae}` (the
//! handout has a `todo!()` in each), so the checks call the library, and the learners that
//! the last checks train call the student's code. Expected values come from case files
//! (`cases/a_returns_gae.json`, and held-out ones with `--heldout DIR`), not from code:
//! `Rollout::{returns, gae}` call the library, which in a handout is the student's code.

use std::path::Path;

use policy_lab::core::advantage::discounted_returns;
use policy_lab::run::train::Algo;
use policy_lab_assignments::cases::{ReturnsGaeCases, RETURNS_GAE};
use policy_lab_assignments::grade::{
    self, close, grade_with_cases, ladder_run, read_cases, CaseCheck, Check, LADDER_TARGET,
};

fn returns_by_hand() -> Result<(), String> {
    // One copy, gamma 0.5, r = 1, 1, 1. Step 1 terminates its episode (nothing follows);
    // step 2 is the last stored step, bootstrapped with V(s_3) = 4: 1.5, 1, then 1 + 0.5 * 4.
    let got = discounted_returns(&[1.0; 3], &[false, true, false], &[0.0, 0.0, 4.0], 1, 0.5);
    close("returns", &got, &[1.5, 1.0, 3.0], 1e-6)
}

fn returns_truncated_by_hand() -> Result<(), String> {
    // As above, but step 1 is truncated (a time limit) with V(final observation) = 2: the
    // return there is 1 + 0.5 * 2 = 2, and step 0 sees 1 + 0.5 * 2 = 2.
    let got = discounted_returns(&[1.0; 3], &[false, true, false], &[0.0, 2.0, 4.0], 1, 0.5);
    close("returns with a truncation", &got, &[2.0, 2.0, 3.0], 1e-6)
}

fn returns_two_copies_by_hand() -> Result<(), String> {
    // Two copies interleaved time-major (t * 2 + i): copy 0 earns 1 per step, copy 1 earns 10;
    // neither episode ends, both bootstrap 0. gamma 1: copy 0's returns are 2, 1.
    let got = discounted_returns(&[1.0, 10.0, 1.0, 10.0], &[false; 4], &[0.0; 4], 2, 1.0);
    close("returns of two copies", &got, &[2.0, 20.0, 1.0, 10.0], 1e-6)
}

fn returns_cases(dir: &Path) -> Result<(), String> {
    let cases: ReturnsGaeCases = read_cases(dir, RETURNS_GAE)?;
    for (i, (r, want)) in cases.returns.iter().enumerate() {
        close("returns", &r.returns(), want, 1e-4)
            .map_err(|e| format!("case {i} ({} copies): {e}", r.num_envs))?;
    }
    Ok(())
}

fn gae_cases(dir: &Path, lambda: f32) -> Result<(), String> {
    let cases: ReturnsGaeCases = read_cases(dir, RETURNS_GAE)?;
    let mut seen = 0;
    for (i, (r, l, want_adv, want_ret)) in cases.gae.iter().enumerate() {
        if *l != lambda {
            continue;
        }
        seen += 1;
        let (adv, ret) = r.gae(lambda);
        let at = |e: String| format!("case {i} ({} copies, lambda {lambda}): {e}", r.num_envs);
        close("advantages", &adv, want_adv, 1e-4).map_err(at)?;
        close("returns", &ret, want_ret, 1e-4).map_err(at)?;
    }
    if seen == 0 {
        return Err(format!("the case file has no case with lambda {lambda}"));
    }
    Ok(())
}

fn gae_one_is_returns_minus_values() -> Result<(), String> {
    // lambda = 1: the advantage is the bootstrapped discounted return minus the baseline,
    // checked with the student's own two functions on every public rollout.
    let cases: ReturnsGaeCases =
        read_cases(&policy_lab_assignments::grade::public_cases(), RETURNS_GAE)?;
    for (r, ..) in &cases.gae {
        let (adv, _) = r.gae(1.0);
        let bootstrap: Vec<f32> = r.next_values.clone();
        let g = discounted_returns(&r.rewards, &r.episode_ends, &bootstrap, r.num_envs, r.gamma);
        let want: Vec<f32> = g.iter().zip(&r.values).map(|(g, v)| g - v).collect();
        close("advantages with lambda = 1", &adv, &want, 1e-4)?;
    }
    Ok(())
}

fn learns(algo: Algo) -> Result<(), String> {
    grade::learns(ladder_run(algo), LADDER_TARGET)
}

fn main() {
    grade_with_cases(
        "assignment (a): returns and GAE",
        &[
            Check {
                name: "returns, a case by hand",
                points: 1,
                test: returns_by_hand,
            },
            Check {
                name: "returns, a truncated episode by hand",
                points: 1,
                test: returns_truncated_by_hand,
            },
            Check {
                name: "returns, two copies time-major by hand",
                points: 1,
                test: returns_two_copies_by_hand,
            },
            Check {
                name: "GAE with lambda = 1 is returns minus values",
                points: 2,
                test: gae_one_is_returns_minus_values,
            },
            Check {
                name: "REINFORCE with your returns (and your loop, (f)) solves Maze-v0 in 40,000 steps",
                points: 2,
                test: || learns(Algo::Reinforce),
            },
            Check {
                name: "PPO with your GAE (and your clipped loss, (b)) solves Maze-v0 in 100,000 steps",
                points: 3,
                test: || learns(Algo::Ppo),
            },
        ],
        &[
            CaseCheck {
                name: "returns",
                points: 2,
                test: returns_cases,
            },
            CaseCheck {
                name: "GAE with lambda = 0 (one-step TD)",
                points: 1,
                test: |d| gae_cases(d, 0.0),
            },
            CaseCheck {
                name: "GAE with lambda = 0.95",
                points: 2,
                test: |d| gae_cases(d, 0.95),
            },
            CaseCheck {
                name: "GAE with lambda = 1",
                points: 1,
                test: |d| gae_cases(d, 1.0),
            },
        ],
    )
}
