//! Assignment (c): conjugate gradient and the Fisher-vector product for TRPO. Book chapter
//! "Natural gradients and TRPO" (eqs. TRPO-4, TRPO-5).
//!
//! The policy is a linear softmax over `num_actions` actions: `logits = W s`, with `W` stored
//! row-major, `w[a * dim + d]` for action `a` and state feature `d` (no bias), so a parameter
//! vector (and `v`) has `num_actions * dim` entries.
//!
//! Replace each `todo!()`, then grade: `cargo run -p policy-lab-assignments --bin c_trpo_cg`.
#![allow(unused_variables)]

/// Solves `A x = b` for a symmetric positive definite `A` known only through `a(v) = A v`,
/// with at most `steps` conjugate-gradient iterations, stopping early once the squared
/// residual `r.r` is below `tol` (eq. TRPO-5). Start from `x = 0`.
pub fn conjugate_gradient(
    a: &dyn Fn(&[f32]) -> Vec<f32>,
    b: &[f32],
    steps: usize,
    tol: f32,
) -> Vec<f32> {
    todo!()
}

/// `(F + damping I) v`, where `F` is the Fisher information of the linear softmax policy
/// averaged over `states` (eq. TRPO-4), computed without forming `F`: per state,
/// `J v` (how the logits move along `v`), then `(diag(p) - p p^T) (J v)`, then `J^T` of that.
pub fn fisher_vector_product(
    w: &[f32],
    num_actions: usize,
    states: &[Vec<f32>],
    v: &[f32],
    damping: f32,
) -> Vec<f32> {
    todo!()
}
