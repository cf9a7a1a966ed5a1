//! Neural networks for policies and critics, and the small tools around them.
//!
//! * [`Mlp`]: a multi-layer perceptron with `tanh` activations and orthogonal
//!   initialization (gain sqrt(2) for hidden layers, a chosen gain for the head, zero
//!   biases), as CleanRL and Stable-Baselines3 build them;
//! * [`categorical`]: log-probabilities, entropy and sampling of a categorical policy;
//! * [`clip_grad_norm`]: PyTorch's `clip_grad_norm_`, one global norm over all parameters.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::kernels::{self, Activation};

/// A multi-layer perceptron: `Linear → tanh → ... → Linear`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    layers: Vec<Linear<B>>,
}

impl<B: Backend> Mlp<B> {
    /// The device the network's weights are on.
    pub fn device(&self) -> B::Device {
        self.layers[0].weight.device()
    }

    // ANCHOR: ppo_orthogonal_init
    /// `input → hidden[0] → ... → output`; hidden layers get orthogonal weights with gain
    /// sqrt(2), the output layer gain `head_gain` (0.01 for a policy head, 1.0 for a critic).
    pub fn new(
        input: usize,
        hidden: &[usize],
        output: usize,
        head_gain: f64,
        device: &B::Device,
    ) -> Self {
        let sizes: Vec<usize> = std::iter::once(input)
            .chain(hidden.iter().copied())
            .chain([output])
            .collect();
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let gain = if i + 2 == sizes.len() {
                    head_gain
                } else {
                    std::f64::consts::SQRT_2
                };
                let mut layer = LinearConfig::new(w[0], w[1])
                    .with_initializer(Initializer::Orthogonal { gain })
                    .init(device);
                layer.bias = Some(Param::from_tensor(Tensor::zeros([w[1]], device)));
                layer
            })
            .collect();
        Self { layers }
    }
    // ANCHOR_END: ppo_orthogonal_init

    /// Checks that `record` (a saved network) has this network's layer shapes, so that
    /// loading it cannot fail halfway; the error names the first difference.
    pub fn check_record(&self, record: &MlpRecord<B>) -> Result<(), String> {
        if record.layers.len() != self.layers.len() {
            return Err(format!(
                "it has {} layers, this network {}",
                record.layers.len(),
                self.layers.len()
            ));
        }
        for (i, (saved, ours)) in record.layers.iter().zip(&self.layers).enumerate() {
            // `lazy_shape`, not `val()`: reading the value would draw this fresh network's
            // initial weights from burn's global generator, unlocked, while another learner
            // may be seeding it (see `backend::seeded`); a test of resumed runs caught it.
            let (a, b) = (
                saved.weight.val().dims(),
                ours.weight.lazy_shape().dims::<2>(),
            );
            if a != b {
                return Err(format!(
                    "layer {i} has weights of shape {a:?}, this network {b:?}"
                ));
            }
        }
        Ok(())
    }

    /// `[batch, input] → [batch, output]`.
    ///
    /// On burn's CPU backend each layer with its `tanh` is one fused operation
    /// ([`kernels::linear`]: one pass, one autodiff node, the same numbers to the bit); elsewhere,
    /// or with the kernels off, the definition: burn's `Linear`, then [`tanh`].
    pub fn forward(&self, mut x: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let activation = if i < last {
                Activation::Tanh
            } else {
                Activation::Identity
            };
            let bias = layer.bias.as_ref().map(|b| b.val());
            x = kernels::linear(&x, &layer.weight.val(), bias.as_ref(), activation).unwrap_or_else(
                || match activation {
                    Activation::Tanh => tanh(layer.forward(x)),
                    _ => layer.forward(x),
                },
            );
        }
        x
    }
}

/// `tanh(x) = 1 - 2 / (exp(2x) + 1)`, built from `exp` and arithmetic.
///
/// The same function as `burn::tensor::activation::tanh`, but burn 0.21's NdArray backend
/// computes `tanh` one element at a time in `f64` through the C library, which took almost
/// half of PPO's time on CartPole; its `f32` `exp` and arithmetic are several times faster.
/// For large `|x|` the formula saturates cleanly to exactly `1` or `-1`. `x` is capped at
/// [`TANH_CAP`] first: above about 44, `exp(2x)` overflows to `inf`, and the backward pass
/// multiplied `inf` by `0` (a NaN gradient from one saturated unit); at the cap `tanh` is
/// already `1` in f32 and its gradient `0`, so the cap changes no other number.
pub fn tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let e = (x.clamp_max(TANH_CAP) * 2.0).exp();
    (e + 1.0).recip() * (-2.0) + 1.0
}

/// Where [`tanh`] caps its input: `tanh(30) = 1` in f32, `exp(60)` is finite (one constant
/// with the fused layer's, which lives beside it in `kernels`).
pub use crate::kernels::TANH_CAP;

/// A categorical distribution over discrete actions, given by logits `[batch, actions]`.
pub mod categorical {
    use burn::tensor::activation::log_softmax;
    use burn::tensor::backend::Backend;
    use burn::tensor::{Int, Tensor};
    use rand::RngExt;

