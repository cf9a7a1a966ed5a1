//! Proximal Policy Optimization (Schulman et al., 2017), as CleanRL's `ppo.py` does it.
//!
//! Read it next to the book's PPO chapter. One iteration:
//!
//! 1. **collect** `num_steps` steps in each of `num_envs` environments, recording
//!    `log pi_old(a|s)`;
//! 2. **advantages** by GAE (eq. GAE-1, GAE-2), bootstrapping only after truncations;
//! 3. **update** for `update_epochs` epochs over shuffled minibatches: the clipped surrogate
//!    (eq. PPO-2), a clipped value loss (eq. PPO-4), an entropy bonus (eq. PPO-5), one Adam
//!    step with the global gradient norm clipped; stop early if `approx_kl > target_kl`;
//! 4. **metrics**: `approx_kl`, `clipfrac`, `explained_variance`, losses, returns (the
//!    training loop adds `SPS` and the time).

use std::collections::BTreeMap;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::core::actor_critic::{self, ActorCritic};
use crate::core::advantage::{gae, normalize};
use crate::core::metrics::explained_variance;
use crate::core::nn::{categorical, gradient_step};
use crate::core::objective::{clipped_surrogate, ratio};
use crate::core::rollout::{
    critic_values, obs_and_actions, pick, tensor1, Collector, Rollout, VecEnv,
};
use crate::kernels::{self, Adam};
use crate::{ConfigError, Metrics};

// ANCHOR: ppo_config
/// PPO's update, shared by the toy learner here and the language-model one (`ppo_lm.rs`):
/// the loss (eq. PPO-2, PPO-4), the advantages (eq. GAE-1, GAE-2) and the epochs of
/// minibatch steps. Named as in CleanRL; the defaults are CleanRL's for CartPole-v1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PpoUpdate {
    pub learning_rate: f64,
    pub gamma: f32,
    pub gae_lambda: f32,
    pub num_minibatches: usize,
    pub update_epochs: usize,
    /// Normalize advantages (per minibatch here, over the batch's tokens for a language model).
    pub norm_adv: bool,
    pub clip_coef: f32,
    /// Clip the value loss around the old values, as CleanRL does.
    pub clip_vloss: bool,
    pub vf_coef: f32,
    pub max_grad_norm: f32,
    /// Stop an update's epochs early once `approx_kl` exceeds this.
    pub target_kl: Option<f32>,
}

impl Default for PpoUpdate {
    fn default() -> Self {
        Self {
            learning_rate: 2.5e-4,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            norm_adv: true,
            clip_coef: 0.2,
            clip_vloss: true,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
        }
    }
}

/// PPO on the toy environments: how it collects (`num_envs` environments, `num_steps` steps
/// each), its networks, the two settings only it uses (an entropy bonus, eq. PPO-5, and a
/// learning rate annealed over the run, as CleanRL), and the shared [`PpoUpdate`]. In a TOML
/// `[ppo]` table the update's keys sit beside these (`clip_coef = 0.1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PpoConfig {
    pub num_envs: usize,
    pub num_steps: usize,
    /// Anneal the learning rate linearly to 0 over the run.
    pub anneal_lr: bool,
    pub ent_coef: f32,
    /// Hidden layer sizes of the actor and of the critic.
    pub hidden: Vec<usize>,
    #[serde(flatten)]
    pub update: PpoUpdate,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            num_envs: 4,
            num_steps: 128,
            anneal_lr: true,
            ent_coef: 0.01,
            hidden: vec![64, 64],
            update: PpoUpdate::default(),
        }
    }
}
// ANCHOR_END: ppo_config

/// `Err(ConfigError("ppo: msg"))` unless `ok`.
fn check(ok: bool, msg: &str) -> Result<(), ConfigError> {
    ConfigError::unless(ok, "ppo", msg)
}

