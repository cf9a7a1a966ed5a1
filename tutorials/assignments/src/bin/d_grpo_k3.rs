//! Grades assignment (d), GRPO's group advantages and KL estimators:
//! `cargo run -p policy-lab-assignments --bin d_grpo_k3`.
//!
//! The student writes policy-lab's own `core::advantage::group_advantages` and
//! `core::objective::kl` (the handout has a `todo!()` in each), which GRPO calls on the toy
//! environments and on the language model. The checks work them by hand, compare them with
//! case files (`cases/d_grpo_k3.json`, and held-out ones with `--heldout DIR`), then train GRPO.

use std::path::Path;

use policy_lab::core::advantage::{group_advantages, GroupBaseline, ScaleRewards};
use policy_lab::core::objective::{kl, KlEstimator};
use policy_lab::run::train::Algo;
use policy_lab_assignments::cases::grpo::{GrpoCases, FILE};
use policy_lab_assignments::cases::{matrix, values};
use policy_lab_assignments::grade::{
    self, close, grade_with_cases, ladder_run, read_cases, CaseCheck, Check, LADDER_TARGET,
};

fn groups_by_hand() -> Result<(), String> {
    // One group [1, 0, 0, 1]: mean 0.5, sample std sqrt(1/3); a group of equal rewards
    // teaches nothing (all zero, not NaN).
    let r = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0];
    let a = 0.5 / ((1.0f32 / 3.0).sqrt() + 1e-4);
    let got = group_advantages(&r, 4, GroupBaseline::Mean, ScaleRewards::Group);
    close(
        "mean baseline, group std",
        &got,
        &[a, -a, -a, a, 0.0, 0.0, 0.0, 0.0],
        1e-5,
    )?;
    // Leave-one-out, unscaled: 1 - mean(0, 0, 1) = 2/3.
    let got = group_advantages(&r[..4], 4, GroupBaseline::LeaveOneOut, ScaleRewards::None);
    let t = 2.0 / 3.0;
    close("leave-one-out, no scaling", &got, &[t, -t, -t, t], 1e-5)
}

fn kl_by_hand() -> Result<(), String> {
    // log pi = -1, log pi_ref = -1.5: log r = -0.5; k1 = 0.5, k2 = 0.125,
    // k3 = e^-0.5 + 0.5 - 1; equal log-probabilities give 0 for all three.
    let (logp, ref_logp) = (matrix(1, 2, &[-1.0, -2.0]), matrix(1, 2, &[-1.5, -2.0]));
    let est = |e| values(kl(logp.clone(), ref_logp.clone(), e));
    close("k1", &est(KlEstimator::K1), &[0.5, 0.0], 1e-6)?;
    close("k2", &est(KlEstimator::K2), &[0.125, 0.0], 1e-6)?;
    close(
        "k3",
        &est(KlEstimator::K3),
        &[(-0.5f32).exp() - 0.5, 0.0],
        1e-6,
    )
}

fn group_cases(dir: &Path, baseline: GroupBaseline) -> Result<(), String> {
    let cases: GrpoCases = read_cases(dir, FILE)?;
    for (i, c) in cases.groups.iter().enumerate() {
        if c.baseline != baseline {
            continue;
        }
        close("advantages", &c.advantages(), &c.advantages, 1e-4).map_err(|e| {
            format!(
                "case {i} (groups of {}, {:?}, scale {:?}): {e}",
                c.group_size, c.baseline, c.scale
            )
        })?;
    }
    Ok(())
}

fn kl_cases(dir: &Path, estimator: KlEstimator) -> Result<(), String> {
    let cases: GrpoCases = read_cases(dir, FILE)?;
    for (i, c) in cases.kl.iter().enumerate() {
        if c.estimator != estimator {
            continue;
        }
        close("KL", &c.kl(), &c.kl, 1e-5).map_err(|e| format!("case {i} ({estimator:?}): {e}"))?;
    }
    Ok(())
}

fn main() {
    grade_with_cases(
        "assignment (d): GRPO's group advantages and the KL estimators",
        &[
            Check {
                name: "group advantages by hand (TRL's scaling, a flat group, leave-one-out)",
                points: 2,
                test: groups_by_hand,
            },
            Check {
                name: "k1, k2 and k3 by hand",
                points: 1,
                test: kl_by_hand,
            },
            Check {
                name: "GRPO with your group advantages (and your clipped loss, (b)) solves Maze-v0 in 100,000 steps",
                points: 3,
                test: || grade::learns(ladder_run(Algo::Grpo), LADDER_TARGET),
            },
        ],
        &[
            CaseCheck {
                name: "group advantages, mean baseline, each scaling",
                points: 2,
                test: |d| group_cases(d, GroupBaseline::Mean),
            },
            CaseCheck {
                name: "group advantages, leave-one-out, each scaling",
                points: 1,
                test: |d| group_cases(d, GroupBaseline::LeaveOneOut),
            },
            CaseCheck {
                name: "k1",
                points: 1,
                test: |d| kl_cases(d, KlEstimator::K1),
            },
            CaseCheck {
                name: "k2",
                points: 1,
                test: |d| kl_cases(d, KlEstimator::K2),
            },
            CaseCheck {
                name: "k3",
                points: 1,
                test: |d| kl_cases(d, KlEstimator::K3),
            },
        ],
    )
}
