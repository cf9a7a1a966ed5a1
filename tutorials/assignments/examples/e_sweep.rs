//! The measurements behind assignment (e)'s budgets: PPO and GRPO on `Maze-v0` with their
//! default settings and with the instructor solution's, seeds 1 to 10, one table row per run
//! (the table in `solutions/e_analysis.md`).
//!
//! ```bash
//! cargo run -p policy-lab-assignments --example e_sweep
//! ```

use policy_lab::backend::Cpu;
use policy_lab::run::train::{train, Algo, RunConfig};
use policy_lab::run::Start;

/// 90% of the maze's optimal return, 0.870.
const THRESHOLD: f64 = 0.9 * 0.87;

fn sweep(name: &str, config: &RunConfig) {
    let mut passed = Vec::new();
    for seed in 1..=10 {
        let run = RunConfig {
            seed,
            ..config.clone()
        };
        let dir = std::env::temp_dir().join(format!("policy-lab-e-sweep-{}", std::process::id()));
        let start = std::time::Instant::now();
        let summary = train::<Cpu>(
            &run,
            Default::default(),
            &dir,
            Start::Overwrite,
            &mut std::io::sink(),
        )
        .expect("a valid run");
        let _ = std::fs::remove_dir_all(&dir);
        type Row = std::collections::BTreeMap<String, f64>;
        let sampled = |m: &Row| m.get("episodic_return").copied();
        let to_threshold = summary
            .history
            .iter()
            .find(|m| sampled(m).is_some_and(|r| r >= THRESHOLD))
            .map_or("never".to_string(), |m| {
                format!("{} steps", m["global_step"])
            });
        let best = summary
            .history
            .iter()
            .filter_map(sampled)
            .fold(f64::NEG_INFINITY, f64::max);
        let greedy = summary.evaluation.mean_return();
        if greedy >= THRESHOLD {
            passed.push(seed);
        }
        println!(
            "| {name} | {seed} | {greedy:.3} | {} | {to_threshold} | {best:.2} | {:.1} s |",
            summary.global_step,
            start.elapsed().as_secs_f64()
        );
    }
    println!("{name}: seeds {passed:?} reach 90% of the optimum (greedy)\n");
}

fn main() {
    println!("| run | seed | greedy return | steps | sampled mean >= 90% at | best sampled mean | time |");
    println!("|---|---|---|---|---|---|---|");
    let run = |algo, total_timesteps| RunConfig {
        algo,
        env: "Maze-v0".into(),
        total_timesteps,
        eval_episodes: 10,
        ..RunConfig::default()
    };
    let mut ppo = run(Algo::Ppo, 20_000);
    sweep("PPO, defaults", &ppo);
    ppo.ppo.update.learning_rate = 2.5e-3;
    sweep("PPO, learning rate 2.5e-3", &ppo);
    let mut grpo = run(Algo::Grpo, 100_000);
    sweep("GRPO, defaults", &grpo);
    grpo.grpo.update.learning_rate = 1e-3;
    sweep("GRPO, learning rate 1e-3", &grpo);
}
