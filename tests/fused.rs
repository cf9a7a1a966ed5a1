//! The fused kernels of `kernels` against the definitions they replace (GPT-2's GELU, the
//! selective log-softmax, a linear layer with its activation): values and gradients within
//! 1e-6 (of each value's size where it is above 1; a sum's gradient, of its largest value), on
//! burn's CPU backend with and without autodiff; and a whole transformer's log-probabilities and
//! parameter gradients with the kernels on and off.

use std::sync::Mutex;

use burn::module::{AutodiffModule, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use policy_lab::algos::ppo::{self, Minibatch, Ppo, PpoConfig};
use policy_lab::algos::trpo::{Trpo, TrpoConfig};
use policy_lab::backend::{Cpu, Inference};
use policy_lab::core::checkpoint::{load_optim, save_optim};
use policy_lab::core::flat::{flat_grads, flat_params, set_flat_params};
use policy_lab::core::nn::Mlp;
use policy_lab::core::objective::{clipped_surrogate, ratio};
use policy_lab::core::rollout::{actor_log_probs, make_vec_env};
use policy_lab::kernels::{self, Activation};
use policy_lab::lm::generate::{completion_log_probs, selective_log_softmax};
use policy_lab::lm::model::{gelu_tanh, Transformer, TransformerConfig};

mod common;

/// The kernels' switch is one per process: tests that use them take turns.
static SWITCH: Mutex<()> = Mutex::new(());

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// The largest difference, relative to the expected value's size where it is above 1.
fn largest_difference(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0, f32::max)
}

/// The largest difference over the largest expected value (at least 1).
fn scaled_difference(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1.0f32, |m, w| m.max(w.abs()));
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
        / scale
}

/// The largest [`scaled_difference`] over several gradients.
fn largest_scaled_difference(got: &[Vec<f32>], want: &[Vec<f32>]) -> f32 {
    got.iter()
        .zip(want)
        .map(|(a, b)| scaled_difference(a, b))
        .fold(0.0, f32::max)
}

/// Values from -6 to 6, and a few far out where `exp` saturates.
fn inputs<B: Backend>(shape: [usize; 2]) -> Tensor<B, 2> {
    let x = Tensor::<B, 2>::random(shape, Distribution::Uniform(-6.0, 6.0), &Default::default());
    let far = Tensor::<B, 2>::from_data(
        TensorData::new(vec![-60.0f32, -20.0, -0.0, 0.0, 20.0, 60.0], [1, 6]),
        &Default::default(),
    );
    let far = far
        .repeat_dim(1, shape[1].div_ceil(6))
        .narrow(1, 0, shape[1]);
    Tensor::cat(vec![x, far], 0)
}

#[test]
fn fused_gelu_gives_the_definitions_values_and_gradients_within_1e_6() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    <Cpu as Backend>::seed(&Default::default(), 1);
    let x = inputs::<Cpu>([37, 53]).require_grad();
    let w = Tensor::<Cpu, 2>::random(x.dims(), Distribution::Normal(0.0, 1.0), &x.device());

    let fused_y = kernels::gelu_tanh(&x).expect("Autodiff<NdArray> has the kernel");
    let defined_y = gelu_tanh(x.clone());
    let value_gap = largest_difference(&values(fused_y.clone()), &values(defined_y.clone()));

    let grad_of = |y: Tensor<Cpu, 2>| {
        let grads = (y * w.clone()).sum().backward();
        values(x.grad(&grads).unwrap())
    };
    let grad_gap = largest_difference(&grad_of(fused_y), &grad_of(defined_y));
    println!("gelu: values {value_gap:e}, gradients {grad_gap:e}");
    assert!(value_gap <= 1e-6, "values differ by {value_gap:e}");
    assert!(grad_gap <= 1e-6, "gradients differ by {grad_gap:e}");

    // Without autodiff, and on an input that asks for no gradient under it.
    let plain = inputs::<Inference>([5, 7]);
    let got = values(kernels::gelu_tanh(&plain).expect("NdArray has the kernel"));
    assert!(largest_difference(&got, &values(gelu_tanh(plain))) <= 1e-6);
    let untracked = inputs::<Cpu>([5, 7]);
    let got = values(kernels::gelu_tanh(&untracked).unwrap());
    assert!(largest_difference(&got, &values(gelu_tanh(untracked))) <= 1e-6);
}

