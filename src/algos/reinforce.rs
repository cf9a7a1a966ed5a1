//! REINFORCE with a learned baseline (Williams, 1992; SpinningUp's VPG): the first rung.
//!
//! Read it next to the book's policy-gradient chapter. One iteration:
//!
//! 1. **collect** `num_steps` steps in each of `num_envs` environments;
//! 2. **advantages**: the discounted return-to-go `G_t` (eq. RF-3), cut where the rollout or
//!    a time limit cuts the episode and bootstrapped there with the critic, minus the
//!    critic's baseline `V(s_t)` (eq. RF-4);
//! 3. **update**: one gradient step on `-mean(log pi(a_t|s_t) * A_t)` (eq. RF-2), then
//!    `vf_iters` regression steps of the critic toward `G_t`;
//! 4. **metrics**.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::core::actor_critic::{self, critic_step, ActorCritic};
use crate::core::advantage::{discounted_returns, normalize};
use crate::core::nn::{categorical, gradient_step, Mlp};
use crate::core::rollout::{critic_values, obs_and_actions, tensor1, Collector, Rollout, VecEnv};
use crate::kernels::Adam;
use crate::{scalar, ConfigError, Metrics};

// ANCHOR: rf_config
/// REINFORCE's hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReinforceConfig {
    pub num_envs: usize,
    pub num_steps: usize,
    /// The policy's learning rate (Adam).
    pub learning_rate: f64,
    /// The critic's learning rate (Adam).
    pub vf_learning_rate: f64,
    /// Critic regression steps per iteration.
    pub vf_iters: usize,
    pub gamma: f32,
    /// Normalize the advantages of each batch.
    pub norm_adv: bool,
    pub ent_coef: f32,
    /// Subtract the critic's baseline (turn off, with `norm_adv`, to see the variance it saves:
    /// normalizing subtracts the batch mean, itself a constant baseline).
    pub baseline: bool,
    pub hidden: Vec<usize>,
}

impl Default for ReinforceConfig {
    fn default() -> Self {
        Self {
            num_envs: 8,
            num_steps: 64,
            learning_rate: 3e-3,
            vf_learning_rate: 1e-3,
            vf_iters: 10,
            gamma: 0.99,
            norm_adv: true,
            ent_coef: 0.0,
            baseline: true,
            hidden: vec![64, 64],
        }
    }
}
// ANCHOR_END: rf_config

impl ReinforceConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, msg: &str| ConfigError::unless(ok, "reinforce", msg);
        ConfigError::check_rollout("reinforce", self.num_envs, self.num_steps, &self.hidden)?;
        check(
            self.learning_rate > 0.0
                && self.vf_learning_rate > 0.0
                && self.learning_rate.is_finite()
                && self.vf_learning_rate.is_finite(),
            "learning rates must be positive and finite",
        )?;
        check((0.0..=1.0).contains(&self.gamma), "gamma must be in [0, 1]")
    }
}

/// A REINFORCE learner.
pub struct Reinforce<B: AutodiffBackend> {
    pub config: ReinforceConfig,
    pub model: ActorCritic<B>,
    pub(crate) actor_optim: OptimizerAdaptor<Adam, Mlp<B>, B>,
    pub(crate) critic_optim: OptimizerAdaptor<Adam, Mlp<B>, B>,
    /// The environments, the action sampler and the step count.
    pub collector: Collector,
    device: B::Device,
    pub iteration: usize,
}

impl<B: AutodiffBackend> Reinforce<B> {
    pub fn new(
        config: ReinforceConfig,
        venv: VecEnv,
        seed: u64,
        device: B::Device,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (collector, model) = actor_critic::start(venv, &config.hidden, seed, &device);
        Ok(Self {
            config,
            model,
            actor_optim: Adam::new().init(),
            critic_optim: Adam::new().init(),
            collector,
            device,
            iteration: 0,
        })
    }

    /// One iteration: collect, advantages, update, metrics. Each step is a method of its
    /// own, so that a notebook cell can call them one at a time.
    pub fn iterate(&mut self) -> policy_lab_envs::Result<Metrics> {
        // Assignment (f) begins: collect a rollout, its advantages, one update (steps 1-3).
        let rollout = self.collect()?;
        let advantages = self.advantages(&rollout);
        Ok(self.update(&rollout, advantages))
        // Assignment (f) ends.
    }

    /// 1. Collect `num_steps` steps of each environment copy with the current policy.
    pub fn collect(&mut self) -> policy_lab_envs::Result<Rollout> {
        let c = &self.config;
        // ANCHOR: rf_collect
        let inference = self.model.valid();
        let r = self.collector.collect(&inference.actor, c.num_steps)?;
        // ANCHOR_END: rf_collect
        Ok(r)
    }

    /// 2. The returns and the advantages of a rollout, from the critic as it is now.
    pub fn advantages(&self, r: &Rollout) -> Advantages {
        let c = &self.config;
        let inference = self.model.valid();
        // ANCHOR: rf_returns
        // Returns-to-go, bootstrapped where the episode was cut (eq. RF-3), minus the
        // baseline (eq. RF-4).
        let values = critic_values(&inference.critic, &r.obs, r.obs_dim);
        let bootstrap = r.next_values(&values, &inference.critic);
        let returns = discounted_returns(
            &r.rewards,
            &r.episode_ends(),
            &bootstrap,
            c.num_envs,
            c.gamma,
        );
        // ANCHOR_END: rf_returns
        // ANCHOR: rf_baseline
        let mut adv: Vec<f32> = if c.baseline {
            returns.iter().zip(&values).map(|(g, v)| g - v).collect()
        } else {
            returns.clone()
        };
        if c.norm_adv {
            normalize(&mut adv, 1e-8);
        }
        // ANCHOR_END: rf_baseline
        Advantages {
            values,
            returns,
            adv,
        }
    }

