//! Tutorial for the book's chapter "Natural gradients and TRPO": TRPO on slippery FrozenLake,
//! printing what each update's line search did (the KL it reached against its bound).
//!
//! ```text
//! cargo run --release --example trpo
//! ```

use policy_lab::backend::Cpu;
use policy_lab::run::train::{train, Algo, RunConfig};
use policy_lab::run::Start;

fn main() -> anyhow::Result<()> {
    // ANCHOR: run
    let config = RunConfig {
        algo: Algo::Trpo,
        env: "FrozenLake-v1".into(),
        seed: 1,
        total_timesteps: 40_000,
        ..RunConfig::default()
    };
    println!("TRPO defaults: {:?}", config.trpo);
    let out = std::path::Path::new("runs/tutorial-trpo");
    let summary = train::<Cpu>(
        &config,
        Default::default(),
        out,
        Start::Overwrite,
        &mut std::io::sink(),
    )?;
    for row in summary.history.iter().step_by(5) {
        let get = |k: &str| row.get(k).copied().unwrap_or(f64::NAN);
        println!(
            "step {:>6}  return {:.3}  KL after the step {:.5} (bound {})  backtracks {}  accepted {}",
            get("global_step"),
            get("episodic_return"),
            get("kl"),
            config.trpo.target_kl,
            get("line_search_steps"),
            get("is_line_search_success"),
        );
    }
    println!(
        "greedy success rate over {} episodes: {:.2}; metrics in {}",
        config.eval_episodes,
        summary.evaluation.success_rate().unwrap_or_default(),
        out.display()
    );
    // ANCHOR_END: run
    Ok(())
}
