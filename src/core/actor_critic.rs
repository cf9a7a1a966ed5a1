//! The actor-critic pair every rung before GRPO learns: a categorical policy over the actions
//! and a state-value critic, two separate networks as in CleanRL (REINFORCE's baseline, TRPO's
//! and PPO's critic).

use burn::module::Module;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

use crate::core::nn::{gradient_step, Mlp};
use crate::core::rollout::{Collector, VecEnv};
use crate::scalar;

// ANCHOR: ac_actor_critic
/// The actor (a categorical policy over the actions) and the critic (a state value), two
/// separate networks as in CleanRL.
#[derive(Module, Debug)]
pub struct ActorCritic<B: burn::tensor::backend::Backend> {
    pub actor: Mlp<B>,
    pub critic: Mlp<B>,
}

impl<B: burn::tensor::backend::Backend> ActorCritic<B> {
    pub fn new(obs_dim: usize, num_actions: usize, hidden: &[usize], device: &B::Device) -> Self {
        Self {
            actor: Mlp::new(obs_dim, hidden, num_actions, 0.01, device),
            critic: Mlp::new(obs_dim, hidden, 1, 1.0, device),
        }
    }
}
// ANCHOR_END: ac_actor_critic

/// Where every toy learner starts: the collector over `venv` and a fresh actor-critic sized
/// for its observations and actions, both drawn from the one `seed` (as CleanRL's `--seed`).
pub fn start<B: burn::tensor::backend::Backend>(
    venv: VecEnv,
    hidden: &[usize],
    seed: u64,
    device: &B::Device,
) -> (Collector, ActorCritic<B>) {
    let collector = Collector::new(venv, seed);
    let model = crate::backend::seeded::<B, _>(device, seed, || {
        ActorCritic::new(collector.obs_dim(), collector.num_actions(), hidden, device)
    });
    (collector, model)
}

/// One step of the critic's regression toward `targets` (REINFORCE's baseline, TRPO's
/// critic): the mean squared error of `V(obs)` against them, then one optimizer step.
/// Returns that error, before the step.
pub fn critic_step<B, O>(
    critic: &mut Mlp<B>,
    optim: &mut O,
    obs: Tensor<B, 2>,
    targets: Tensor<B, 1>,
    lr: f64,
) -> f64
where
    B: AutodiffBackend,
    O: Optimizer<Mlp<B>, B>,
{
    let v = critic.forward(obs).squeeze_dim::<1>(1);
    let loss = (v - targets).powi_scalar(2).mean();
    let error = scalar(&loss);
    *critic = gradient_step(critic.clone(), loss, optim, lr, None).0;
    error
}
