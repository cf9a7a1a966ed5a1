//! The classroom assignments, their graders (`cargo run -p policy-lab-assignments --bin
//! NAME`), and the handout (`--bin handout`).
//!
//! * Assignments (a)-(d), (f) and (g) are written in the library itself: the handout replaces
//!   policy-lab's own code at marked places with `todo!()` (see [`handout`]), so the student's
//!   code is what the real learners call. Their graders work each function by hand, check it
//!   against case files (see [`cases`]), and train with it.
//! * Assignment (e) is an experiment with a written analysis: its student file is in `src/`
//!   with `todo!()` where the student works; with `--features solution` its grader grades the
//!   instructor solution in `solutions/` instead (left out of the handout).

pub mod cases;
pub mod grade;
pub mod handout;

#[cfg(not(feature = "solution"))]
pub mod e_ppo_vs_grpo;
#[cfg(feature = "solution")]
#[path = "../solutions/e_ppo_vs_grpo.rs"]
pub mod e_ppo_vs_grpo;
