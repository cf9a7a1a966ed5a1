//! Tutorial for the book's chapter "PPO": PPO with CleanRL's settings on CartPole, its
//! diagnostics (`approx_kl`, `clipfrac`, `explained_variance`) and a learning curve plot.
//!
//! ```text
//! cargo run --release --example ppo
//! ```

use policy_lab::backend::Cpu;
use policy_lab::run::plot::{average, draw, read_run, XAxis};
use policy_lab::run::train::{train, Algo, RunConfig};
use policy_lab::run::Start;

fn main() -> anyhow::Result<()> {
    // ANCHOR: run
    let config = RunConfig {
        algo: Algo::Ppo,
        env: "CartPole-v1".into(),
        seed: 1,
        total_timesteps: 50_000, // CleanRL trains for 500k; this shows the start of the curve
        ..RunConfig::default()
    };
    let out = std::path::Path::new("runs/tutorial-ppo");
    let summary = train::<Cpu>(
        &config,
        Default::default(),
        out,
        Start::Overwrite,
        &mut std::io::sink(),
    )?;
    for row in summary.history.iter().step_by(4) {
        let get = |k: &str| row.get(k).copied().unwrap_or(f64::NAN);
        println!(
            "step {:>6}  return {:6.1}  approx_kl {:.1e}  clipfrac {:.3}  explained_variance {:.2}",
            get("global_step"),
            get("episodic_return"),
            get("approx_kl"),
            get("clipfrac"),
            get("explained_variance"),
        );
    }
    println!(
        "greedy mean return: {:.1}",
        summary.evaluation.mean_return()
    );
    let curve = read_run(out, XAxis::Steps)?;
    for file in draw(
        &average(&[curve]),
        XAxis::Steps,
        "PPO on CartPole-v1",
        &out.join("curve"),
    )? {
        println!("wrote {}", file.display());
    }
    // ANCHOR_END: run
    Ok(())
}
