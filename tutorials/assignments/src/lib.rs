//! The classroom assignments. Each is a student file in `src/` with `todo!()` where the
//! student works, and a grader, `cargo run -p policy-lab-assignments --bin NAME`, that checks
//! the student's functions against policy-lab's own within a tolerance and prints a score.
//! With `--features solution` the graders grade the instructor solutions in `solutions/`
//! instead (that folder is not handed out; see README.md).

pub mod grade;

#[cfg(not(feature = "solution"))]
pub mod a_returns_gae;
#[cfg(feature = "solution")]
#[path = "../solutions/a_returns_gae.rs"]
pub mod a_returns_gae;

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
