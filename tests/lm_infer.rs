//! The fused CPU inference path (`lm::infer::HostDecoder`) gives the transformer's own logits:
//! each decoding step's last-position logits within 1e-5 of the tensor path's, on the GPT-2
//! model and on the Llama, Llama 3, Qwen2 and Qwen3 checkpoints of `tests/fixtures`, through
//! a left-padded prompt batch and new tokens one at a time, rows that finished feeding pads;
//! and `generate` samples the same tokens with the same log-probabilities either way.

use std::path::Path;

use burn::tensor::backend::Backend;
use policy_lab::core::flat::{flat_params, set_flat_params};
use policy_lab::lm::generate::{sample_token, SamplingConfig};
use policy_lab::lm::hf::load_hf;
use policy_lab::lm::infer::Decoder;
use policy_lab::lm::model::{Architecture, Batch, Transformer, TransformerConfig};
use rand::{RngExt, SeedableRng};

type B = burn::backend::NdArray;

/// On burn's Flex CPU backend too (`cargo test --features flex --test lm_infer`, as CI runs it).
#[cfg(feature = "flex")]
#[test]
fn the_host_path_gives_the_flex_models_logits_within_1e_5() {
    let model = gpt2::<burn::backend::Flex>(1);
    let worst = largest_difference(&model, &prompts(19), 8);
    println!("Flex GPT-2 model: largest logit difference {worst:e}");
    assert!(worst <= 1e-5, "largest logit difference {worst:e}");
}

/// A model whose weights are spread wider than the initialization's std of 0.02, so that
/// logits differ by more than rounding when anything is computed wrong.
fn widened<B: Backend>(model: Transformer<B>, factor: f32) -> Transformer<B> {
    let flat: Vec<f32> = flat_params(&model).iter().map(|w| w * factor).collect();
    set_flat_params(model, &flat)
}

fn gpt2<B: Backend>(seed: u64) -> Transformer<B> {
    let model = policy_lab::backend::seeded::<B, _>(&Default::default(), seed, || {
        TransformerConfig::new(19)
            .with_d_model(48)
            .with_n_layers(3)
            .with_n_heads(4)
            .with_d_ff(96)
            .with_max_seq_len(32)
            .init(&Default::default())
    });
    widened(model, 3.0)
}

/// Runs both decoders side by side: a left-padded batch of prompts of different lengths,
/// then `steps` new tokens, each row's next token drawn from the host logits (the same token
/// for both), a row "finishing" after a few tokens and feeding pads from then on. Returns
/// the largest logit difference over every step.
fn largest_difference<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    steps: usize,
) -> f32 {
    let rows = prompts.len();
    let vocab = model.vocab_size();
    let mut batch = Batch::left_padded(prompts, 0);
    let capacity = batch.len() + steps;
    let mut host = Decoder::new(model, rows, capacity);
    assert!(
        matches!(host, Decoder::Host(_)),
        "a CPU backend and f32 take the host path"
    );
    let mut tensors = Decoder::tensors(model, rows);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut worst = 0.0f32;
    for step in 0..steps {
        let a = host.last_logits(&batch).unwrap();
        let b = tensors.last_logits(&batch).unwrap();
        assert_eq!(a.len(), rows * vocab);
        assert_eq!(b.len(), rows * vocab);
        if step == 0 {
            let big = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            println!("largest |logit| {big}");
        }
        worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(worst, f32::max);
        // Row 0 finishes after two new tokens: a pad, not a real token, from then on.
        let mut next = Batch {
            tokens: vec![vec![0]; rows],
            valid: vec![vec![false]; rows],
        };
        for r in 0..rows {
            if r == 0 && step >= 2 {
                continue;
            }
            next.tokens[r][0] = 1 + rng.random_range(0..vocab as u32 - 1);
            next.valid[r][0] = true;
        }
        batch = next;
    }
    worst
}

fn prompts(vocab: u32) -> Vec<Vec<u32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    (0..5)
        .map(|i| {
            (0..3 + 2 * i)
                .map(|_| 1 + rng.random_range(0..vocab - 1))
                .collect()
        })
        .collect()
}

#[test]
fn the_host_path_gives_the_gpt2_models_logits_within_1e_5() {
    let model = gpt2::<B>(1);
    let worst = largest_difference(&model, &prompts(19), 8);
    println!("GPT-2 model: largest logit difference {worst:e}");
    assert!(worst <= 1e-5, "largest logit difference {worst:e}");
}