#[test]
fn fused_selective_log_softmax_gives_the_definitions_values_and_gradients_within_1e_6() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    <Cpu as Backend>::seed(&Default::default(), 2);
    let device = Default::default();
    let (n, t, vocab) = (3, 5, 41);
    for temperature in [1.0f32, 0.7] {
        // Logits of a few units, one far above the rest in each row.
        let logits =
            Tensor::<Cpu, 3>::random([n, t, vocab], Distribution::Normal(0.0, 3.0), &device)
                .require_grad();
        let targets: Vec<i64> = (0..n * t).map(|i| (i * 7 % vocab) as i64).collect();
        let targets =
            Tensor::<Cpu, 3, Int>::from_data(TensorData::new(targets, [n, t, 1]), &device);
        let w = Tensor::<Cpu, 3>::random([n, t, 1], Distribution::Normal(0.0, 1.0), &device);

        let fused_logp = kernels::selective_log_softmax(&logits, &targets, 1.0 / temperature)
            .expect("Autodiff<NdArray> has the kernel");
        let defined_logp = selective_log_softmax(logits.clone() / temperature, targets.clone());
        let value_gap =
            largest_difference(&values(fused_logp.clone()), &values(defined_logp.clone()));
        let grad_of = |logp: Tensor<Cpu, 3>| {
            let grads = (logp * w.clone()).sum().backward();
            values(logits.grad(&grads).unwrap())
        };
        let grad_gap = largest_difference(&grad_of(fused_logp), &grad_of(defined_logp));
        println!("selective log-softmax at T = {temperature}: values {value_gap:e}, gradients {grad_gap:e}");
        assert!(value_gap <= 1e-6, "values differ by {value_gap:e}");
        assert!(grad_gap <= 1e-6, "gradients differ by {grad_gap:e}");
    }
    // Without autodiff.
    let logits = Tensor::<Inference, 3>::random([2, 3, 9], Distribution::Normal(0.0, 3.0), &device);
    let targets = Tensor::<Inference, 3, Int>::from_data(
        TensorData::new(vec![0i64, 8, 4, 1, 2, 3], [2, 3, 1]),
        &device,
    );
    let got = values(
        kernels::selective_log_softmax(&logits, &targets, 1.0).expect("NdArray has the kernel"),
    );
    assert!(largest_difference(&got, &values(selective_log_softmax(logits, targets))) <= 1e-6);
}

/// `act(x W + b)` by burn's layer and the activation's definition.
fn defined_linear<B: Backend>(
    layer: &Linear<B>,
    x: Tensor<B, 2>,
    activation: Activation,
) -> Tensor<B, 2> {
    let y = layer.forward(x);
    match activation {
        Activation::Identity => y,
        Activation::Tanh => policy_lab::core::nn::tanh(y),
        Activation::GeluTanh => gelu_tanh(y),
    }
}

