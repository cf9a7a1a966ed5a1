//! The main job: the whole ladder (REINFORCE, TRPO, PPO, GRPO) on one maze, compared.
//!
//! `cargo run --release` with no arguments trains each algorithm on the default generated
//! 8x8 maze (`Maze-v0`) with fixed seeds on the CPU, then writes into `runs/ladder/`:
//! each run's folder, `curves_steps.{png,svg}` and `curves_time.{png,svg}` (return against
//! environment steps and against wall time) and `table.md`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::backend::Cpu;
use crate::run::plot::{average, draw, read_run, XAxis};
use crate::run::train::{train, Algo, RunConfig};
use crate::run::Start;

/// The environment of the ladder and each rung's step budget.
pub const LADDER_ENV: &str = "Maze-v0";
pub fn budget(algo: Algo) -> usize {
    match algo {
        Algo::Reinforce => 40_000,
        Algo::Trpo => 60_000,
        // PPO, GRPO and any rung added to the ladder later.
        _ => 100_000,
    }
}

/// One row of the comparison table.
#[derive(Clone, Debug)]
pub struct LadderRow {
    pub algo: Algo,
    pub steps: usize,
    pub seconds: f64,
    pub greedy_return: f64,
    pub success_rate: f64,
    /// The first environment step count at which an iteration's mean return reached 90% of
    /// the optimal return.
    pub steps_to_90: Option<f64>,
}

/// Runs the ladder into `out`; returns the table rows and the files written.
pub fn run_ladder(
    out: &Path,
    seed: u64,
    progress: &mut (dyn Write + Send),
) -> Result<(Vec<LadderRow>, Vec<PathBuf>)> {
    let optimum = {
        let (env, _) = policy_lab_envs::make(LADDER_ENV)?;
        let grid = env.grid().expect("the ladder runs on a gridworld");
        grid.value_iteration(1.0, 1e-12).0[grid.start()]
    };
    let mut rows = Vec::new();
    let mut dirs = Vec::new();
    for &algo in Algo::ALL {
        let config = RunConfig {
            algo,
            env: LADDER_ENV.into(),
            seed,
            total_timesteps: budget(algo),
            eval_episodes: 10,
            ..RunConfig::default()
        };
        let dir = out.join(algo.name());
        writeln!(
            progress,
            "== {} on {LADDER_ENV} for {} steps",
            algo.name(),
            config.total_timesteps
        )?;
        let summary = train::<Cpu>(
            &config,
            Default::default(),
            &dir,
            Start::Overwrite,
            progress,
        )?;
        let steps_to_90 = summary.history.iter().find_map(|m| {
            let r = m.get("episodic_return").or(m.get("reward"))?;
            (*r >= 0.9 * optimum).then(|| m["global_step"])
        });
        rows.push(LadderRow {
            algo,
            steps: summary.global_step,
            seconds: summary.seconds,
            greedy_return: summary.evaluation.mean_return(),
            success_rate: summary.evaluation.success_rate().unwrap_or(0.0),
            steps_to_90,
        });
        dirs.push(dir);
    }
    let mut files = Vec::new();
    for x in [XAxis::Steps, XAxis::Time] {
        let runs = dirs
            .iter()
            .map(|d| read_run(d, x))
            .collect::<Result<Vec<_>>>()?;
        let stem = out.join(match x {
            XAxis::Steps => "curves_steps",
            XAxis::Time => "curves_time",
        });
        files.extend(draw(
            &average(&runs),
            x,
            &format!("The ladder on {LADDER_ENV} (seed {seed})"),
            &stem,
        )?);
    }
    let mut table = format!(
        "# The ladder on {LADDER_ENV} (seed {seed}, CPU)\n\nOptimal return {optimum:.3}. Greedy evaluation over 10 episodes.\n\n\
         | algorithm | env steps | wall time (s) | greedy return | success rate | steps to 90% of optimal |\n|---|---:|---:|---:|---:|---:|\n"
    );
    for r in &rows {
        let reached = r
            .steps_to_90
            .map_or("not reached".to_string(), |s| format!("{s:.0}"));
        table += &format!(
            "| {} | {} | {:.1} | {:.3} | {:.2} | {reached} |\n",
            r.algo.name(),
            r.steps,
            r.seconds,
            r.greedy_return,
            r.success_rate
        );
    }
    let table_path = out.join("table.md");
    std::fs::write(&table_path, &table)?;
    files.push(table_path);
    Ok((rows, files))
}
