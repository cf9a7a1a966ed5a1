//! Mixed precision (`precision = "bf16"` or `"f16"`, `lm::model::Precision`) against f32, on
//! burn's Flex CPU backend, which stores bf16 and f16 (burn's NdArray stores only f32 and
//! f64, and is refused). The same weights give close logits and gradients, the gradients
//! come back to the f32 master weights in f32, and SFT learns as it does in f32.
//!
//! The tests on Flex need its cargo feature (it is one more CPU backend to compile):
//! `cargo test --features flex --test lm_precision`, as `.ci/run` does.

use policy_lab::lm::model::Precision;
use policy_lab::run::lm::{run_lm, LmAlgo, LmRunConfig};
use policy_lab::run::Start;

#[cfg(feature = "flex")]
mod on_flex {
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::optim::GradientsParams;
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{DType, Tensor, TensorData};
    use policy_lab::core::flat::{dot, flat_grads};
    use policy_lab::lm::model::{Architecture, Batch, Precision, Transformer, TransformerConfig};
    use policy_lab::run::lm::run_sft;
    use policy_lab::run::Start;

    use super::{both_learn_and_follow, loss_windows, sft};

    type A = Autodiff<Flex>;

    const VOCAB: usize = 32;

    /// A GPT-2 model, and a Qwen3-like Llama (grouped-query attention, an explicit head width,
    /// RMSNorm on queries and keys, an untied output layer).
    fn models() -> Vec<(&'static str, Transformer<A>)> {
        let gpt2 = TransformerConfig::new(VOCAB)
            .with_d_model(64)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(128)
            .with_max_seq_len(24);
        let qwen3 = gpt2
            .clone()
            .with_architecture(Architecture::Llama)
            .with_n_kv_heads(Some(2))
            .with_head_dim(Some(32))
            .with_qk_norm(true)
            .with_qkv_bias(false)
            .with_attn_out_bias(false)
            .with_mlp_bias(false)
            .with_tie_embeddings(false);
        let device = Default::default();
        vec![
            (
                "gpt2",
                policy_lab::backend::seeded::<A, _>(&device, 1, || gpt2.init(&device)),
            ),
            (
                "qwen3",
                policy_lab::backend::seeded::<A, _>(&device, 2, || qwen3.init(&device)),
            ),
        ]
    }

    /// Three left-padded rows of different lengths.
    fn batch() -> Batch {
        let rows: Vec<Vec<u32>> = vec![
            (1..20).map(|t| (t * 7 % 31) as u32 + 1).collect(),
            vec![3, 9, 27, 17, 19],
            (0..12).map(|t| (t * 5 % 29) as u32 + 2).collect(),
        ];
        Batch::left_padded(&rows, 0)
    }

    /// Every real position's log-probabilities, flattened.
    fn log_probs(model: &Transformer<A>, batch: &Batch) -> Vec<f32> {
        let logits = model.forward(batch).unwrap();
        assert_eq!(logits.dtype(), DType::F32, "logits come back in f32");
        let lp: Vec<f32> = log_softmax(logits, 2).into_data().to_vec().unwrap();
        let mut out = Vec::new();
        for (r, valid) in batch.valid.iter().enumerate() {
            for (p, &v) in valid.iter().enumerate() {
                if v {
                    let at = (r * batch.len() + p) * VOCAB;
                    out.extend_from_slice(&lp[at..at + VOCAB]);
                }
            }
        }
        out
    }

    fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn argmaxes(lp: &[f32]) -> Vec<usize> {
        lp.chunks(VOCAB)
            .map(|row| {
                (0..VOCAB)
                    .max_by(|&i, &j| row[i].total_cmp(&row[j]))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn bf16_and_f16_log_probabilities_are_close_to_f32() {
        let batch = batch();
        for (name, model) in models() {
            let reference = log_probs(&model, &batch);
            // The rounding of each type: bf16 keeps 8 bits of mantissa, f16 11. (Measured:
            // bf16 2.5e-3 and 3.5e-3, f16 3.7e-4 and 4.5e-4.)
            for (precision, bound) in [(Precision::Bf16, 1e-2), (Precision::F16, 2e-3)] {
                let lp = log_probs(&model.clone().with_precision(precision), &batch);
                let diff = largest_difference(&reference, &lp);
                let greedy_same = argmaxes(&reference)
                    .iter()
                    .zip(argmaxes(&lp))
                    .filter(|(a, b)| **a == *b)
                    .count();
                println!(
                    "{name} {}: largest log-prob difference {diff:.2e}, greedy token equal at \
                 {greedy_same} of {} positions",
                    precision.name(),
                    reference.len() / VOCAB
                );
                // It did run in the lower precision (a forward pass in f32 gives exactly 0) ...
                assert!(diff > 1e-6, "{name} {precision:?} gave f32's numbers");
                // ... and stays within that precision's rounding.
                assert!(diff < bound, "{name} {precision:?}: {diff} >= {bound}");
            }
        }
    }

    /// The gradient of the mean negative log-likelihood of each next token.
    fn gradient(model: &Transformer<A>, batch: &Batch) -> Vec<f32> {
        let device = Default::default();
        let (rows, len) = (batch.rows(), batch.len());
        let mut target = vec![0f32; rows * len * VOCAB];
        let mut count = 0.0;
        for r in 0..rows {
            for p in 0..len - 1 {
                if batch.valid[r][p] {
                    target[(r * len + p) * VOCAB + batch.tokens[r][p + 1] as usize] = 1.0;
                    count += 1.0;
                }
            }
        }
        let target =
            Tensor::<A, 3>::from_data(TensorData::new(target, [rows, len, VOCAB]), &device);
        let logits = model.forward(batch).unwrap();
        let loss = -(log_softmax(logits, 2) * target).sum() / count;
        let grads = GradientsParams::from_grads(loss.backward(), model);
        // flat_grads reads each gradient as f32: a bf16 or f16 gradient would fail here.
        flat_grads(model, &grads)
    }

    #[test]
    fn gradients_reach_the_f32_weights_in_f32_and_agree_with_f32() {
        let batch = batch();
        for (name, model) in models() {
            let reference = gradient(&model, &batch);
            // (Measured: cosines 0.99994-0.99997 in bf16, 0.999996-0.999997 in f16.)
            for (precision, min_cosine) in [(Precision::Bf16, 0.9995), (Precision::F16, 0.99995)] {
                let g = gradient(&model.clone().with_precision(precision), &batch);
                let cosine =
                    dot(&reference, &g) / (dot(&reference, &reference) * dot(&g, &g)).sqrt();
                let relative = (dot(&g, &g) / dot(&reference, &reference)).sqrt();
                println!(
                    "{name} {}: cosine with f32's gradient {cosine:.6}, norm ratio {relative:.4}",
                    precision.name()
                );
                assert!(g != reference, "{name} {precision:?} gave f32's gradient");
                assert!(cosine > min_cosine, "{name} {precision:?}: cosine {cosine}");
                assert!(
                    (relative - 1.0).abs() < 0.005,
                    "{name} {precision:?}: norm ratio {relative}"
                );
            }
            // The copies the learners make keep the precision.
            let bf16 = model.with_precision(Precision::Bf16);
            assert_eq!(bf16.clone().precision, Precision::Bf16);
            assert_eq!(bf16.valid().precision, Precision::Bf16);
        }
    }

    /// SFT's loss in windows of 50 steps: f32 and bf16 from the same weights and batches.
    #[test]
    fn sft_in_bf16_learns_as_in_f32() {
        let root =
            std::env::temp_dir().join(format!("policy-lab-precision-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let device = Default::default();
        let mut curves = Vec::new();
        for precision in [Precision::F32, Precision::Bf16] {
            let out = root.join(precision.name());
            run_sft::<A>(
                &sft(precision),
                &device,
                &out,
                Start::New,
                &mut std::io::sink(),
            )
            .unwrap();
            let windows = loss_windows(&out);
            println!("{}: loss per 50 steps {windows:.3?}", precision.name());
            curves.push(windows);
        }
        let (f32_loss, bf16_loss) = (&curves[0], &curves[1]);
        assert_eq!(f32_loss.len(), 8);
        assert_ne!(f32_loss, bf16_loss, "the bf16 run computed in f32");
        // (Below a loss of 0.1, a late spike of either run, Adam's and not the number type's,
        // dwarfs the difference; seen in f32 here.)
        both_learn_and_follow(f32_loss, bf16_loss);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// `device = "flex"` (`--device flex`) runs the same SFT on Flex: the same start (the
    /// seed draws the same weights) and a loss curve that follows the `cpu` (NdArray) run's.
    /// The backends' kernels round differently, so the curves are close, not equal.
    #[test]
    fn sft_on_device_flex_learns_as_on_cpu() {
        use policy_lab::backend::Device;
        use policy_lab::run::lm::run_lm;
        let root = std::env::temp_dir().join(format!("policy-lab-flex-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // Flex runs the definitions (`kernels` has no kernels for it), and so does the
        // `cpu` run it is held to, with the kernels off: the same operations on NdArray. (With
        // them on, the `cpu` curve moves in its last bits, and at this seed it took a loss
        // spike at step 300 that this comparison is not about: 0.072, 0.160, 0.084 per 50
        // steps, where the kernels-off run went 0.080, 0.031, 0.018. `tests/fused.rs` holds
        // the kernels to the definitions.)
        policy_lab::kernels::set_enabled(false);
        let mut curves = Vec::new();
        for device in [Device::Cpu, Device::Flex] {
            let out = root.join(device.name());
            let config = policy_lab::run::lm::LmRunConfig {
                device,
                ..sft(Precision::F32)
            };
            run_lm(&config, &out, Start::New, &mut std::io::sink()).unwrap();
            let windows = loss_windows(&out);
            println!("{device}: loss per 50 steps {windows:.3?}");
            curves.push(windows);
        }
        policy_lab::kernels::set_enabled(true);
        let (cpu, flex) = (&curves[0], &curves[1]);
        assert_eq!(cpu.len(), 8);
        assert!(
            (cpu[0] - flex[0]).abs() <= 1e-3 * cpu[0],
            "the same start: {cpu:?} {flex:?}"
        );
        both_learn_and_follow(cpu, flex);
        // The same operations in another backend's kernels: while the loss is high the two
        // curves are the same curve (to 0.3% in windows 0-3 at 4721b7a).
        for w in 0..4 {
            assert!(
                (cpu[w] - flex[w]).abs() <= 0.02 * cpu[w],
                "window {w}: {cpu:?} {flex:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}

mod common;

fn sft(precision: Precision) -> LmRunConfig {
    let mut c = LmRunConfig {
        precision,
        ..common::small_lm_run(LmAlgo::Sft)
    };
    c.task.test_size = 32;
    c.sft.steps = 400;
    c.sft.eval_every = 400;
    c.sft.stop_at_accuracy = 2.0;
    c
}

/// The SFT loss of the run in `dir`, averaged over windows of 50 steps.
#[cfg(feature = "flex")]
fn loss_windows(dir: &std::path::Path) -> Vec<f64> {
    let losses: Vec<f64> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64())
        .collect();
    losses
        .chunks(50)
        .map(|w| w.iter().sum::<f64>() / w.len() as f64)
        .collect()
}

/// Both loss curves (windows of 50 steps) learn, the last window at a tenth of the first or
/// less, and `other` stays within 15% of `reference` while the loss is above 0.2. Below that
/// the two runs' rounding differences have compounded for 200 steps and the curves wander
/// apart without either being wrong: at 4721b7a the cpu and Flex SFT curves agreed to 0.3% in
/// windows 0-3 and then read 0.171 against 0.199 (window 4) before both reached 0.02.
#[cfg(feature = "flex")]
fn both_learn_and_follow(reference: &[f64], other: &[f64]) {
    for curve in [reference, other] {
        assert!(curve[7] < 0.1 * curve[0], "{curve:?}");
    }
    for (w, (a, b)) in reference.iter().zip(other).enumerate() {
        if *a > 0.2 {
            assert!((a - b).abs() <= 0.15 * a, "window {w}: {a} against {b}");
        }
    }
}

#[test]
fn the_ndarray_cpu_backend_refuses_bf16_naming_the_key() {
    let out = std::env::temp_dir().join(format!("policy-lab-precision-cpu-{}", std::process::id()));
    let err = run_lm(
        &sft(Precision::Bf16),
        &out,
        Start::New,
        &mut std::io::sink(),
    )
    .unwrap_err()
    .to_string();
    println!("{err}");
    assert!(err.contains("precision = \"bf16\""), "{err}");
    assert!(err.contains("--device cuda"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn precision_is_a_config_key() {
    let c = LmRunConfig::from_toml("algo = \"sft\"\nprecision = \"bf16\"\n").unwrap();
    assert_eq!(c.precision, Precision::Bf16);
    assert_eq!(LmRunConfig::default().precision, Precision::F32);
    let err = LmRunConfig::from_toml("algo = \"sft\"\nprecision = \"f8\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("precision") || err.contains("f8"), "{err}");
}