#[test]
fn fused_linear_gives_the_definitions_values_and_gradients_within_1e_6() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    <Cpu as Backend>::seed(&device, 3);
    // The first is large enough to be cut over the cores; the second is not.
    for (m, k, n) in [(300, 96, 80), (7, 5, 3)] {
        for activation in [Activation::Identity, Activation::Tanh, Activation::GeluTanh] {
            let mut layer = LinearConfig::new(k, n).init::<Cpu>(&device);
            // A bias of a few units, so that a wrong bias gradient shows.
            layer.bias = Some(Param::from_tensor(Tensor::random(
                [n],
                Distribution::Normal(0.0, 2.0),
                &device,
            )));
            let x = Tensor::<Cpu, 2>::random([m, k], Distribution::Normal(0.0, 2.0), &device)
                .require_grad();
            let w = Tensor::<Cpu, 2>::random([m, n], Distribution::Normal(0.0, 1.0), &device);
            let bias = layer.bias.as_ref().unwrap().val();
            let fused_y = kernels::linear(&x, &layer.weight.val(), Some(&bias), activation)
                .expect("Autodiff<NdArray> has the kernel");
            let defined_y = defined_linear(&layer, x.clone(), activation);
            let value_gap =
                largest_difference(&values(fused_y.clone()), &values(defined_y.clone()));
            let grads_of = |y: Tensor<Cpu, 2>| {
                let grads = (y * w.clone()).sum().backward();
                [
                    values(x.grad(&grads).unwrap()),
                    values(layer.weight.val().grad(&grads).unwrap()),
                    values(layer.bias.as_ref().unwrap().val().grad(&grads).unwrap()),
                ]
            };
            // dW and db sum m terms each, some of which cancel: each gradient's differences
            // are measured against its largest value.
            let grad_gap = largest_scaled_difference(&grads_of(fused_y), &grads_of(defined_y));
            println!(
                "linear {m}x{k}x{n} {activation:?}: values {value_gap:e}, gradients {grad_gap:e}"
            );
            assert!(value_gap <= 1e-6, "values differ by {value_gap:e}");
            assert!(grad_gap <= 1e-6, "gradients differ by {grad_gap:e}");
        }
    }
    // Without autodiff; and the same numbers on one core as on all of them.
    let layer = LinearConfig::new(96, 80).init::<Inference>(&device);
    let x = Tensor::<Inference, 2>::random([300, 96], Distribution::Normal(0.0, 2.0), &device);
    let fused_on = |x: &Tensor<Inference, 2>| {
        let bias = layer.bias.as_ref().unwrap().val();
        values(kernels::linear(x, &layer.weight.val(), Some(&bias), Activation::GeluTanh).unwrap())
    };
    let all_cores = fused_on(&x);
    let one_core = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| fused_on(&x));
    assert_eq!(
        all_cores, one_core,
        "the cut over the cores changes no number"
    );
    let defined = values(defined_linear(&layer, x, Activation::GeluTanh));
    assert!(largest_difference(&all_cores, &defined) <= 1e-6);
}

#[test]
fn fused_products_without_a_bias_and_with_a_transposed_weight_match_burns() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    <Cpu as Backend>::seed(&device, 4);
    let (m, k, n) = (260, 64, 150);
    let up = Tensor::<Cpu, 2>::random([m, n], Distribution::Normal(0.0, 1.0), &device);
    for transposed in [false, true] {
        let x = Tensor::<Cpu, 2>::random([m, k], Distribution::Normal(0.0, 2.0), &device)
            .require_grad();
        let shape = if transposed { [n, k] } else { [k, n] };
        let w =
            Tensor::<Cpu, 2>::random(shape, Distribution::Normal(0.0, 0.5), &device).require_grad();
        let (fused_y, defined_y) = if transposed {
            (
                kernels::matmul_transposed(&x, &w),
                x.clone().matmul(w.clone().transpose()),
            )
        } else {
            (
                kernels::linear(&x, &w, None, Activation::Identity),
                x.clone().matmul(w.clone()),
            )
        };
        let fused_y = fused_y.expect("Autodiff<NdArray> has the kernel");
        let value_gap = largest_difference(&values(fused_y.clone()), &values(defined_y.clone()));
        let grads_of = |y: Tensor<Cpu, 2>| {
            let grads = (y * up.clone()).sum().backward();
            [
                values(x.grad(&grads).unwrap()),
                values(w.grad(&grads).unwrap()),
            ]
        };
        let grad_gap = largest_scaled_difference(&grads_of(fused_y), &grads_of(defined_y));
        println!(
            "product, W transposed {transposed}: values {value_gap:e}, gradients {grad_gap:e}"
        );
        assert!(value_gap <= 1e-6, "values differ by {value_gap:e}");
        assert!(grad_gap <= 1e-6, "gradients differ by {grad_gap:e}");
    }
}

