//! PPO on wgpu agrees with PPO on the CPU (NdArray): same initial weights, same seed, a few
//! updates, the same numbers within a tolerance. Runs with `--features wgpu`; in CI on
//! llvmpipe, a software Vulkan driver.
#![cfg(feature = "wgpu")]

use policy_lab::algos::ppo::{Ppo, PpoConfig};
use policy_lab::backend::{Cpu, Wgpu};
use policy_lab::flat::{flat_params, set_flat_params};
use policy_lab::rollout::make_vec_env;

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
