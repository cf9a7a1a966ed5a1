//! Assignment (e), instructor solution: the ladder's settings (src/run/ladder.rs), and a smaller
//! GRPO learning rate.
use policy_lab::run::train::{Algo, RunConfig};

pub fn ppo_run() -> RunConfig {
    RunConfig {
        algo: Algo::Ppo,
        env: "Maze-v0".into(),
        total_timesteps: 100_000,
        eval_episodes: 10,
        ..RunConfig::default()
    }
}

pub fn grpo_run() -> RunConfig {
    let mut config = RunConfig {
        algo: Algo::Grpo,
        env: "Maze-v0".into(),
        total_timesteps: 100_000,
        eval_episodes: 10,
        ..RunConfig::default()
    };
    // The default 3e-3 failed seed 2 (greedy return -2.56, see e_analysis.md).
    config.grpo.update.learning_rate = 1e-3;
    config
}

pub const ANALYSIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/solutions/e_analysis.md");
