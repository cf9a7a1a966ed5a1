//! Grades assignment (c), conjugate gradient and the Fisher-vector product:
//! `cargo run -p policy-lab-assignments --bin c_trpo_cg`.
//!
//! The student writes policy-lab's own `algos::trpo::{conjugate_gradient,
//! categorical_fisher_middle}` (the handout has a `todo!()` in each), which TRPO's natural
//! gradient step calls. The checks work them by hand, compare them with case files
//! (`cases/c_trpo_cg.json`, and held-out ones with `--heldout DIR`), then train TRPO.

use std::path::Path;

use policy_lab::algos::trpo::{categorical_fisher_middle, conjugate_gradient};
use policy_lab::run::train::Algo;
use policy_lab_assignments::cases::trpo_cg::{TrpoCases, FILE};
use policy_lab_assignments::cases::{matrix, values};
use policy_lab_assignments::grade::{
    self, close, grade_with_cases, ladder_run, read_cases, CaseCheck, Check, LADDER_TARGET,
};

fn times(a: &[[f32; 2]; 2], v: &[f32]) -> Vec<f32> {
    a.iter().map(|row| row[0] * v[0] + row[1] * v[1]).collect()
}

fn cg_by_hand() -> Result<(), String> {
    // A = [[4, 1], [1, 3]], b = [1, 2]: x = [1/11, 7/11], exact in two iterations.
    let a = [[4.0, 1.0], [1.0, 3.0]];
    let x = conjugate_gradient(|v| times(&a, v), &[1.0, 2.0], 2, 1e-12);
    close("x", &x, &[1.0 / 11.0, 7.0 / 11.0], 1e-5)?;
    // One iteration is a steepest-descent step from 0: x = (b.b / b.Ab) b = (5 / 20) b.
    let x = conjugate_gradient(|v| times(&a, v), &[1.0, 2.0], 1, 1e-12);
    close("x after one iteration", &x, &[0.25, 0.5], 1e-5)?;
    // A tolerance already met by b itself (r = b at x = 0): no iteration at all.
    let x = conjugate_gradient(|v| times(&a, v), &[1.0, 2.0], 10, 10.0);
    close("x when r.r < tol from the start", &x, &[0.0, 0.0], 0.0)
}

fn middle_by_hand() -> Result<(), String> {
    // p = (0.5, 0.25, 0.25); moving every logit by the same amount changes no probability,
    // so M 1 = 0; moving the first logit alone: M e_1 = p_1 (e_1 - p) = (0.25, -0.125, -0.125).
    let p = matrix(2, 3, &[0.5, 0.25, 0.25, 0.5, 0.25, 0.25]);
    let jv = matrix(2, 3, &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    let u = values(categorical_fisher_middle(p, jv));
    close("M (J v)", &u, &[0.0, 0.0, 0.0, 0.25, -0.125, -0.125], 1e-6)
}

fn cg_cases(dir: &Path, stopped_early: bool) -> Result<(), String> {
    let cases: TrpoCases = read_cases(dir, FILE)?;
    for (i, c) in cases.cg.iter().enumerate() {
        if (c.steps < c.n || c.tol > 1e-6) != stopped_early {
            continue;
        }
        close("x", &c.solve(), &c.x, 1e-4).map_err(|e| {
            format!(
                "case {i} ({} unknowns, steps {}, tol {}): {e}",
                c.n, c.steps, c.tol
            )
        })?;
    }
    Ok(())
}

fn middle_cases(dir: &Path) -> Result<(), String> {
    let cases: TrpoCases = read_cases(dir, FILE)?;
    for (i, c) in cases.middle.iter().enumerate() {
        close("M (J v)", &c.middle(), &c.u, 1e-5).map_err(|e| format!("case {i}: {e}"))?;
    }
    Ok(())
}

fn fvp_cases(dir: &Path) -> Result<(), String> {
    let cases: TrpoCases = read_cases(dir, FILE)?;
    for (i, c) in cases.fvp.iter().enumerate() {
        close("(F + damping I) v", &c.product(), &c.fv, 1e-3)
            .map_err(|e| format!("case {i}: {e}"))?;
    }
    Ok(())
}

fn main() {
    grade_with_cases(
        "assignment (c): conjugate gradient and the Fisher-vector product",
        &[
            Check {
                name: "conjugate gradient by hand (exact, one step, tolerance met at once)",
                points: 2,
                test: cg_by_hand,
            },
            Check {
                name: "the Fisher's middle matrix by hand",
                points: 1,
                test: middle_by_hand,
            },
            Check {
                name: "TRPO with your CG and Fisher (and your GAE, (a)) solves Maze-v0 in 60,000 steps",
                points: 3,
                test: || grade::learns(ladder_run(Algo::Trpo), LADDER_TARGET),
            },
        ],
        &[
            CaseCheck {
                name: "conjugate gradient, solved",
                points: 2,
                test: |d| cg_cases(d, false),
            },
            CaseCheck {
                name: "conjugate gradient, stopped by steps or tolerance",
                points: 1,
                test: |d| cg_cases(d, true),
            },
            CaseCheck {
                name: "the Fisher's middle matrix",
                points: 1,
                test: middle_cases,
            },
            CaseCheck {
                name: "whole Fisher-vector products of a policy network",
                points: 2,
                test: fvp_cases,
            },
        ],
    )
}