#[test]
fn fused_clipped_surrogate_gives_the_definitions_values_and_gradients_to_the_bit() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    <Cpu as Backend>::seed(&device, 6);
    let n = 4096;
    for (eps_low, eps_high) in [(0.2, 0.2), (0.2, 0.28)] {
        let logp = Tensor::<Cpu, 1>::random([n], Distribution::Uniform(-3.0, -0.1), &device)
            .require_grad();
        // Ratios from about 0.5 to 1.6: inside the clip range, below it and above it. (Made
        // from the values, as a learner makes them: `detach` would keep `require_grad`.)
        let old_logp = Tensor::<Cpu, 1>::from_data(logp.to_data(), &device)
            + Tensor::<Cpu, 1>::random([n], Distribution::Uniform(-0.5, 0.7), &device);
        // Advantages of both signs, and some exactly 0.
        let adv = Tensor::<Cpu, 1>::random([n], Distribution::Normal(0.0, 1.0), &device)
            * Tensor::<Cpu, 1>::random([n], Distribution::Bernoulli(0.9), &device);
        let up = Tensor::<Cpu, 1>::random([n], Distribution::Normal(0.0, 1.0), &device);

        let fused_loss = kernels::clipped_surrogate(&logp, &old_logp, &adv, eps_low, eps_high)
            .expect("Autodiff<NdArray> has the kernel");
        let defined_loss = clipped_surrogate(
            ratio(logp.clone(), old_logp.clone()),
            adv.clone(),
            eps_low,
            eps_high,
        );
        assert_eq!(
            values(fused_loss.clone()),
            values(defined_loss.clone()),
            "values"
        );
        let grad_of = |loss: Tensor<Cpu, 1>| {
            let grads = (loss * up.clone()).sum().backward();
            values(logp.grad(&grads).unwrap())
        };
        let (a, b) = (grad_of(fused_loss), grad_of(defined_loss));
        let zeros = b.iter().filter(|g| **g == 0.0).count();
        println!(
            "clipped surrogate ({eps_low}, {eps_high}): {zeros} of {n} gradients are 0 (clipped)"
        );
        assert!(
            zeros > n / 20 && zeros < n / 2,
            "the cases cover both sides of the clip"
        );
        assert_eq!(a, b, "gradients");
    }
    // Tracked constants are refused (the kernel gives no gradient for them).
    let logp = Tensor::<Cpu, 1>::zeros([3], &device).require_grad();
    let tracked = logp.clone() * 2.0;
    assert!(kernels::clipped_surrogate(&logp, &tracked, &tracked, 0.2, 0.2).is_none());
}

/// A minibatch of `n` samples over `k` actions for PPO's loss: log-probabilities and returns
/// spread so that the ratio and the value change each fall inside and outside their clip.
fn ppo_minibatch(n: usize, k: usize) -> (Tensor<Cpu, 2>, Tensor<Cpu, 2>, Minibatch<Cpu>) {
    let device = Default::default();
    let normal = |shape: [usize; 2], sd: f64| {
        Tensor::<Cpu, 2>::random(shape, Distribution::Normal(0.0, sd), &device)
    };
    let logits = normal([n, k], 1.5).require_grad();
    let state_values = normal([n, 1], 2.0).require_grad();
    let actions = Tensor::<Cpu, 1, Int>::random([n], Distribution::Uniform(0.0, k as f64), &device);
    // The old policy's log-probabilities: the current ones moved by up to about +-0.5.
    let logp = values(
        log_softmax(logits.clone().inner(), 1)
            .gather(1, actions.clone().inner().unsqueeze_dim(1))
            .squeeze_dim::<1>(1),
    );
    let moved: Vec<f32> = logp
        .iter()
        .zip(values(normal([n, 1], 0.3)))
        .map(|(l, d)| l + d)
        .collect();
    let one = |t: Tensor<Cpu, 2>| t.squeeze_dim::<1>(1);
    let old_values = values(state_values.clone())
        .iter()
        .zip(values(normal([n, 1], 0.4)))
        .map(|(v, d)| v + d)
        .collect::<Vec<f32>>();
    let mb = Minibatch {
        obs: Tensor::zeros([n, 4], &device),
        actions,
        old_logp: Tensor::from_data(TensorData::new(moved, [n]), &device),
        advantages: one(normal([n, 1], 1.0)),
        returns: one(normal([n, 1], 2.0)),
        old_values: Tensor::from_data(TensorData::new(old_values, [n]), &device),
    };
    (logits, state_values, mb)
}

