//! What several test files share: a free port on loopback, the tiny transformer, addition
//! task and batch of the data-parallel tests, a small `lm` run, and the comparison of a
//! loaded checkpoint with transformers' logits and greedy tokens.
#![allow(dead_code)] // each test file uses part of it

use policy_lab::algos::grpo::{GrpoUpdate, LossType};
use policy_lab::algos::grpo_lm::{GrpoLm, GrpoLmConfig};
use policy_lab::core::flat::flat_grads;
use policy_lab::envs::{Arithmetic, ArithmeticConfig};
use policy_lab::lm::model::{Transformer, TransformerConfig};
use policy_lab::lm::rollout::LmRollout;
use policy_lab::lm::task::task_tokenizer;
use policy_lab::lm::tokenizer::Tokenizer;

pub type B = policy_lab::backend::Cpu;

/// A free TCP port on loopback (bound, then released for the process that will use it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The tiny model and task of the data-parallel tests, the same in every process.
pub struct Setup {
    pub env: Arithmetic,
    pub model: Transformer<B>,
    pub max_len: usize,
}

/// 2-digit addition (10 held-out sums) and a 2-layer transformer of width 32, seeded.
pub fn setup() -> Setup {
    let env = Arithmetic::new(ArithmeticConfig {
        digits: 2,
        test_size: 10,
        ..ArithmeticConfig::default()
    })
    .unwrap();
    let tok = task_tokenizer();
    let model = policy_lab::backend::seeded::<B, _>(&Default::default(), 3, || {
        TransformerConfig::new(tok.vocab_size())
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(64)
            .with_max_seq_len(16)
            .init(&Default::default())
    });
    let max_len = env.config().completion_limit();
    Setup {
        env,
        model,
        max_len,
    }
}

/// GRPO with `num_groups` groups of 4 and `loss_type`.
pub fn config(loss_type: LossType, num_groups: usize) -> GrpoLmConfig {
    GrpoLmConfig {
        update: GrpoUpdate {
            num_groups,
            num_generations: 4,
            learning_rate: 1e-3,
            loss_type,
            ..GrpoUpdate::default()
        },
        ..GrpoLmConfig::default()
    }
}

/// One batch of 4 groups (16 completions) sampled by one device, and that device's gradient
/// on it. The first 8 completions are cut short, so two peers' token counts differ (a
/// token-mean loss must then divide by the whole batch's count, not its own).
pub fn batch_and_gradient(s: &Setup, loss_type: LossType) -> (LmRollout, Vec<f32>) {
    let mut single = GrpoLm::new(
        config(loss_type, 4),
        s.max_len,
        s.model.clone(),
        s.env.clone(),
        task_tokenizer(),
        1,
    )
    .unwrap();
    let (mut rollout, _) = single.collect().unwrap();
    for i in 0..8 {
        rollout.tokens[i].truncate(1 + i % 3);
        rollout.logp[i].truncate(1 + i % 3);
    }
    let (grads, _) = single.gradients(&rollout).unwrap();
    let flat = flat_grads(&single.model, &grads);
    (rollout, flat)
}

/// The largest absolute difference between two gradients, and the largest entry of `want`.
pub fn largest_difference(got: &[f32], want: &[f32]) -> (f32, f32) {
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let size = want.iter().map(|g| g.abs()).fold(0.0f32, f32::max);
    (worst, size)
}

/// An `lm` run of stage `algo` on 1-digit addition (16 held-out problems) with a small model
/// (width 64, 2 layers, MLP 128, context 16): quick enough for a test.
pub fn small_lm_run(algo: policy_lab::run::lm::LmAlgo) -> policy_lab::run::lm::LmRunConfig {
    let mut c = policy_lab::run::lm::LmRunConfig {
        algo,
        ..Default::default()
    };
    c.task.digits = 1;
    c.task.test_size = 16;
    c.model.d_model = 64;
    c.model.n_layers = 2;
    c.model.d_ff = 128;
    c.model.max_seq_len = 16;
    c
}

/// transformers' outputs for one prompt (a fixture's `expected.json`).
#[derive(serde::Deserialize)]
pub struct Expected {
    pub prompt: String,
    pub ids: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
    pub greedy: Vec<u32>,
}

/// Checks a loaded checkpoint against transformers on each of `cases`: the tokenizer's ids,
/// the logits at every position within `tolerance`, and the greedy tokens.
pub fn matches_transformers(
    name: &str,
    hf: &policy_lab::lm::hf::HfModel<burn::backend::NdArray>,
    cases: &[Expected],
    tolerance: f32,
) {
    use policy_lab::lm::generate::{generate, SamplingConfig};
    use policy_lab::lm::model::Batch;
    use rand::SeedableRng;
    for case in cases {
        let ids = hf.tokenizer.encode(&case.prompt).unwrap();
        assert_eq!(
            ids, case.ids,
            "{name}: {:?} encodes as transformers'",
            case.prompt
        );
        let logits = hf
            .model
            .forward(&Batch::left_padded(std::slice::from_ref(&case.ids), 0))
            .unwrap();
        let ours: Vec<f32> = logits.into_data().to_vec().unwrap();
        let (worst, _) = largest_difference(&ours, &case.logits.concat());
        println!(
            "{name} {:?}: largest logit difference {worst:e}",
            case.prompt
        );
        assert!(
            worst <= tolerance,
            "{name} {:?}: logits differ by {worst}",
            case.prompt
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let sampling = SamplingConfig::greedy(case.greedy.len());
        let (pad, eos) = (hf.tokenizer.pad_id(), hf.tokenizer.eos_id());
        let out = generate(
            &hf.model,
            std::slice::from_ref(&case.ids),
            pad,
            eos,
            &sampling,
            &mut rng,
            None,
        );
        assert_eq!(
            out.unwrap().tokens[0],
            case.greedy,
            "{name} {:?}: greedy",
            case.prompt
        );
    }
}