    /// 3. One policy-gradient step on the rollout with its advantages, then the critic's
    ///    regression; returns the iteration's metrics (4).
    pub fn update(&mut self, r: &Rollout, a: Advantages) -> Metrics {
        let c = self.config.clone();
        let Advantages {
            values,
            returns,
            adv,
        } = a;
        let all: Vec<usize> = (0..r.transitions()).collect();
        let (obs, actions) = obs_and_actions::<B>(r, &all, &self.device);
        let (pg_loss, entropy) = self.policy_step(obs.clone(), actions, adv);

        // ANCHOR: rf_critic
        let ev = crate::core::metrics::explained_variance(&values, &returns);
        let target = tensor1::<B>(returns, &self.device);
        let mut v_loss = 0.0;
        for _ in 0..c.vf_iters {
            let critic = &mut self.model.critic;
            let (x, y) = (obs.clone(), target.clone());
            v_loss = critic_step(critic, &mut self.critic_optim, x, y, c.vf_learning_rate);
        }
        // ANCHOR_END: rf_critic
        self.iteration += 1;

        // ANCHOR: rf_metrics
        // 4. Metrics.
        let mut m = Metrics::new();
        m.insert("policy_loss", pg_loss);
        m.insert("entropy", entropy);
        m.insert("value_loss", v_loss);
        m.insert("explained_variance", ev);
        m.insert("global_step", self.global_step() as f64);
        crate::core::rollout::episode_metrics(r, &mut m);
        m
        // ANCHOR_END: rf_metrics
    }

    // ANCHOR: rf_policy_step
    /// 3a. One policy-gradient step (eq. RF-2) on the states `obs` (`[steps, obs_dim]`), the
    /// actions taken there and their advantages, with the entropy bonus `ent_coef`, at the
    /// learning rate `learning_rate`; returns the policy loss and the mean entropy.
    pub fn policy_step(
        &mut self,
        obs: Tensor<B, 2>,
        actions: Tensor<B, 1, Int>,
        adv: Vec<f32>,
    ) -> (f64, f64) {
        // Assignment (f) begins: the loss of eq. (RF-2) minus the entropy bonus, then one step.
        let c = &self.config;
        let log_probs = categorical::log_probs(self.model.actor.forward(obs));
        let logp = categorical::log_prob_of(log_probs.clone(), actions);
        let entropy = categorical::entropy(log_probs).mean();
        let pg_loss = -(logp * tensor1::<B>(adv, &self.device)).mean();
        let loss = pg_loss.clone() - entropy.clone() * c.ent_coef;
        let (actor, _) = gradient_step(
            self.model.actor.clone(),
            loss,
            &mut self.actor_optim,
            c.learning_rate,
            None,
        );
        self.model.actor = actor;
        (scalar(&pg_loss), scalar(&entropy))
        // Assignment (f) ends.
    }
    // ANCHOR_END: rf_policy_step
}

/// What step 2 computes from a rollout, one entry per step (time-major, as the rollout).
#[derive(Clone, Debug, PartialEq)]
pub struct Advantages {
    /// `V(s_t)` from the critic before this iteration's update: the baseline.
    pub values: Vec<f32>,
    /// The returns-to-go `G_t` (eq. RF-3), the critic's regression targets.
    pub returns: Vec<f32>,
    /// The weights of the scores: `G_t - V(s_t)` (eq. RF-4), or `G_t` without the baseline,
    /// normalized over the batch when `norm_adv` is on.
    pub adv: Vec<f32>,
}

// How the toy runner reads REINFORCE's settings and makes its learner (registered in
// `src/run/train.rs`), and the run layer's view of it: iterate, and the checkpoint (both
// networks, both optimizers, the environments mid-episode).
crate::vec_env_rung!(ReinforceConfig, critic: true, |config, venv, seed, _total, device| {
    Reinforce::new(config, venv, seed, device)
});
crate::actor_critic_learner!(Reinforce, actor_optim: "optim_actor", critic_optim: "optim_critic");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::core::rollout::make_vec_env;

    fn learner() -> Reinforce<Cpu> {
        let config = ReinforceConfig {
            num_envs: 4,
            num_steps: 8,
            ..ReinforceConfig::default()
        };
        let venv = make_vec_env("CartPole-v1", 4).unwrap();
        Reinforce::new(config, venv, 3, Default::default()).unwrap()
    }

    #[test]
    fn the_three_steps_are_one_iteration() {
        let (mut whole, mut steps) = (learner(), learner());
        // The same weights (other tests may draw from burn's generator while these are made).
        steps.model = whole.model.clone();
        for _ in 0..3 {
            let a = whole.iterate().unwrap();
            let rollout = steps.collect().unwrap();
            let advantages = steps.advantages(&rollout);
            let b = steps.update(&rollout, advantages);
            assert_eq!(a, b);
        }
    }
}
