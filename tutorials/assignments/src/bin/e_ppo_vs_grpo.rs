//! Grades assignment (e): `cargo run --release -p policy-lab-assignments --bin e_ppo_vs_grpo`.
//! Performance thresholds as in SpinningUp's exercises: each run must reach 90% of the maze's
//! optimal return within its budget, with two seeds; and the analysis must be written.
//!
//! The budgets are set so that the default settings fail (measured over seeds 1-10 on
//! 2026-12-05: PPO's defaults miss the threshold in 20,000 steps on 9 seeds of 10, GRPO's
//! defaults in 100,000 steps on seeds 2, 4 and 9): the student must tune. A test below
//! checks that the defaults are rejected.

use policy_lab::backend::Cpu;
use policy_lab::run::train::{train, Algo, RunConfig};
use policy_lab::run::Start;
use policy_lab_assignments::e_ppo_vs_grpo::{grpo_run, ppo_run, ANALYSIS};
use policy_lab_assignments::grade::{grade, Check};

/// Each algorithm's step budget.
fn budget(algo: Algo) -> usize {
    match algo {
        Algo::Ppo => 20_000,
        _ => 100_000,
    }
}
/// The assignment's task, exactly: options (a smaller maze, no obstacles) make another task.
const ENV: &str = "Maze-v0";

fn valid(config: &RunConfig, algo: Algo) -> Result<(), String> {
    if config.algo != algo {
        return Err(format!("the run's algo is {:?}, not {algo:?}", config.algo));
    }
    if config.env != ENV {
        return Err(format!(
            "the run's env is {:?}; the assignment is on {ENV:?}, with no options",
            config.env
        ));
    }
    let budget = budget(algo);
    if config.total_timesteps > budget {
        return Err(format!(
            "{} steps, over {algo:?}'s budget of {budget}",
            config.total_timesteps
        ));
    }
    config.validate().map_err(|e| e.to_string())
}

fn configs() -> Result<(), String> {
    valid(&ppo_run(), Algo::Ppo)?;
    valid(&grpo_run(), Algo::Grpo)
}

/// Trains `config` with seeds 1 and 2; each must reach 90% of the optimal greedy return.
fn learns(config: RunConfig) -> Result<(), String> {
    let (env, _) = policy_lab::envs::make(&config.env).map_err(|e| e.to_string())?;
    let grid = env.grid().ok_or("not a gridworld")?;
    let optimum = grid.value_iteration(1.0, 1e-12).0[grid.start()];
    for seed in [1, 2] {
        let run = RunConfig {
            seed,
            ..config.clone()
        };
        let dir = std::env::temp_dir().join(format!(
            "policy-lab-assignment-e-{}-{seed}-{}",
            run.algo.name(),
            std::process::id()
        ));
        let summary = train::<Cpu>(
            &run,
            Default::default(),
            &dir,
            Start::Overwrite,
            &mut std::io::sink(),
        )
        .map_err(|e| format!("{e:#}"))?;
        let _ = std::fs::remove_dir_all(&dir);
        let got = summary.evaluation.mean_return();
        println!(
            "    {} seed {seed}: greedy return {got:.3} (optimum {optimum:.3}) after {} steps",
            run.algo.name(),
            summary.global_step
        );
        if got < 0.9 * optimum {
            return Err(format!(
                "seed {seed}: greedy return {got:.3} < 90% of {optimum:.3}"
            ));
        }
    }
    Ok(())
}

fn analysis() -> Result<(), String> {
    let text = std::fs::read_to_string(ANALYSIS).map_err(|e| format!("{ANALYSIS}: {e}"))?;
    if text.contains("TODO") {
        return Err(format!("{ANALYSIS} still has TODOs"));
    }
    for section in ["## Setup", "## Results", "## Analysis"] {
        if !text.contains(section) {
            return Err(format!("{ANALYSIS} has no `{section}` section"));
        }
    }
    let words = text.split_whitespace().count();
    if words < 200 {
        return Err(format!("{ANALYSIS} has {words} words; write at least 200"));
    }
    if !text
        .lines()
        .any(|l| l.trim_start().starts_with('|') && l.chars().any(|c| c.is_ascii_digit()))
    {
        return Err("the Results section needs a table with your numbers".into());
    }
    Ok(())
}

fn main() {
    grade(
        "assignment (e): PPO against GRPO on a maze",
        &[
            Check {
                name: "both runs are on Maze-v0, PPO within 20,000 steps, GRPO within 100,000",
                points: 2,
                test: configs,
            },
            Check {
                name: "PPO reaches 90% of the optimum (seeds 1, 2)",
                points: 3,
                test: || learns(ppo_run()),
            },
            Check {
                name: "GRPO reaches 90% of the optimum (seeds 1, 2)",
                points: 3,
                test: || learns(grpo_run()),
            },
            Check {
                name: "the written analysis",
                points: 4,
                test: analysis,
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default settings, within the budgets, must not pass: the assignment asks for
    /// tuning. (Bounded by steps: 20,000 and 100,000, seeds 1 and 2.)
    #[test]
    fn the_default_settings_are_rejected() {
        for algo in [Algo::Ppo, Algo::Grpo] {
            let defaults = RunConfig {
                algo,
                env: ENV.into(),
                total_timesteps: budget(algo),
                eval_episodes: 10,
                ..RunConfig::default()
            };
            assert_eq!(valid(&defaults, algo), Ok(()));
            assert!(learns(defaults).is_err(), "{algo:?}'s defaults passed");
        }
    }

    #[test]
    fn only_the_assignments_maze_is_accepted() {
        let run = |env: &str| RunConfig {
            algo: Algo::Ppo,
            env: env.into(),
            total_timesteps: budget(Algo::Ppo),
            ..RunConfig::default()
        };
        assert_eq!(valid(&run("Maze-v0"), Algo::Ppo), Ok(()));
        // A smaller or easier maze is another task.
        for other in ["Maze-v0:size=2", "Maze-v0:obstacle_prob=0", "FrozenLake-v1"] {
            assert!(
                valid(&run(other), Algo::Ppo).is_err(),
                "{other} was accepted"
            );
        }
    }
}