    /// `log pi(a|s)` for every action: `[batch, actions]`.
    pub fn log_probs<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 2> {
        log_softmax(logits, 1)
    }

    /// `log pi(a_i|s_i)` of the taken actions: `[batch]`.
    pub fn log_prob_of<B: Backend>(
        log_probs: Tensor<B, 2>,
        actions: Tensor<B, 1, Int>,
    ) -> Tensor<B, 1> {
        log_probs.gather(1, actions.unsqueeze_dim(1)).squeeze_dim(1)
    }

    /// The entropy `-sum_a pi(a|s) log pi(a|s)`: `[batch]`.
    pub fn entropy<B: Backend>(log_probs: Tensor<B, 2>) -> Tensor<B, 1> {
        -(log_probs.clone().exp() * log_probs)
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// Draws one action from each row of log-probabilities (on the CPU): returns the actions
    /// and their log-probabilities.
    pub fn sample(
        log_probs: &[f32],
        num_actions: usize,
        rng: &mut impl rand::Rng,
    ) -> (Vec<usize>, Vec<f32>) {
        log_probs
            .chunks(num_actions)
            .map(|row| {
                let u: f32 = rng.random();
                let mut acc = 0.0;
                let a = row.iter().position(|lp| {
                    acc += lp.exp();
                    acc > u
                });
                // Rounding can leave the total a hair under u: take the last likely action.
                let a = a.unwrap_or_else(|| row.iter().rposition(|lp| lp.is_finite()).unwrap_or(0));
                (a, row[a])
            })
            .unzip()
    }

    /// The most likely action of each row.
    pub fn greedy(log_probs: &[f32], num_actions: usize) -> Vec<usize> {
        log_probs
            .chunks(num_actions)
            .map(|row| (0..row.len()).fold(0, |best, a| if row[a] > row[best] { a } else { best }))
            .collect()
    }
}

/// Scales all gradients together so that their global L2 norm is at most `max_norm`
/// (PyTorch's `clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_grad_norm<B: AutodiffBackend, M: Module<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f32,
) -> f32 {
    struct SquaredNorm<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        total: f32,
        _b: std::marker::PhantomData<B>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                self.total += g.powi_scalar(2).sum().into_scalar().elem::<f32>();
            }
        }
    }
    struct Scale<'a, B: AutodiffBackend> {
        grads: &'a mut GradientsParams,
        factor: f32,
        _b: std::marker::PhantomData<B>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let id: ParamId = param.id;
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(id) {
                self.grads.register(id, g * self.factor);
            }
        }
    }
    use burn::tensor::ElementConversion;
    // ANCHOR: ppo_clip_grad_norm
    let mut norm = SquaredNorm::<B> {
        grads,
        total: 0.0,
        _b: std::marker::PhantomData,
    };
    module.visit(&mut norm);
    let total = norm.total.sqrt();
    if total > max_norm {
        let factor = max_norm / (total + 1e-6);
        module.visit(&mut Scale::<B> {
            grads,
            factor,
            _b: std::marker::PhantomData,
        });
    }
    total
    // ANCHOR_END: ppo_clip_grad_norm
}

/// One optimizer step on `loss`: backpropagate, clip the global gradient norm (when
/// `max_grad_norm` is set), update. Returns the module and the gradient norm before clipping
/// (`NaN` when not clipped).
pub fn gradient_step<B, M, O>(
    module: M,
    loss: Tensor<B, 1>,
    optim: &mut O,
    lr: f64,
    max_grad_norm: Option<f32>,
) -> (M, f32)
where
    B: AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
    O: burn::optim::Optimizer<M, B>,
{
    let mut grads = GradientsParams::from_grads(loss.backward(), &module);
    let norm = match max_grad_norm {
        Some(max) => clip_grad_norm(&module, &mut grads, max),
        None => f32::NAN,
    };
    (optim.step(lr, module, grads), norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    #[test]
    fn tanh_and_its_gradient_are_right_and_finite_where_it_saturates() {
        let xs = [
            -200.0f32, -60.0, -3.0, -0.5, 0.0, 0.5, 3.0, 29.0, 31.0, 50.0, 200.0,
        ];
        let x = Tensor::<Cpu, 1>::from_floats(xs, &Default::default()).require_grad();
        let y = tanh(x.clone());
        let grads = y.clone().sum().backward();
        let dx: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
        let y: Vec<f32> = y.into_data().to_vec().unwrap();
        for ((&x, y), dx) in xs.iter().zip(y).zip(dx) {
            let want = f64::from(x).tanh();
            assert!(
                (f64::from(y) - want).abs() < 1e-6,
                "tanh({x}) = {y}, not {want}"
            );
            let want = 1.0 - want * want;
            // Before the cap, the gradient above x = 44 was NaN.
            assert!(
                (f64::from(dx) - want).abs() < 1e-6,
                "tanh'({x}) = {dx}, not {want}"
            );
        }
    }
}