impl PpoUpdate {
    /// Checks the settings that do not depend on the batch; `batch` is the number of
    /// samples (steps or completions) per iteration, which `num_minibatches` must divide.
    pub fn validate(&self, batch: usize, batch_name: &str) -> Result<(), ConfigError> {
        check(
            self.learning_rate > 0.0 && self.learning_rate.is_finite(),
            "learning_rate must be positive",
        )?;
        check(
            (0.0..=1.0).contains(&self.gamma) && (0.0..=1.0).contains(&self.gae_lambda),
            "gamma and gae_lambda must be in [0, 1]",
        )?;
        check(
            self.num_minibatches >= 1 && batch.is_multiple_of(self.num_minibatches),
            &format!("num_minibatches must divide {batch_name}"),
        )?;
        check(self.update_epochs >= 1, "update_epochs must be at least 1")?;
        check(
            self.clip_coef > 0.0 && self.clip_coef.is_finite(),
            "clip_coef must be > 0 and finite",
        )?;
        check(
            self.max_grad_norm > 0.0 && self.max_grad_norm.is_finite(),
            "max_grad_norm must be > 0 and finite",
        )?;
        check(self.vf_coef.is_finite(), "vf_coef must be finite")?;
        check(
            self.target_kl.is_none_or(|k| k > 0.0 && k.is_finite()),
            "target_kl must be > 0 and finite (leave it out for no early stop)",
        )
    }
}

impl PpoConfig {
    /// The number of environment steps per iteration.
    pub fn batch_size(&self) -> usize {
        self.num_envs * self.num_steps
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_rollout("ppo", self.num_envs, self.num_steps, &self.hidden)?;
        check(self.ent_coef.is_finite(), "ent_coef must be finite")?;
        self.update
            .validate(self.batch_size(), "num_envs * num_steps")
    }

    /// The loss's coefficients as the fused loss ([`kernels::ppo_loss`]) takes them.
    pub fn coefficients(&self) -> kernels::PpoCoefficients {
        kernels::PpoCoefficients {
            clip: self.update.clip_coef,
            clip_vloss: self.update.clip_vloss,
            ent_coef: self.ent_coef,
            vf_coef: self.update.vf_coef,
        }
    }
}

/// A PPO learner: its model, optimizer, environments and counters.
pub struct Ppo<B: AutodiffBackend> {
    pub config: PpoConfig,
    pub model: ActorCritic<B>,
    pub(crate) optim: OptimizerAdaptor<Adam, ActorCritic<B>, B>,
    /// The environments, the action sampler and the step count.
    pub collector: Collector,
    device: B::Device,
    /// Iterations done so far.
    pub iteration: usize,
    /// The iterations the run will do in all (for learning-rate annealing).
    pub num_iterations: usize,
}

impl<B: AutodiffBackend> Ppo<B> {
    /// A learner for `venv`, seeded with `seed`, planned for `total_timesteps` steps.
    pub fn new(
        config: PpoConfig,
        venv: VecEnv,
        seed: u64,
        total_timesteps: usize,
        device: B::Device,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (collector, model) = actor_critic::start(venv, &config.hidden, seed, &device);
        // ANCHOR: ppo_adam
        let optim = Adam::new().with_epsilon(1e-5).init();
        let num_iterations = total_timesteps.div_ceil(config.batch_size()).max(1);
        // ANCHOR_END: ppo_adam
        Ok(Self {
            config,
            model,
            optim,
            collector,
            device,
            iteration: 0,
            num_iterations,
        })
    }

