//! GRPO on the small language model, through the same `grpo_loss` as the toy environments,
//! on the same `Arithmetic` environment as `policy-lab lm grpo` (one-digit addition here, so
//! that it fits a test's budget): from a weak SFT start, the mean reward rises on a budget
//! bounded by iterations.

use policy_lab::algos::grpo::GrpoUpdate;
use policy_lab::algos::grpo_lm::{GrpoLm, GrpoLmConfig};
use policy_lab::envs::{Arithmetic, ArithmeticConfig, EnvRng};
use policy_lab::lm::model::TransformerConfig;
use policy_lab::lm::sft::train_sft;
use policy_lab::lm::task::task_tokenizer;
use policy_lab::lm::tokenizer::Tokenizer;
use rand::SeedableRng;

type B = policy_lab::backend::Cpu;

#[test]
fn grpo_raises_the_mean_reward_of_a_weak_sft_model() {
    let env = Arithmetic::new(ArithmeticConfig {
        digits: 1,
        test_size: 10,
        ..ArithmeticConfig::default()
    })
    .unwrap();
    let tokenizer = task_tokenizer();
    // Seeded under policy-lab's lock: burn draws weights lazily from a global generator, and
    // the other test of this file runs at the same time.
    let model = policy_lab::backend::seeded::<B, _>(&Default::default(), 0, || {
        TransformerConfig::new(tokenizer.vocab_size())
            .with_d_model(64)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(128)
            .with_max_seq_len(16)
            .init::<B>(&Default::default())
    });
    // A short warm start on the environment's own demonstrations: the model learns the
    // format and some sums.
    let mut rng = EnvRng::seed_from_u64(0);
    let batches: Vec<Vec<(String, String)>> = (0..SFT_STEPS)
        .map(|_| (0..32).map(|_| env.demonstration(&mut rng)).collect())
        .collect();
    let (model, _) = train_sft(model, &tokenizer, batches, 3e-3).unwrap();

    let config = GrpoLmConfig {
        update: GrpoUpdate {
            num_generations: 8,
            num_groups: 16,
            learning_rate: 1e-3,
            ..GrpoUpdate::default()
        },
        ..GrpoLmConfig::default()
    };
    let max_completion_length = env.config().completion_limit();
    let mut grpo = GrpoLm::new(config, max_completion_length, model, env, tokenizer, 1).unwrap();
    let rewards: Vec<f64> = (0..ITERATIONS)
        .map(|_| grpo.iterate().unwrap()["reward"])
        .collect();
    let first = rewards[..10].iter().sum::<f64>() / 10.0;
    let last = rewards[ITERATIONS - 10..].iter().sum::<f64>() / 10.0;
    println!("mean reward {first:.3} -> {last:.3}");
    assert!(
        last >= first + 0.15,
        "mean reward {first:.3} -> {last:.3}: {rewards:?}"
    );
}

const SFT_STEPS: usize = 120;
const ITERATIONS: usize = 100;

#[test]
fn gradient_accumulation_gives_the_gradient_of_the_whole_batch() {
    use policy_lab::algos::grpo::LossType;
    use policy_lab::core::flat::flat_grads;
    let env = Arithmetic::new(ArithmeticConfig {
        digits: 2,
        test_size: 10,
        ..ArithmeticConfig::default()
    })
    .unwrap();
    let tokenizer = task_tokenizer();
    let model = policy_lab::backend::seeded::<B, _>(&Default::default(), 4, || {
        TransformerConfig::new(tokenizer.vocab_size())
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(64)
            .with_max_seq_len(16)
            .init::<B>(&Default::default())
    });
    let max_len = env.config().completion_limit();
    for loss_type in [LossType::Grpo, LossType::Dapo, LossType::DrGrpo] {
        let config = GrpoLmConfig {
            update: GrpoUpdate {
                num_groups: 3,
                num_generations: 4,
                loss_type,
                ..GrpoUpdate::default()
            },
            ..GrpoLmConfig::default()
        };
        let whole = GrpoLm::new(
            config.clone(),
            max_len,
            model.clone(),
            env.clone(),
            tokenizer.clone(),
            1,
        )
        .unwrap();
        let mut sampler = GrpoLm::new(
            config.clone(),
            max_len,
            model.clone(),
            env.clone(),
            tokenizer.clone(),
            1,
        )
        .unwrap();
        let (mut rollout, _) = sampler.collect().unwrap();
        // Completions of different lengths, so that the parts' token counts differ, and
        // rewards that differ within each group (a fresh model earns none).
        for i in 0..rollout.completions() {
            rollout.tokens[i].truncate(1 + i % 5);
            rollout.logp[i].truncate(1 + i % 5);
            rollout.rewards[i] = (i % 3) as f32;
        }
        let (grads, _) = whole.gradients(&rollout).unwrap();
        let want = flat_grads(&whole.model, &grads);
        let in_parts = GrpoLm::new(
            GrpoLmConfig {
                gradient_accumulation_steps: 5,
                ..config
            },
            max_len,
            model.clone(),
            env.clone(),
            tokenizer.clone(),
            1,
        )
        .unwrap();
        let (grads, _) = in_parts.gradients(&rollout).unwrap();
        let got = flat_grads(&in_parts.model, &grads);
        let size = want.iter().map(|g| g.abs()).fold(0.0f32, f32::max);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "{loss_type:?}: 5 parts differ from the whole batch by {worst:e} (largest {size:e})"
        );
        assert!(size > 1e-3 && worst <= 1e-6, "{loss_type:?}: {worst}");
    }
}