#[test]
fn the_host_path_gives_a_gated_gqa_models_logits_within_1e_5() {
    // Llama's family without a checkpoint: RMSNorm, RoPE, SwiGLU, 2 key/value heads for 4
    // query heads, Qwen3's q/k norms, an untied output layer.
    let model = policy_lab::backend::seeded::<B, _>(&Default::default(), 2, || {
        TransformerConfig::new(23)
            .with_architecture(Architecture::Llama)
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_n_kv_heads(Some(2))
            .with_head_dim(Some(16))
            .with_qk_norm(true)
            .with_tie_embeddings(false)
            .with_d_ff(80)
            .with_max_seq_len(32)
            .init(&Default::default())
    });
    let model = widened(model, 3.0);
    let worst = largest_difference(&model, &prompts(23), 8);
    println!("gated GQA model: largest logit difference {worst:e}");
    assert!(worst <= 1e-5, "largest logit difference {worst:e}");
}

#[test]
fn the_host_path_gives_a_wide_models_logits_within_1e_5() {
    // Wider than the host path's blocks of 768 columns: a gated MLP of 2 x 800 columns and
    // an output layer of 1,600 (untied) or 256-row blocks of a 1,600-row `wte` (tied), each
    // block's product written into its columns of rows 1,600 floats apart.
    for tied in [true, false] {
        let model = policy_lab::backend::seeded::<B, _>(&Default::default(), 3, || {
            TransformerConfig::new(1600)
                .with_architecture(Architecture::Llama)
                .with_d_model(32)
                .with_n_layers(2)
                .with_n_heads(4)
                .with_n_kv_heads(Some(2))
                .with_tie_embeddings(tied)
                .with_d_ff(800)
                .with_max_seq_len(32)
                .init(&Default::default())
        });
        let model = widened(model, 3.0);
        let worst = largest_difference(&model, &prompts(1600), 6);
        println!("wide model (tied {tied}): largest logit difference {worst:e}");
        assert!(
            worst <= 1e-5,
            "tied {tied}: largest logit difference {worst:e}"
        );
    }
}

#[test]
fn the_host_path_gives_each_hugging_face_checkpoints_logits_within_1e_5() {
    for name in [
        "hf-tiny-llama",
        "hf-tiny-llama3",
        "hf-tiny-qwen2",
        "hf-tiny-qwen3",
    ] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let hf = load_hf::<B>(&dir, &Default::default()).unwrap();
        let vocab = hf.model.vocab_size() as u32;
        let worst = largest_difference(&hf.model, &prompts(vocab.min(200)), 6);
        println!("{name}: largest logit difference {worst:e}");
        assert!(worst <= 1e-5, "{name}: largest logit difference {worst:e}");
    }
}

#[test]
fn generate_samples_what_the_tensor_path_would() {
    // `generate` takes the host path; replay its loop on the tensor path with the same
    // random numbers and compare every token and log-probability.
    let model = gpt2::<B>(4);
    let prompts = prompts(19);
    let sampling = SamplingConfig {
        max_new_tokens: 10,
        ..SamplingConfig::default()
    };
    let (pad, eos) = (0, 5);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let got =
        policy_lab::lm::generate::generate(&model, &prompts, pad, eos, &sampling, &mut rng, None)
            .unwrap();

    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut decoder = Decoder::tensors(&model, prompts.len());
    let mut batch = Batch::left_padded(&prompts, pad);
    let (mut tokens, mut logp) = (vec![vec![]; prompts.len()], vec![vec![]; prompts.len()]);
    let mut finished = vec![false; prompts.len()];
    for _ in 0..sampling.max_new_tokens {
        let logits = decoder.last_logits(&batch).unwrap();
        let mut next = Batch {
            tokens: vec![vec![pad]; prompts.len()],
            valid: vec![vec![false]; prompts.len()],
        };
        for r in 0..prompts.len() {
            if finished[r] {
                continue;
            }
            let (t, lp) = sample_token(&logits[r * 19..(r + 1) * 19], &sampling, &mut rng);
            tokens[r].push(t);
            logp[r].push(lp);
            finished[r] = t == eos;
            next.tokens[r][0] = t;
            next.valid[r][0] = true;
        }
        if finished.iter().all(|f| *f) {
            break;
        }
        batch = next;
    }
    assert_eq!(got.tokens, tokens);
    assert!(
        got.tokens.iter().any(|t| t.last() == Some(&eos)),
        "some row stops at EOS"
    );
    for (a, b) in got.logp.iter().flatten().zip(logp.iter().flatten()) {
        assert!((a - b).abs() <= 1e-5, "log-probabilities {a} and {b}");
    }
}