    /// One iteration: collect, advantages, update, metrics.
    pub fn iterate(&mut self) -> policy_lab_envs::Result<Metrics> {
        let c = self.config.clone();
        let dim = self.collector.obs_dim();

        // 1. Collect, with the current policy on the inference backend.
        let inference = self.model.valid();
        let rollout = self.collector.collect(&inference.actor, c.num_steps)?;

        // ANCHOR: ppo_gae
        // 2. Advantages by GAE, bootstrapping after truncations only (eq. GAE-1, GAE-2).
        let values = critic_values(&inference.critic, &rollout.obs, dim);
        let next_values = rollout.next_values(&values, &inference.critic);
        let (advantages, returns) = gae(
            &rollout.rewards,
            &values,
            &next_values,
            &rollout.episode_ends(),
            c.num_envs,
            c.update.gamma,
            c.update.gae_lambda,
        );
        // ANCHOR_END: ppo_gae

        // ANCHOR: ppo_lr
        // 3. Update: epochs of shuffled minibatches.
        let frac = 1.0 - self.iteration as f64 / self.num_iterations as f64;
        let lr = if c.anneal_lr {
            c.update.learning_rate * frac
        } else {
            c.update.learning_rate
        };
        // ANCHOR_END: ppo_lr
        // ANCHOR: ppo_minibatch
        let batch = rollout.transitions();
        let mb_size = batch / c.update.num_minibatches;
        let mut indices: Vec<usize> = (0..batch).collect();
        let mut stats = UpdateStats::default();
        'epochs: for _ in 0..c.update.update_epochs {
            indices.shuffle(self.collector.rng());
            for mb in indices.chunks(mb_size) {
                let batch = Minibatch::of(
                    &rollout,
                    mb,
                    &advantages,
                    &returns,
                    &values,
                    &c,
                    &self.device,
                );
                let (loss, parts) = self.loss(&batch);
                stats.record(&parts, c.update.clip_coef);
                let (model, grad_norm) = gradient_step(
                    self.model.clone(),
                    loss,
                    &mut self.optim,
                    lr,
                    Some(c.update.max_grad_norm),
                );
                self.model = model;
                stats.grad_norm += f64::from(grad_norm);
            }
            // ANCHOR_END: ppo_minibatch
            // ANCHOR: ppo_target_kl
            if c.update.target_kl.is_some_and(|t| stats.last_approx_kl > t) {
                stats.stopped_early = true;
                break 'epochs;
            }
            // ANCHOR_END: ppo_target_kl
        }
        self.iteration += 1;

        // 4. Metrics.
        let mut m = stats.finish();
        m.insert("learning_rate", lr);
        m.insert("explained_variance", explained_variance(&values, &returns));
        m.insert("global_step", self.global_step() as f64);
        crate::core::rollout::episode_metrics(&rollout, &mut m);
        Ok(m)
    }

    /// PPO's loss on one minibatch ([`loss`]) with the current networks. Where the backend
    /// has it, [`kernels::ppo_loss`] computes the same numbers to the bit as one operation (one
    /// node of the autodiff graph instead of about thirty).
    pub fn loss(&self, mb: &Minibatch<B>) -> (Tensor<B, 1>, LossParts) {
        let logits = self.model.actor.forward(mb.obs.clone());
        let values = self.model.critic.forward(mb.obs.clone());
        let c = &self.config;
        kernels::ppo_loss(&logits, &values, mb.targets(), c.coefficients())
            .unwrap_or_else(|| loss(logits, values, mb, c))
    }
}

/// One minibatch of PPO's update: the stored states and actions of some rollout steps with
/// what the loss compares against (all `[len]` but `obs: [len, obs_dim]`).
pub struct Minibatch<B: Backend> {
    pub obs: Tensor<B, 2>,
    pub actions: Tensor<B, 1, Int>,
    /// `log pi_old(a|s)`, recorded when the action was taken.
    pub old_logp: Tensor<B, 1>,
    /// GAE advantages, normalized over the minibatch when `norm_adv` is set.
    pub advantages: Tensor<B, 1>,
    /// The value targets `A + V_old`.
    pub returns: Tensor<B, 1>,
    /// The critic's values when the rollout was collected.
    pub old_values: Tensor<B, 1>,
}

