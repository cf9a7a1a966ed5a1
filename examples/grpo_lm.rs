//! Tutorial for the book's chapter "GRPO on a small language model": a warm start by SFT on
//! 1-digit addition, then GRPO from it with the same `grpo_loss` the toy environments use.
//!
//! ```text
//! cargo run --release --example grpo_lm
//! ```

use policy_lab::run::lm::{run_lm, LmAlgo, LmRunConfig};
use policy_lab::run::Start;

fn main() -> anyhow::Result<()> {
    // ANCHOR: run
    let mut config = LmRunConfig::default();
    config.task.digits = 1;
    config.task.test_size = 40;
    config.model.d_model = 64;
    config.model.n_layers = 2;
    config.model.d_ff = 256;
    config.sft.steps = 300;
    config.sft.stop_at_accuracy = 0.3; // a weak start leaves GRPO room
    let sft_dir = std::path::Path::new("runs/tutorial-grpo-lm/sft");
    let sft = run_lm(&config, sft_dir, Start::Overwrite, &mut std::io::sink())?;
    println!("SFT warm start: held-out accuracy {:.3}", sft.end.accuracy);

    config.algo = LmAlgo::Grpo;
    config.init = Some(sft.model.clone()); // RL starts from the SFT model
    config.grpo.update.num_groups = 8; // 8 prompts ...
    config.grpo.update.num_generations = 8; // ... 8 sampled completions each
    config.grpo.update.learning_rate = 1e-4;
    config.rl.iterations = 40;
    config.rl.eval_every = 10;
    let out = std::path::Path::new("runs/tutorial-grpo-lm/grpo");
    let rl = run_lm(&config, out, Start::Overwrite, &mut std::io::stdout())?;
    // One-digit addition has only 60 training problems: the training reward (above) climbs
    // toward 1 faster than the held-out accuracy moves. `lm grpo --task add:3` is the real
    // run (README, "Language models").
    println!(
        "GRPO: held-out accuracy {:.3} -> {:.3} after {} iterations; the curve is in {}",
        sft.end.accuracy,
        rl.end.accuracy,
        rl.iterations,
        out.join("metrics.jsonl").display()
    );
    // ANCHOR_END: run
    Ok(())
}
