//! The classroom assignments, their graders (`cargo run -p policy-lab-assignments --bin
//! NAME`), and the handout (`--bin handout`).
//!
//! * Assignment (a) is written in the library itself: the handout replaces policy-lab's own
//!   `core::advantage::{discounted_returns, gae}` with `todo!()` (see [`handout`]), and its
//!   grader checks them against case files (see [`cases`]), then trains with them.
//! * Assignments (b)-(e) are student files in `src/` with `todo!()` where the student works;
//!   their graders compare with policy-lab's own functions. With `--features solution` they
//!   grade the instructor solutions in `solutions/` instead (left out of the handout).

pub mod cases;
pub mod grade;
pub mod handout;

#[cfg(not(feature = "solution"))]
pub mod b_ppo_clip;
#[cfg(feature = "solution")]
#[path = "../solutions/b_ppo_clip.rs"]
pub mod b_ppo_clip;

#[cfg(not(feature = "solution"))]
pub mod c_trpo_cg;
#[cfg(feature = "solution")]
#[path = "../solutions/c_trpo_cg.rs"]
pub mod c_trpo_cg;

#[cfg(not(feature = "solution"))]
pub mod d_grpo_k3;
#[cfg(feature = "solution")]
#[path = "../solutions/d_grpo_k3.rs"]
pub mod d_grpo_k3;

#[cfg(not(feature = "solution"))]
pub mod e_ppo_vs_grpo;
#[cfg(feature = "solution")]
#[path = "../solutions/e_ppo_vs_grpo.rs"]
pub mod e_ppo_vs_grpo;