impl<B: Backend> Minibatch<B> {
    /// What the fused loss ([`kernels::ppo_loss`]) reads of the minibatch.
    pub fn targets(&self) -> kernels::PpoTargets<'_, B> {
        kernels::PpoTargets {
            actions: &self.actions,
            old_logp: &self.old_logp,
            advantages: &self.advantages,
            returns: &self.returns,
            old_values: &self.old_values,
        }
    }

    /// The rollout steps `idx`, with the batch's `advantages`, `returns` and `values`.
    pub fn of(
        rollout: &Rollout,
        idx: &[usize],
        advantages: &[f32],
        returns: &[f32],
        values: &[f32],
        c: &PpoConfig,
        device: &B::Device,
    ) -> Self {
        let (obs, actions) = obs_and_actions::<B>(rollout, idx, device);
        let mut adv = pick(advantages, idx);
        if c.update.norm_adv {
            normalize(&mut adv, 1e-8);
        }
        let t1 = |v: Vec<f32>| tensor1::<B>(v, device);
        Self {
            obs,
            actions,
            old_logp: t1(pick(&rollout.logp, idx)),
            advantages: t1(adv),
            returns: t1(pick(returns, idx)),
            old_values: t1(pick(values, idx)),
        }
    }
}

/// What the loss of a minibatch reports besides itself (for the metrics): the surrogate's and
/// the value loss's means, the mean entropy of the policy at the minibatch's states, and per
/// sample `log pi(a|s) - log pi_old(a|s)` and its `exp`, the ratio (PPO-1). The fused loss
/// ([`kernels::ppo_loss`]) returns the same struct.
pub use kernels::PpoLossParts as LossParts;

// ANCHOR: ppo_loss
/// PPO's loss (PPO-5) on a minibatch, from the actor's `logits: [len, actions]` and the
/// critic's `values: [len, 1]` at its states: the clipped surrogate (PPO-2) of the ratio
/// (PPO-1), minus the entropy bonus, plus the clipped value loss (PPO-4).
pub fn loss<B: Backend>(
    logits: Tensor<B, 2>,
    values: Tensor<B, 2>,
    mb: &Minibatch<B>,
    c: &PpoConfig,
) -> (Tensor<B, 1>, LossParts) {
    let log_probs = categorical::log_probs(logits);
    let logp = categorical::log_prob_of(log_probs.clone(), mb.actions.clone());
    let entropy = categorical::entropy(log_probs).mean();
    // eq. (PPO-1) and (PPO-2): the ratio and the clipped surrogate.
    let logratio = logp.clone() - mb.old_logp.clone();
    let r = ratio(logp, mb.old_logp.clone());
    let clip = c.update.clip_coef;
    let pg_loss = clipped_surrogate(r.clone(), mb.advantages.clone(), clip, clip).mean();
    // eq. (PPO-4): the value loss, clipped around the old values.
    let v = values.squeeze_dim::<1>(1);
    let v_loss = value_loss(v, mb.old_values.clone(), mb.returns.clone(), &c.update).mean();
    // eq. (PPO-5): the full loss.
    let loss = pg_loss.clone() - entropy.clone() * c.ent_coef + v_loss.clone() * c.update.vf_coef;

    let scalar = |t: Tensor<B, 1>| t.into_scalar().elem::<f32>();
    let list = |t: Tensor<B, 1>| t.into_data().to_vec::<f32>().expect("f32 values");
    let parts = LossParts {
        pg_loss: scalar(pg_loss),
        v_loss: scalar(v_loss),
        entropy: scalar(entropy),
        logratio: list(logratio),
        ratio: list(r),
    };
    (loss, parts)
}
// ANCHOR_END: ppo_loss

