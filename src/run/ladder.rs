//! The main job: the whole ladder (REINFORCE, TRPO, PPO, GRPO) on one maze, compared.
//!
//! `cargo run --release` with no arguments trains each algorithm on the default generated
//! 8x8 maze (`Maze-v0`) with seeds 1, 2 and 3 on the CPU, then writes into `runs/ladder/`:
//! each run's folder (`ALGO/seed-N`), `curves_steps.{png,svg}` and `curves_time.{png,svg}`
//! (return against environment steps and against wall time, the mean over seeds with a band
//! of one standard deviation) and `table.md` (greedy and sampled return and success, entropy,
//! steps, updates, time, steps to 90% of optimal; per rung and per run).

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

/// The seeds the main job runs each rung with.
pub const LADDER_SEEDS: [u64; 3] = [1, 2, 3];

/// Episodes of each final evaluation, greedy and sampled.
pub const EVAL_EPISODES: usize = 100;

/// The run of `algo` on the ladder's maze with `seed`: the rung's budget, its default
/// settings, and for GRPO the settings of `configs/maze_grpo.toml` (chosen by measurement;
/// the file says why).
pub fn ladder_config(algo: Algo, seed: u64) -> RunConfig {
    let base = match algo {
        Algo::Grpo => RunConfig::from_toml(include_str!("../../configs/maze_grpo.toml"))
            .expect("configs/maze_grpo.toml is a valid run config"),
        _ => RunConfig::default(),
    };
    RunConfig {
        algo,
        env: LADDER_ENV.into(),
        seed,
        total_timesteps: budget(algo),
        eval_episodes: EVAL_EPISODES,
        ..base
    }
}

/// One run of the comparison: one rung, one seed.
#[derive(Clone, Debug)]
pub struct LadderRow {
    pub algo: Algo,
    pub seed: u64,
    pub steps: usize,
    /// Iterations: batches collected and learned from.
    pub updates: usize,
    pub seconds: f64,
    pub greedy_return: f64,
    pub greedy_success: f64,
    /// The return and success of episodes whose actions are sampled from the policy.
    pub sampled_return: f64,
    pub sampled_success: f64,
    /// The policy's mean entropy over the states of the sampled episodes, in nats.
    pub entropy: f64,
    /// The first environment step count at which an iteration's mean return of its
    /// (sampled) training episodes reached 90% of the optimal return.
    pub steps_to_90: Option<f64>,
}

/// The maze's optimal return (value iteration, undiscounted).
pub fn optimal_return() -> Result<f64> {
    let (env, _) = policy_lab_envs::make(LADDER_ENV)?;
    let grid = env.grid().expect("the ladder runs on a gridworld");
    Ok(grid.value_iteration(1.0, 1e-12).0[grid.start()])
}

/// Trains one rung with one seed into `dir` and measures it.
pub fn ladder_run(
    algo: Algo,
    seed: u64,
    dir: &Path,
    progress: &mut (dyn Write + Send),
) -> Result<LadderRow> {
    let optimum = optimal_return()?;
    let config = ladder_config(algo, seed);
    writeln!(
        progress,
        "== {} on {LADDER_ENV}, seed {seed}, for {} steps",
        algo.name(),
        config.total_timesteps
    )?;
    let summary = train::<Cpu>(&config, Default::default(), dir, Start::Overwrite, progress)?;
    let steps_to_90 = summary.history.iter().find_map(|m| {
        let r = m.get("episodic_return").or(m.get("reward"))?;
        (*r >= 0.9 * optimum).then(|| m["global_step"])
    });
    Ok(LadderRow {
        algo,
        seed,
        steps: summary.global_step,
        updates: summary.iterations,
        seconds: summary.seconds,
        greedy_return: summary.evaluation.mean_return(),
        greedy_success: summary.evaluation.success_rate().unwrap_or(0.0),
        sampled_return: summary.sampled.mean_return(),
        sampled_success: summary.sampled.success_rate().unwrap_or(0.0),
        entropy: summary.sampled.entropy,
        steps_to_90,
    })
}