#[test]
fn fused_ppo_loss_gives_the_definitions_loss_parts_and_gradients_to_the_bit() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    <Cpu as Backend>::seed(&Default::default(), 8);
    for (k, clip_vloss, scale) in [
        (2, true, 1.0),
        (4, true, 3.7),
        (2, false, 1.0),
        (5, false, -0.6),
    ] {
        let (logits, state_values, mb) = ppo_minibatch(128, k);
        let mut config = PpoConfig::default();
        config.update.clip_vloss = clip_vloss;
        let run = |fused_path: bool| {
            let (loss, parts) = if fused_path {
                kernels::ppo_loss(&logits, &state_values, mb.targets(), config.coefficients())
                    .expect("Autodiff<NdArray> has the kernel")
            } else {
                ppo::loss(logits.clone(), state_values.clone(), &mb, &config)
            };
            let grads = (loss.clone() * scale).backward();
            let g_logits = values(logits.grad(&grads).unwrap());
            let g_values = values(state_values.grad(&grads).unwrap());
            (values(loss), parts, g_logits, g_values)
        };
        let (fused_run, defined) = (run(true), run(false));
        let clipped = fused_run
            .1
            .ratio
            .iter()
            .filter(|r| (*r - 1.0).abs() > 0.2)
            .count();
        println!("ppo loss, {k} actions, clip_vloss {clip_vloss}: {clipped} of 128 ratios outside the clip range");
        assert!(
            clipped > 5 && clipped < 100,
            "the cases cover both sides of the clip"
        );
        assert_eq!(fused_run.0, defined.0, "the loss");
        assert_eq!(fused_run.1, defined.1, "its parts");
        assert_eq!(fused_run.2, defined.2, "the logits' gradient");
        assert_eq!(fused_run.3, defined.3, "the values' gradient");
    }
}

/// Adam steps `steps` on `net` at the inputs `x`, each loss a different scale of its outputs.
fn adam_steps<O: burn::optim::Optimizer<Mlp<Cpu>, Cpu>>(
    mut net: Mlp<Cpu>,
    optim: &mut O,
    x: &Tensor<Cpu, 2>,
    steps: std::ops::Range<usize>,
) -> Mlp<Cpu> {
    for step in steps {
        let loss = (net.forward(x.clone()) * (step as f32 + 0.5))
            .powi_scalar(2)
            .mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3 / (1.0 + step as f64), net, grads);
    }
    net
}

