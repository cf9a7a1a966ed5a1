//! Assignment (e): an experiment, PPO against GRPO on a maze, with a written analysis. Book
//! chapters "PPO" and "GRPO on toy environments".
//!
//! 1. Configure one PPO run and one GRPO run on `Maze-v0` exactly (`policy_lab::run::train::
//!    RunConfig`; the algorithms' settings are `config.ppo` and `config.grpo`): PPO within
//!    20,000 environment steps, GRPO within 100,000. The grader trains both with seeds 1 and 2
//!    and asks each to reach 90% of the maze's optimal return (greedy evaluation). The default
//!    settings do not: find out why, and what to change.
//! 2. Run your experiment (`cargo run --release -- train --config ...`, or the tutorials'
//!    code), then write `e_analysis.md` next to this crate's Cargo.toml: sections `## Setup`,
//!    `## Results` (a table with your numbers: more seeds than the grader's two tell you how
//!    robust your settings are) and `## Analysis` (what you changed and why it works; what
//!    differed between the two algorithms and why: the critic against group baselines, sample
//!    use, variance; at least 200 words in all).
//!
//! Grade: `cargo run --release -p policy-lab-assignments --bin e_ppo_vs_grpo`.
use policy_lab::run::train::RunConfig;

/// Your PPO run (the seed is set by the grader).
pub fn ppo_run() -> RunConfig {
    todo!()
}

/// Your GRPO run (the seed is set by the grader).
pub fn grpo_run() -> RunConfig {
    todo!()
}

/// Your written analysis.
pub const ANALYSIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/e_analysis.md");
