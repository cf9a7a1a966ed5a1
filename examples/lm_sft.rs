//! Tutorial for the book's chapter "Language models as policies": a small transformer learns
//! 1-digit addition from demonstrations (supervised fine-tuning), then answers held-out
//! problems by sampling tokens, one action at a time.
//!
//! ```text
//! cargo run --release --example lm_sft
//! ```

use policy_lab::backend::Cpu;
use policy_lab::run::lm::{run_sft, LmRunConfig};
use policy_lab::run::Start;

fn main() -> anyhow::Result<()> {
    // ANCHOR: run
    let mut config = LmRunConfig::default();
    config.task.digits = 1; // "3+4=" -> "7"
    config.task.test_size = 20; // held-out problems, out of the 100 one-digit sums
    config.model.d_model = 64;
    config.model.n_layers = 2;
    config.model.d_ff = 256;
    config.sft.steps = 300;
    config.sft.stop_at_accuracy = 0.5; // a partial warm start, for RL to improve
    let out = std::path::Path::new("runs/tutorial-lm-sft");
    let summary = run_sft::<Cpu>(
        &config,
        &Default::default(),
        out,
        Start::Overwrite,
        &mut std::io::stdout(),
    )?;
    println!(
        "after {} steps: held-out accuracy {:.3} on {} problems (well-formed answers {:.3}); model in {}",
        summary.iterations,
        summary.end.accuracy,
        summary.end.problems,
        summary.end.format,
        summary.model.display()
    );
    // ANCHOR_END: run
    Ok(())
}
