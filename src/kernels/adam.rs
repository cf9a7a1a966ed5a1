//! burn's Adam step as one pass per parameter.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamState, AdaptiveMomentumState, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use super::host::*;

// ANCHOR: fused_adam
/// Adam (Kingma and Ba, 2015) as burn's `Adam` computes it, with burn's state (so an
/// optimizer's checkpoint is the same file), as one pass over each parameter's values on the
/// CPU backend. burn's own step is about fifteen whole-tensor operations per parameter, each
/// a fresh array; here each value's moments, update and new value are computed in one loop,
/// with the same operations in the same order, so the numbers are burn's to the bit. On other
/// backends, or with the kernels off, it is burn's `Adam`. With `t` the step count, `g` the
/// gradient and `lr` the learning rate:
///
/// ```text
/// m = beta_1 m + (1 - beta_1) g,        v = beta_2 v + (1 - beta_2) g^2
/// c = sqrt(1 - beta_2^t),               p -= lr (m c / (1 - beta_1^t)) / (sqrt(v) + epsilon c)
/// ```
///
/// Definition: `burn::optim::Adam`. Held to it by `tests/fused.rs`,
/// `fused_adam_takes_burns_steps_to_the_bit_and_loads_burns_checkpoints`.
#[derive(Clone)]
pub struct Adam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    burn: burn::optim::Adam,
}

impl Default for Adam {
    fn default() -> Self {
        Self::new()
    }
}

impl Adam {
    /// burn's defaults: `beta_1 = 0.9`, `beta_2 = 0.999`, `epsilon = 1e-5`.
    pub fn new() -> Self {
        Self::with(0.9, 0.999, 1e-5)
    }

    pub fn with_epsilon(self, epsilon: f32) -> Self {
        Self::with(self.beta_1, self.beta_2, epsilon)
    }

    fn with(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        let burn = burn::optim::AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            burn,
        }
    }

    /// The optimizer for a module `M` on the autodiff backend `B`.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Adam, M, B> {
        OptimizerAdaptor::from(self)
    }

    /// One step on host values: `None` unless the tensors are burn-ndarray's (and the kernels
    /// on).
    fn host_step<B: Backend, const D: usize>(
        &self,
        lr: f64,
        tensor: &Tensor<B, D>,
        grad: &Tensor<B, D>,
        state: Option<&AdamState<B, D>>,
    ) -> Option<(Tensor<B, D>, AdamState<B, D>)> {
        let (Host::Plain(p), Host::Plain(g)) = (on_host(tensor)?, on_host(grad)?) else {
            return None;
        };
        let (p, g) = (values(&p), values(&g));
        let moments = match state {
            Some(s) if s.momentum.max_moment_2.is_none() => Some((
                constant(on_host(&s.momentum.moment_1)?)?,
                constant(on_host(&s.momentum.moment_2)?)?,
                s.momentum.time,
            )),
            Some(_) => return None,
            None => None,
        };
        let (b1, b2) = (self.beta_1, self.beta_2);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let n = p.len();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let g = slice(&g);
        let time = match &moments {
            Some((m_old, v_old, time)) => {
                let (m_old, v_old) = (slice(m_old), slice(v_old));
                for i in 0..n {
                    m[i] = m_old[i] * b1 + g[i] * f1;
                    v[i] = v_old[i] * b2 + (g[i] * g[i]) * f2;
                }
                time + 1
            }
            None => {
                for i in 0..n {
                    m[i] = g[i] * f1;
                    v[i] = (g[i] * g[i]) * f2;
                }
                1
            }
        };
        let t = time as i32;
        let correction = (1.0 - b2.powi(t)).sqrt();
        let factor = correction / (1.0 - b1.powi(t));
        let eps = self.epsilon * correction;
        let lr = lr as f32;
        let new: Vec<f32> = slice(&p)
            .iter()
            .zip(m.iter().zip(&v))
            .map(|(&p, (&m, &v))| p - ((m * factor) / (v.sqrt() + eps)) * lr)
            .collect();
        let shape = p.shape().to_vec();
        let tensor = |values: Vec<f32>| from_host::<B, D, _>(array(&shape, values));
        let momentum = AdaptiveMomentumState::new(time, tensor(m), tensor(v));
        Some((tensor(new), AdamState::new(momentum)))
    }
}

impl<B: Backend> SimpleOptimizer<B> for Adam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdamState<B, D>>,
    ) -> (Tensor<B, D>, Option<AdamState<B, D>>) {
        match self.host_step(lr, &tensor, &grad, state.as_ref()) {
            Some((tensor, state)) => (tensor, Some(state)),
            None => self.burn.step(lr, tensor, grad, state),
        }
    }

    fn to_device<const D: usize>(state: AdamState<B, D>, device: &B::Device) -> AdamState<B, D> {
        <burn::optim::Adam as SimpleOptimizer<B>>::to_device(state, device)
    }
}
// ANCHOR_END: fused_adam