/// Runs the ladder into `out` (`out/ALGO/seed-N` for each rung and seed); returns the rows
/// and the files written (the curves with a band over seeds, and `table.md`).
pub fn run_ladder(
    out: &Path,
    seeds: &[u64],
    progress: &mut (dyn Write + Send),
) -> Result<(Vec<LadderRow>, Vec<PathBuf>)> {
    let optimum = optimal_return()?;
    let mut rows = Vec::new();
    let mut dirs = Vec::new();
    for &algo in Algo::ALL {
        for &seed in seeds {
            let dir = out.join(algo.name()).join(format!("seed-{seed}"));
            rows.push(ladder_run(algo, seed, &dir, progress)?);
            dirs.push(dir);
        }
    }
    let seed_names = seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
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
            &format!("The ladder on {LADDER_ENV} (seeds {seed_names}: mean and one s.d.)"),
            &stem,
        )?);
    }
    let table = ladder_table(&rows, optimum);
    let table_path = out.join("table.md");
    std::fs::write(&table_path, &table)?;
    files.push(table_path);
    Ok((rows, files))
}

/// The ladder's table: one line per rung (the mean over its seeds, and the spread where it
/// matters), its footnotes, and one line per run.
pub fn ladder_table(rows: &[LadderRow], optimum: f64) -> String {
    let mut algos: Vec<Algo> = rows.iter().map(|r| r.algo).collect();
    algos.dedup();
    let seeds: Vec<String> = rows
        .iter()
        .filter(|r| r.algo == rows[0].algo)
        .map(|r| r.seed.to_string())
        .collect();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let mut t = format!(
        "# The ladder on {LADDER_ENV} (CPU, seeds {})\n\n\
         Optimal return {optimum:.3}. Each rung: the mean over its seeds, each run evaluated \
         over {EVAL_EPISODES} episodes greedy and {EVAL_EPISODES} sampled.\n\n\
         | algorithm | greedy return | greedy success | sampled return | sampled success | \
         entropy (nats) | env steps | updates | wall time (s) | steps to 90% of optimal |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        seeds.join(", ")
    );
    for &algo in &algos {
        let runs: Vec<&LadderRow> = rows.iter().filter(|r| r.algo == algo).collect();
        let col =
            |f: &dyn Fn(&LadderRow) -> f64| mean(&runs.iter().map(|r| f(r)).collect::<Vec<_>>());
        let reached: Vec<f64> = runs.iter().filter_map(|r| r.steps_to_90).collect();
        let to_90 = if reached.is_empty() {
            format!("not reached (0 of {})", runs.len())
        } else {
            format!(
                "{:.0} ({} of {})",
                mean(&reached),
                reached.len(),
                runs.len()
            )
        };
        t += &format!(
            "| {} | {:.3} | {:.2} | {:.3} | {:.2} | {:.3} | {:.0} | {:.0} | {:.1} | {to_90} |\n",
            algo.name(),
            col(&|r| r.greedy_return),
            col(&|r| r.greedy_success),
            col(&|r| r.sampled_return),
            col(&|r| r.sampled_success),
            col(&|r| r.entropy),
            col(&|r| r.steps as f64),
            col(&|r| r.updates as f64),
            col(&|r| r.seconds),
        );
    }
    t += &format!(
        "\n- *greedy*: every action the policy's most likely one; *sampled*: every action drawn \
         from the policy, as in training. A policy that is right only greedily is still \
         guessing. *success*: the share of episodes that reach the goal.\n\
         - *entropy*: the policy's entropy averaged over the states of the sampled episodes; \
         a uniform policy over the maze's 4 actions has ln 4 = 1.386 nats.\n\
         - *updates*: iterations, each one batch collected and learned from.\n\
         - *steps to 90% of optimal*: the first environment step count at which an \
         iteration's mean return over its training episodes (sampled) reached 0.9 x {optimum:.3}; \
         the mean over the seeds that reached it, and how many did.\n\n\
         | algorithm | seed | greedy return | sampled return | sampled success | entropy | env steps | updates | wall time (s) | steps to 90% |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        t += &format!(
            "| {} | {} | {:.3} | {:.3} | {:.2} | {:.3} | {} | {} | {:.1} | {} |\n",
            r.algo.name(),
            r.seed,
            r.greedy_return,
            r.sampled_return,
            r.sampled_success,
            r.entropy,
            r.steps,
            r.updates,
            r.seconds,
            r.steps_to_90
                .map_or("not reached".to_string(), |s| format!("{s:.0}"))
        );
    }
    t
}