// ANCHOR: ppo_value_loss
/// The value loss per state, eq. (PPO-4): `0.5 (V - R)^2`, or with `clip_vloss` (as
/// CleanRL) the larger of that and the loss of `V` clipped to `old_V ± clip_coef`. Any shape:
/// PPO on a language model passes `[completions, tokens]` and masks the result.
pub fn value_loss<B: burn::tensor::backend::Backend, const D: usize>(
    v: Tensor<B, D>,
    old_v: Tensor<B, D>,
    ret: Tensor<B, D>,
    c: &PpoUpdate,
) -> Tensor<B, D> {
    let unclipped = (v.clone() - ret.clone()).powi_scalar(2);
    if !c.clip_vloss {
        return unclipped * 0.5;
    }
    let clipped = old_v.clone() + (v - old_v).clamp(-c.clip_coef, c.clip_coef);
    let clipped = (clipped - ret).powi_scalar(2);
    unclipped.max_pair(clipped) * 0.5
}
// ANCHOR_END: ppo_value_loss

/// Running sums of the per-minibatch statistics CleanRL logs.
#[derive(Default)]
pub(crate) struct UpdateStats {
    n: f64,
    approx_kl: f64,
    old_approx_kl: f64,
    clipfrac: f64,
    pg_loss: f64,
    v_loss: f64,
    entropy: f64,
    pub(crate) grad_norm: f64,
    pub(crate) last_approx_kl: f32,
    pub(crate) stopped_early: bool,
}

impl UpdateStats {
    // ANCHOR: ppo_approx_kl
    /// The ratio statistics of one minibatch from plain values (`logratio = log ratio`).
    pub(crate) fn record_ratio_values(&mut self, ratio: &[f32], logratio: &[f32], clip: f32) {
        let n = ratio.len().max(1) as f64;
        // approx_kl = mean((ratio - 1) - log ratio): Schulman's k3 estimator of KL(old || new).
        let kl = ratio
            .iter()
            .zip(logratio)
            .map(|(r, lr)| f64::from((r - 1.0) - lr))
            .sum::<f64>()
            / n;
        self.approx_kl += kl;
        self.last_approx_kl = kl as f32;
        self.old_approx_kl += logratio.iter().map(|lr| f64::from(-lr)).sum::<f64>() / n;
        self.clipfrac += ratio.iter().filter(|r| (*r - 1.0).abs() > clip).count() as f64 / n;
        self.n += 1.0;
    }
    // ANCHOR_END: ppo_approx_kl
    /// A minibatch's ratio statistics and losses.
    fn record(&mut self, parts: &LossParts, clip: f32) {
        self.record_ratio_values(&parts.ratio, &parts.logratio, clip);
        self.record_loss_values(parts.pg_loss, parts.v_loss, parts.entropy);
    }
    /// The losses of one minibatch from plain values.
    fn record_loss_values(&mut self, pg: f32, v: f32, entropy: f32) {
        self.pg_loss += f64::from(pg);
        self.v_loss += f64::from(v);
        self.entropy += f64::from(entropy);
    }
    pub(crate) fn record_losses<B: AutodiffBackend>(
        &mut self,
        pg: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        ent: &Tensor<B, 1>,
    ) {
        let scalar = |t: &Tensor<B, 1>| t.clone().inner().into_scalar().elem::<f32>();
        self.record_loss_values(scalar(pg), scalar(v), scalar(ent));
    }
    pub(crate) fn finish(self) -> Metrics {
        let n = self.n.max(1.0);
        BTreeMap::from([
            ("approx_kl", self.approx_kl / n),
            ("old_approx_kl", self.old_approx_kl / n),
            ("clipfrac", self.clipfrac / n),
            ("policy_loss", self.pg_loss / n),
            ("value_loss", self.v_loss / n),
            ("entropy", self.entropy / n),
            ("grad_norm", self.grad_norm / n),
            ("stopped_early", f64::from(u8::from(self.stopped_early))),
        ])
    }
}

use burn::tensor::ElementConversion;

// How the toy runner reads PPO's settings and makes its learner (registered in
// `src/run/train.rs`), and the run layer's view of it: iterate, and the checkpoint (actor and
// critic, their one optimizer, the environments mid-episode).
crate::vec_env_rung!(PpoConfig, critic: true, |config, venv, seed, total, device| {
    Ppo::new(config, venv, seed, total, device)
});
crate::actor_critic_learner!(Ppo, optim: "optim");
