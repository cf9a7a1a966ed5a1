//! PPO on wgpu agrees with PPO on the CPU (NdArray): same initial weights, same seed, a few
//! updates, the same numbers within a tolerance. Runs with `--features wgpu`; in CI on
//! llvmpipe, a software Vulkan driver.
#![cfg(feature = "wgpu")]

use policy_lab::algos::ppo::{Ppo, PpoConfig};
use policy_lab::backend::{Cpu, Wgpu};
use policy_lab::core::flat::{flat_params, set_flat_params};
use policy_lab::core::rollout::make_vec_env;

/// Relative tolerance: float32 reductions run in a different order on the GPU backend.
const TOL: f64 = 2e-3;

#[test]
fn ppo_on_wgpu_matches_the_cpu() {
    let config = PpoConfig {
        num_steps: 32,
        ..PpoConfig::default()
    };
    let mut cpu = Ppo::<Cpu>::new(
        config.clone(),
        make_vec_env("CartPole-v1", 4).unwrap(),
        7,
        10_000,
        Default::default(),
    )
    .unwrap();
    let mut gpu = Ppo::<Wgpu>::new(
        config,
        make_vec_env("CartPole-v1", 4).unwrap(),
        7,
        10_000,
        Default::default(),
    )
    .unwrap();
    // The same initial weights on both.
    let initial = flat_params(&cpu.model);
    gpu.model = set_flat_params(gpu.model.clone(), &initial);
    assert_eq!(flat_params(&gpu.model), initial);

    for update in 0..3 {
        let (a, b) = (cpu.iterate().unwrap(), gpu.iterate().unwrap());
        for key in ["policy_loss", "value_loss", "entropy", "approx_kl"] {
            let (x, y) = (a[key], b[key]);
            assert!(
                (x - y).abs() <= TOL * x.abs().max(1e-2),
                "update {update}, {key}: cpu {x}, wgpu {y}"
            );
        }
    }
    let (p, q) = (flat_params(&cpu.model), flat_params(&gpu.model));
    let diff = p
        .iter()
        .zip(&q)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff < 1e-3,
        "largest parameter difference after 3 updates: {diff}"
    );
}

#[test]
fn the_transformer_on_wgpu_matches_the_cpu() {
    use policy_lab::lm::generate::{generate, SamplingConfig};
    use policy_lab::lm::model::{Batch, TransformerConfig};
    type CpuInner = burn::backend::NdArray;
    type WgpuInner = <Wgpu as burn::tensor::backend::AutodiffBackend>::InnerBackend;
    let config = TransformerConfig::new(16)
        .with_d_model(32)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_d_ff(64)
        .with_max_seq_len(24);
    let cpu = config.init::<CpuInner>(&Default::default());
    let gpu = set_flat_params(
        config.init::<WgpuInner>(&Default::default()),
        &flat_params(&cpu),
    );
    let prompts = vec![vec![1, 5, 6, 7], vec![1, 8]];
    let batch = Batch::left_padded(&prompts, 0);
    let a: Vec<f32> = cpu.forward(&batch).unwrap().into_data().to_vec().unwrap();
    let b: Vec<f32> = gpu.forward(&batch).unwrap().into_data().to_vec().unwrap();
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "largest logit difference: {diff}");
    let greedy = SamplingConfig::greedy(6);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let x = generate(&cpu, &prompts, 0, 2, &greedy, &mut rng, None).unwrap();
    let y = generate(&gpu, &prompts, 0, 2, &greedy, &mut rng, None).unwrap();
    assert_eq!(x.tokens, y.tokens);
}
