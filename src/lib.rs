//! # policy-lab
//!
//! Learn, then use, policy optimization in Rust: REINFORCE, TRPO, PPO and GRPO on one shared
//! core, from bandits and mazes to language models.
//!
//! * [`envs`]: the gym-style environments (the `policy-lab-envs` crate, re-exported);
//! * [`agents`]: simple agents that play them (random, and a hand-made or planned heuristic
//!   for each environment), used by `policy-lab play` and as baselines;
//! * [`backend`]: the burn backends (`cpu`, and with cargo features `wgpu` and `cuda`) and
//!   the `--device` choice.

pub use policy_lab_envs as envs;

pub mod agents;
pub mod backend;
pub mod play;
