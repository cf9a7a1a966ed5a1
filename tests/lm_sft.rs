//! Supervised fine-tuning teaches the small transformer one-digit addition, on a budget
//! bounded by steps.

use burn::tensor::backend::Backend;
use policy_lab::lm::generate::{generate, SamplingConfig};
use policy_lab::lm::model::TransformerConfig;
use policy_lab::lm::sft::{encode_pairs, inference, train_sft};
use policy_lab::lm::tokenizer::{CharTokenizer, Tokenizer};
use rand::{RngExt, SeedableRng};

type B = policy_lab::backend::Cpu;

fn pair(a: u32, b: u32) -> (String, String) {
    (format!("{a}+{b}="), format!("{}", a + b))
}

#[test]
fn sft_learns_one_digit_addition() {
    let tokenizer = CharTokenizer::new("0123456789+=");
    B::seed(&Default::default(), 0);
    let model = TransformerConfig::new(tokenizer.vocab_size())
        .with_d_model(64)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_d_ff(128)
        .with_max_seq_len(16)
        .init::<B>(&Default::default());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let batches: Vec<Vec<(String, String)>> = (0..600)
        .map(|_| {
            (0..32)
                .map(|_| pair(rng.random_range(0..10), rng.random_range(0..10)))
                .collect()
        })
        .collect();
    let (model, losses) = train_sft(model, &tokenizer, batches, 3e-3).unwrap();
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    assert!(last < first / 4.0, "loss {first} -> {last}");

    // Greedy accuracy over all 100 problems.
    let all: Vec<(String, String)> = (0..10)
        .flat_map(|a| (0..10).map(move |b| pair(a, b)))
        .collect();
    let (prompts, _) = encode_pairs(&tokenizer, &all).unwrap();
    let out = generate(
        &inference(&model),
        &prompts,
        tokenizer.pad_id(),
        tokenizer.eos_id(),
        &SamplingConfig::greedy(3),
        &mut rng,
        None,
    )
    .unwrap();
    let correct = out
        .tokens
        .iter()
        .zip(&all)
        .filter(|(t, (_, answer))| tokenizer.decode(t) == *answer)
        .count();
    assert!(
        correct >= 90,
        "{correct}/100 correct; loss {first} -> {last}"
    );
}
