//! Grades assignment (b), PPO's clipped loss: `cargo run -p policy-lab-assignments --bin b_ppo_clip`.
//!
//! The student writes policy-lab's own `core::objective::{ratio, clipped_surrogate}` (the
//! handout has a `todo!()` in each), which PPO, GRPO and their language-model versions call.
//! The checks work them by hand, compare them with case files (`cases/b_ppo_clip.json`, and
//! held-out ones with `--heldout DIR`), then train PPO with them.

use std::path::Path;

use policy_lab::core::objective::{clipped_surrogate, ratio};
use policy_lab::run::train::Algo;
use policy_lab_assignments::cases::ppo_clip::{ClipCases, FILE};
use policy_lab_assignments::cases::{matrix, values};
use policy_lab_assignments::grade::{
    self, close, grade_with_cases, ladder_run, read_cases, CaseCheck, Check, LADDER_TARGET,
};

/// The per-token loss for one ratio and one advantage.
fn loss(ratio_value: f32, advantage: f32, eps_low: f32, eps_high: f32) -> f32 {
    let logp = matrix(1, 1, &[ratio_value.ln()]);
    let r = ratio(logp, matrix(1, 1, &[0.0]));
    values(clipped_surrogate(
        r,
        matrix(1, 1, &[advantage]),
        eps_low,
        eps_high,
    ))[0]
}

fn ratio_by_hand() -> Result<(), String> {
    // log-probabilities -1 and -1.5 under the new policy, -1 under the old: ratios 1, e^-0.5.
    let got = values(ratio(
        matrix(1, 2, &[-1.0, -1.5]),
        matrix(1, 2, &[-1.0, -1.0]),
    ));
    close("ratios", &got, &[1.0, (-0.5f32).exp()], 1e-6)
}

fn the_four_cases_of_the_min() -> Result<(), String> {
    // A > 0 gains nothing beyond 1 + eps; A < 0 is not clipped when the ratio grew (the min
    // keeps the worse, unclipped term); and the mirror images below 1 - eps.
    let eps = 0.2;
    close(
        "A > 0, ratio 1.5",
        &[loss(1.5, 1.0, eps, eps)],
        &[-1.2],
        1e-5,
    )?;
    close(
        "A < 0, ratio 1.5",
        &[loss(1.5, -1.0, eps, eps)],
        &[1.5],
        1e-5,
    )?;
    close(
        "A < 0, ratio 0.5",
        &[loss(0.5, -1.0, eps, eps)],
        &[0.8],
        1e-5,
    )?;
    close(
        "A > 0, ratio 0.5",
        &[loss(0.5, 1.0, eps, eps)],
        &[-0.5],
        1e-5,
    )?;
    close(
        "inside the range",
        &[loss(1.1, -2.0, eps, eps)],
        &[2.2],
        1e-5,
    )
}

fn clip_higher_by_hand() -> Result<(), String> {
    // DAPO's clip-higher: eps_low 0.2, eps_high 0.28. A good action may grow to 1.28; a bad
    // one is still held at 0.8 below.
    close(
        "A > 0, ratio 1.5",
        &[loss(1.5, 1.0, 0.2, 0.28)],
        &[-1.28],
        1e-5,
    )?;
    close(
        "A < 0, ratio 0.5",
        &[loss(0.5, -1.0, 0.2, 0.28)],
        &[0.8],
        1e-5,
    )
}

fn ratio_cases(dir: &Path) -> Result<(), String> {
    let cases: ClipCases = read_cases(dir, FILE)?;
    for (i, c) in cases.cases.iter().enumerate() {
        close("ratio", &c.ratio(), &c.ratio, 1e-5).map_err(|e| format!("case {i}: {e}"))?;
    }
    Ok(())
}

fn loss_cases(dir: &Path, clip_higher: bool) -> Result<(), String> {
    let cases: ClipCases = read_cases(dir, FILE)?;
    for (i, c) in cases.cases.iter().enumerate() {
        if (c.eps_high != c.eps_low) != clip_higher {
            continue;
        }
        close("loss", &c.loss(), &c.loss, 1e-5).map_err(|e| {
            format!(
                "case {i} ({}x{}, eps_low {}, eps_high {}): {e}",
                c.rows, c.cols, c.eps_low, c.eps_high
            )
        })?;
    }
    Ok(())
}

fn main() {
    grade_with_cases(
        "assignment (b): PPO's clipped loss",
        &[
            Check {
                name: "ratios by hand",
                points: 1,
                test: ratio_by_hand,
            },
            Check {
                name: "the four cases of the min, by hand",
                points: 3,
                test: the_four_cases_of_the_min,
            },
            Check {
                name: "clip-higher (eps_high > eps_low), by hand",
                points: 1,
                test: clip_higher_by_hand,
            },
            Check {
                name:
                    "PPO with your clipped loss (and your GAE, (a)) solves Maze-v0 in 100,000 steps",
                points: 3,
                test: || grade::learns(ladder_run(Algo::Ppo), LADDER_TARGET),
            },
        ],
        &[
            CaseCheck {
                name: "ratios",
                points: 1,
                test: ratio_cases,
            },
            CaseCheck {
                name: "clipped loss, one clip range",
                points: 2,
                test: |d| loss_cases(d, false),
            },
            CaseCheck {
                name: "clipped loss, clip-higher",
                points: 1,
                test: |d| loss_cases(d, true),
            },
        ],
    )
}