#[test]
fn fused_adam_takes_burns_steps_to_the_bit_and_loads_burns_checkpoints() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    <Cpu as Backend>::seed(&Default::default(), 9);
    // (Reading the weights makes them: burn initializes a parameter when first used.)
    let start = Mlp::<Cpu>::new(4, &[32, 32], 3, 1.0, &Default::default());
    let start = set_flat_params(start.clone(), &flat_params(&start));
    let x = inputs::<Cpu>([16, 4]).narrow(1, 0, 4);
    for epsilon in [1e-5, 1e-8] {
        let mut ours = kernels::Adam::new().with_epsilon(epsilon).init();
        let mut burns = burn::optim::AdamConfig::new().with_epsilon(epsilon).init();
        let a = adam_steps(start.clone(), &mut ours, &x, 0..6);
        let b = adam_steps(start.clone(), &mut burns, &x, 0..6);
        assert_ne!(
            flat_params(&a),
            flat_params(&start),
            "the steps move the weights"
        );
        assert_eq!(
            flat_params(&a),
            flat_params(&b),
            "weights after 6 steps, epsilon {epsilon}"
        );

        // burn's Adam saved; ours loads it and goes on as burn's would.
        let dir = std::env::temp_dir().join(format!("policy-lab-adam-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("optim");
        save_optim(&burns, &path).unwrap();
        let mut loaded = load_optim(
            kernels::Adam::new().with_epsilon(epsilon).init(),
            &path,
            &Default::default(),
        )
        .unwrap();
        let a = adam_steps(a, &mut loaded, &x, 6..9);
        let b = adam_steps(b, &mut burns, &x, 6..9);
        assert_eq!(
            flat_params(&a),
            flat_params(&b),
            "3 more steps from burn's checkpoint"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// `run` with the kernels on, then with them off (the switch is on again after); the caller
/// holds the switch's turn.
fn on_and_off<T>(run: impl Fn() -> T) -> (T, T) {
    kernels::set_enabled(true);
    let on = run();
    kernels::set_enabled(false);
    let off = run();
    kernels::set_enabled(true);
    (on, off)
}

/// Every metric of `iterations` iterations but the clock's, as bits (a NaN equals itself).
fn metric_bits(
    iterations: usize,
    mut iterate: impl FnMut() -> policy_lab::Metrics,
) -> Vec<(&'static str, u64)> {
    (0..iterations)
        .flat_map(|_| iterate())
        .filter(|(k, _)| !k.contains("time") && !k.contains("sps"))
        .map(|(k, v)| (k, v.to_bits()))
        .collect()
}

#[test]
fn ppo_on_cartpole_gives_the_same_numbers_with_the_kernels_on_and_off() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let (on, off) = on_and_off(|| {
        let config = PpoConfig {
            num_steps: 64,
            ..PpoConfig::default()
        };
        let venv = make_vec_env("CartPole-v1", 4).unwrap();
        let mut ppo = Ppo::<Cpu>::new(config, venv, 3, 100_000, Default::default()).unwrap();
        let metrics = metric_bits(4, || ppo.iterate().unwrap());
        (metrics, flat_params(&ppo.model))
    });
    assert!(on
        .0
        .iter()
        .any(|(k, v)| *k == "policy_loss" && f64::from_bits(*v) != 0.0));
    assert_eq!(on.0, off.0, "the metrics of 4 updates");
    assert_eq!(on.1, off.1, "the weights after 4 updates");
}

/// A 64-64 tanh MLP as PPO's actor and critic are made, its weights spread 4x wider so that
/// some pre-activations reach where `tanh` saturates.
fn mlp() -> Mlp<Cpu> {
    let mlp = policy_lab::backend::seeded::<Cpu, _>(&Default::default(), 11, || {
        Mlp::new(4, &[64, 64], 3, 1.0, &Default::default())
    });
    let p = flat_params(&mlp);
    set_flat_params(mlp, &p.iter().map(|v| v * 4.0 + 0.01).collect::<Vec<_>>())
}

#[test]
fn an_mlp_gives_the_same_values_and_gradients_to_the_bit_with_the_kernels_on_and_off() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let net = mlp();
    let obs_values = values(inputs::<Inference>([128, 4]));
    let rows = obs_values.len() / 4;
    let obs = || {
        Tensor::<Cpu, 2>::from_data(
            TensorData::new(obs_values.clone(), [rows, 4]),
            &Default::default(),
        )
    };
    let weights = Tensor::<Cpu, 2>::random(
        [rows, 3],
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    );
    let (on, off) = on_and_off(|| {
        // Training: values, and the gradients of a weighted sum of them, the input's included.
        let x = obs().require_grad();
        let out = net.forward(x.clone());
        let grads = (out.clone() * weights.clone()).sum().backward();
        let input_grad = values(x.grad(&grads).unwrap());
        let param_grads = flat_grads(&net, &GradientsParams::from_grads(grads, &net));
        // Inference (the rollouts' path): the same network without autodiff, and the
        // log-probabilities a rollout samples from.
        let inner = net.valid();
        let inference = values(inner.forward(obs().inner()));
        let log_probs = actor_log_probs(&inner, &obs_values, 4);
        (values(out), input_grad, param_grads, inference, log_probs)
    });
    // Finite everywhere, the saturated units' gradients too (they were NaN before the cap in
    // `nn::tanh`, from `exp(2z) = inf` times 0).
    for (what, v) in [
        ("values", &on.0),
        ("input gradient", &on.1),
        ("gradients", &on.2),
    ] {
        assert!(v.iter().all(|v| v.is_finite()), "{what} not finite");
    }
    assert!(on.2.iter().any(|&g| g != 0.0));
    assert_eq!(on.0, off.0, "values");
    assert_eq!(on.1, off.1, "the input's gradient");
    assert_eq!(on.2, off.2, "the parameters' gradients");
    assert_eq!(on.3, off.3, "values without autodiff");
    assert_eq!(on.3, on.0, "values without autodiff and with it");
    assert_eq!(on.4, off.4, "a rollout's log-probabilities");
    // Some hidden units saturate (|tanh| = 1 in f32) and some do not: both sides are covered.
    let first = net.valid();
    let hidden = kernels::linear(
        &obs().inner(),
        &first_layer_weight(&first),
        None,
        Activation::Tanh,
    )
    .unwrap();
    let h = values(hidden);
    assert!(h.iter().any(|v| v.abs() == 1.0) && h.iter().any(|v| v.abs() < 0.5));
}

fn first_layer_weight(net: &Mlp<Inference>) -> Tensor<Inference, 2> {
    let p = flat_params(net);
    Tensor::from_data(
        TensorData::new(p[..4 * 64].to_vec(), [4, 64]),
        &Default::default(),
    )
}

#[test]
fn trpo_on_cartpole_gives_the_same_numbers_with_the_kernels_on_and_off() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let (on, off) = on_and_off(|| {
        let config = TrpoConfig {
            num_steps: 64,
            ..TrpoConfig::default()
        };
        let venv = make_vec_env("CartPole-v1", 4).unwrap();
        let mut trpo = Trpo::<Cpu>::new(config, venv, 3, Default::default()).unwrap();
        let metrics = metric_bits(3, || trpo.iterate().unwrap());
        (metrics, flat_params(&trpo.model))
    });
    assert!(on.0.len() > 6 && on.0.iter().any(|(_, v)| f64::from_bits(*v) != 0.0));
    assert_eq!(on.0, off.0, "the metrics of 3 updates");
    assert_eq!(on.1, off.1, "the weights after 3 updates");
}

#[test]
fn the_switch_turns_the_kernels_off() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let x = inputs::<Inference>([2, 3]);
    kernels::set_enabled(false);
    let off = kernels::gelu_tanh(&x).is_none();
    kernels::set_enabled(true);
    assert!(off, "set_enabled(false) leaves the definitions to run");
    assert!(kernels::gelu_tanh(&x).is_some());
}

