//! Tutorial for the book's chapter "Scaling to GPUs": data-parallel GRPO. Each device holds a
//! replica, samples its share of the groups, and the gradients are averaged with burn's
//! all-reduce before every step. Here the two "devices" are two CPU peers sharing the cores;
//! with `--features cuda`, `policy_lab::backend::devices::<Cuda>(n)` gives GPUs 0..n.
//!
//! ```text
//! cargo run --release --example data_parallel
//! ```

use policy_lab::algos::grpo::GrpoUpdate;
use policy_lab::algos::grpo_lm::GrpoLmConfig;
use policy_lab::algos::grpo_parallel::{grpo_data_parallel, Peers};
use policy_lab::backend::Cpu;
use policy_lab::envs::{Arithmetic, ArithmeticConfig};
use policy_lab::lm::model::{Transformer, TransformerConfig};
use policy_lab::lm::task::task_tokenizer;
use policy_lab::lm::tokenizer::Tokenizer;

fn main() -> anyhow::Result<()> {
    // ANCHOR: run
    let env = Arithmetic::new(ArithmeticConfig {
        digits: 1,
        test_size: 20,
        ..ArithmeticConfig::default()
    })?;
    let tokenizer = task_tokenizer();
    let device = Default::default();
    let model: Transformer<Cpu> = policy_lab::backend::seeded::<Cpu, _>(&device, 1, || {
        TransformerConfig::new(tokenizer.vocab_size())
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(64)
            .with_max_seq_len(16)
            .init(&device)
    });
    let config = GrpoLmConfig {
        update: GrpoUpdate {
            num_groups: 8, // 4 groups on each of the 2 devices
            num_generations: 4,
            learning_rate: 1e-3,
            ..GrpoUpdate::default()
        },
        ..GrpoLmConfig::default()
    };
    let devices = policy_lab::backend::devices::<Cpu>(2);
    let max_len = env.config().completion_limit();
    let peers = Peers {
        config,
        max_completion_length: max_len,
        model,
        env,
        tokenizer,
        seed: 1,
        devices,
        nodes: None,
    };
    grpo_data_parallel(peers, 5, |it, m, _model| {
        println!(
            "iteration {it}: mean reward {:.3} over {} completions (both devices)",
            m["reward"], m["completions_seen"]
        );
        Ok(())
    })?;
    // ANCHOR_END: run
    Ok(())
}
