//! Assignment (e), instructor solution: PPO with a learning rate ten times CleanRL's (its
//! defaults miss the threshold in 20,000 steps), GRPO with a smaller learning rate (its
//! defaults miss it on seed 2). See e_analysis.md for the seeds these were measured on.
use policy_lab::run::train::{Algo, RunConfig};

pub fn ppo_run() -> RunConfig {
    let mut config = RunConfig {
        algo: Algo::Ppo,
        env: "Maze-v0".into(),
        total_timesteps: 20_000,
        eval_episodes: 10,
        ..RunConfig::default()
    };
    // CleanRL's 2.5e-4 reached 90% of the optimum on 1 seed of 1-10; 2.5e-3 on all 10.
    config.ppo.update.learning_rate = 2.5e-3;
    config
}

pub fn grpo_run() -> RunConfig {
    let mut config = RunConfig {
        algo: Algo::Grpo,
        env: "Maze-v0".into(),
        total_timesteps: 100_000,
        eval_episodes: 10,
        ..RunConfig::default()
    };
    // The default 3e-3 failed seed 2 (greedy return -2.56, see e_analysis.md). 1e-3 passes
    // seeds 1 and 2 but fails 6 of seeds 1-10: no setting tried was robust (issue 19).
    config.grpo.update.learning_rate = 1e-3;
    config
}

pub const ANALYSIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/solutions/e_analysis.md");