/// A GPT-2-like model with weights spread 3x wider than its initialization, so that the
/// activations reach GELU's curved part and the logits a few units.
fn model() -> Transformer<Cpu> {
    let model = policy_lab::backend::seeded::<Cpu, _>(&Default::default(), 5, || {
        TransformerConfig::new(23)
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(64)
            .with_max_seq_len(24)
            .init(&Default::default())
    });
    let flat: Vec<f32> = flat_params(&model).iter().map(|w| w * 3.0).collect();
    set_flat_params(model, &flat)
}

/// The completions' log-probabilities and the gradient of their weighted sum with respect to
/// every parameter.
fn log_probs_and_gradients(model: &Transformer<Cpu>) -> (Vec<f32>, Vec<f32>) {
    let prompts = vec![vec![3, 4, 5], vec![6, 7], vec![8, 9, 10, 11]];
    let completions = vec![vec![12, 13, 14, 15], vec![16], vec![17, 18, 1]];
    let (logp, mask) = completion_log_probs(model, &prompts, &completions, 0, 0.9).unwrap();
    let weights = Tensor::<Cpu, 2>::from_data(
        TensorData::new(
            (0..12).map(|i| 1.0 - i as f32 * 0.15).collect::<Vec<_>>(),
            [3, 4],
        ),
        &logp.device(),
    );
    let loss = (logp.clone() * mask * weights).sum();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    (values(logp), flat_grads(model, &grads))
}

#[test]
fn a_transformers_log_probs_and_gradients_are_the_same_with_the_kernels_on_and_off() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let model = model();
    let ((logp_on, grads_on), (logp_off, grads_off)) =
        on_and_off(|| log_probs_and_gradients(&model));
    let value_gap = largest_difference(&logp_on, &logp_off);
    let grad_gap = scaled_difference(&grads_on, &grads_off);
    println!("transformer: log-probs {value_gap:e}, gradients {grad_gap:e} of the largest");
    assert!(
        logp_on != logp_off,
        "the kernels ran (the results differ in the last bits)"
    );
    assert!(
        value_gap <= 1e-5,
        "log-probabilities differ by {value_gap:e}"
    );
    assert!(
        grad_gap <= 1e-5,
        "gradients differ by {grad_gap:e} of the largest"
    );
}

