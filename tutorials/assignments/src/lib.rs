//! The classroom assignments, their graders (`cargo run -p policy-lab-assignments --bin
//! NAME`), and the handout (`--bin handout`).
//!
//! * Assignments (a)-(d), (f) and (g) are written in the library itself: the handout replaces
//!   policy-lab's own code at marked places with `todo!()` (see [`handout`]), so the student's
//!   code is what the real learners call. Their graders work each function by hand, check it
//!   against case files (see [`cases`]), and train with it.
//! * Assignments (e) and (h) are experiments (PPO against GRPO on a maze with a written
//!   analysis; reward functions that teach SmolLM2): each student file is in `src/` with
//!   `todo!()` where the student works; with `--features solution` the grader grades the
//!   instructor solution in `solutions/` instead (left out of the handout).

pub mod cases;
pub mod grade;
pub mod handout;

#[cfg(not(feature = "solution"))]
pub mod e_ppo_vs_grpo;
#[cfg(feature = "solution")]
#[path = "../solutions/e_ppo_vs_grpo.rs"]
pub mod e_ppo_vs_grpo;

#[cfg(not(feature = "solution"))]
pub mod h_reward;
#[cfg(feature = "solution")]
#[path = "../solutions/h_reward.rs"]
pub mod h_reward;