/// The reference model's log-probabilities run on the inner backend, without a graph: the
/// kernels' forward passes alone, against the definitions.
#[test]
fn a_reference_models_log_probs_are_the_same_with_the_kernels_on_and_off() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    // The same model, without autodiff (as `GrpoLm` keeps its reference).
    let reference: Transformer<Inference> = model().valid();
    let prompts = vec![vec![3, 4, 5], vec![6, 7], vec![8, 9, 10, 11]];
    let completions = vec![vec![12, 13, 14, 15], vec![16], vec![17, 18, 1]];
    let log_probs = || {
        let (logp, _) = completion_log_probs(&reference, &prompts, &completions, 0, 0.9).unwrap();
        values(logp)
    };
    let (on, off) = on_and_off(log_probs);
    let gap = largest_difference(&on, &off);
    println!("reference model: log-probs {gap:e}");
    assert!(
        on != off,
        "the kernels ran (the results differ in the last bits)"
    );
    assert!(gap <= 1e-5, "log-probabilities differ by {gap:e}");
}

/// Generation with the one switch: the host decoder (`lm::infer`) with the kernels on, the
/// transformer's own tensor path with them off; the same greedy tokens, log-probabilities
/// within 1e-5.
#[test]
fn generation_takes_the_definitions_path_with_the_kernels_off_and_gives_the_same_tokens() {
    use policy_lab::envs::EnvRng;
    use policy_lab::lm::generate::{generate, SamplingConfig};
    use policy_lab::lm::infer::Decoder;
    use rand::SeedableRng;
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let model: Transformer<Inference> = model().valid();
    let host = on_and_off(|| matches!(Decoder::new(&model, 3, 16), Decoder::Host(_)));
    assert_eq!(host, (true, false), "the host decoder on, then off");
    let prompts = vec![vec![3, 4, 5], vec![6, 7], vec![8, 9, 10, 11]];
    let (on, off) = on_and_off(|| {
        let mut rng = EnvRng::seed_from_u64(3);
        generate(
            &model,
            &prompts,
            0,
            u32::MAX,
            &SamplingConfig::greedy(8),
            &mut rng,
            None,
        )
        .unwrap()
    });
    assert_eq!(on.tokens, off.tokens, "the greedy tokens");
    assert_eq!(
        on.tokens.iter().map(Vec::len).sum::<usize>(),
        24,
        "8 tokens a row"
    );
    let flat = |c: &policy_lab::lm::generate::Completions| c.logp.concat();
    let gap = largest_difference(&flat(&on), &flat(&off));
    println!("generation: log-probs {gap:e}");
    assert!(gap <= 1e-5, "log-probabilities differ by {gap:e}");
}

/// GRPO on the language model with the kernels on and off: the same completions and rewards
/// (sampling reads log-probabilities that differ in their last bits), and losses and weights
/// within 1e-5 of each other after 2 iterations.
#[test]
fn grpo_on_a_language_model_gives_the_same_run_with_the_kernels_on_and_off() {
    use policy_lab::algos::grpo::LossType;
    use policy_lab::algos::grpo_lm::GrpoLm;
    use policy_lab::lm::task::task_tokenizer;
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    // The data-parallel tests' tiny model and task (`tests/common`), 4 groups of 4.
    let s = common::setup();
    let (on, off) = on_and_off(|| {
        let config = common::config(LossType::Grpo, 4);
        let (model, env) = (s.model.clone(), s.env.clone());
        let mut grpo = GrpoLm::new(config, s.max_len, model, env, task_tokenizer(), 7).unwrap();
        let metrics: Vec<policy_lab::Metrics> = (0..2).map(|_| grpo.iterate().unwrap()).collect();
        (metrics, flat_params(&grpo.model))
    });
    for (a, b) in on.0.iter().zip(&off.0) {
        for key in ["reward", "completions/mean_length", "frac_reward_zero_std"] {
            assert_eq!(a[key], b[key], "{key}");
        }
        let (la, lb) = (a["loss"], b["loss"]);
        assert!(
            (la - lb).abs() <= 1e-5 * la.abs().max(1.0),
            "loss {la} against {lb}"
        );
    }
    let gap = scaled_difference(&on.1, &off.1);
    println!("grpo on a language model: weights {gap:e} of the largest apart after 2 iterations");
    assert!(
        on.1 != off.1,
        "the kernels ran (the weights differ in the last bits)"
    );
    assert!(gap <= 1e-5, "weights differ by {gap:e} of the largest");
}
