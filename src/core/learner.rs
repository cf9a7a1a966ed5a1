//! The `Learner` trait: what every rung of the ladder is to the run layer (`run`), toy or
//! language model. Each algorithm implements it in its own file; the run layer drives it
//! (iterate, log, checkpoint, resume) without knowing which algorithm it is.

use std::path::Path;

use anyhow::Result;

use burn::tensor::backend::AutodiffBackend;

use crate::core::nn::Mlp;
use crate::{ConfigError, Metrics};

/// One learning algorithm on one task, mid-run.
pub trait Learner {
    /// What a user evaluates and plays: the toy rungs' actor network, or a language model.
    type Policy;

    /// One iteration: collect, advantages, update; returns its metrics.
    fn iterate(&mut self) -> Result<Metrics>;

    /// Environment steps (toy tasks) or completions (language models) seen so far.
    fn global_step(&self) -> usize;

    /// The current policy.
    fn policy(&self) -> &Self::Policy;

    /// Writes into the folder `dir` everything needed to go on exactly as if the run had
    /// never stopped: networks, optimizer moments, random-number generators, environments.
    fn save(&self, dir: &Path) -> Result<()>;

    /// Restores the state that [`Learner::save`] wrote into `dir`, into a learner freshly
    /// made from the same settings.
    fn load(&mut self, dir: &Path) -> Result<()>;

    /// Whether every weight is finite; a learner whose weights are not is never saved.
    fn is_finite(&self) -> bool;

    /// Whether to stop after this iteration, given this process's wish (`stop`: Ctrl-C). A
    /// learner spread over several processes (data-parallel GRPO over machines) asks them
    /// all, so that every one stops after the same iteration, and hears here of one that
    /// failed (an error). Alone, the wish is the answer.
    fn agree_to_stop(&mut self, stop: bool) -> Result<bool> {
        Ok(stop)
    }
}

/// A toy-environment algorithm as the runner (`run::train`) sees its settings: each rung's
/// config struct implements it in the rung's own file, and one line of the `ladder!` list in
/// `src/run/train.rs` registers it.
pub trait Rung {
    /// Checks the settings; a message names the key and what is allowed.
    fn validate(&self) -> Result<(), ConfigError>;
    /// The hidden layers of the policy network (and of the critic, if there is one).
    fn hidden(&self) -> &[usize];
    /// Whether the rung learns a critic besides the policy.
    fn has_critic(&self) -> bool;
    /// About how many environment steps one iteration takes.
    fn steps_per_iteration(&self) -> usize;
    /// The learner on the environment `env` (an id with options), seeded with `seed`, for a
    /// run of `total_timesteps` steps, on `device`.
    fn learner<B: AutodiffBackend>(
        &self,
        env: &str,
        seed: u64,
        total_timesteps: usize,
        device: B::Device,
    ) -> Result<Box<dyn Learner<Policy = Mlp<B>>>>
    where
        Self: Sized;
}

/// The [`Rung`] of a toy rung that collects from `num_envs` copies of the environment (its
/// config has `hidden`, `num_envs` and `num_steps`), written once. The caller names the
/// learner's constructor over the config, the vector environment, the seed, the run's budget
/// and the device:
///
/// ```text
/// vec_env_rung!(PpoConfig, critic: true, |config, venv, seed, total, device| {
///     Ppo::new(config, venv, seed, total, device)
/// });
/// ```
#[macro_export]
macro_rules! vec_env_rung {
    ($config:ty, critic: $critic:expr, |$c:ident, $venv:ident, $seed:ident, $total:ident, $device:ident| $make:expr) => {
        impl $crate::core::learner::Rung for $config {
            fn validate(&self) -> Result<(), $crate::ConfigError> {
                <$config>::validate(self)
            }
            fn hidden(&self) -> &[usize] {
                &self.hidden
            }
            fn has_critic(&self) -> bool {
                $critic
            }
            fn steps_per_iteration(&self) -> usize {
                self.num_envs * self.num_steps
            }
            fn learner<B: burn::tensor::backend::AutodiffBackend>(
                &self,
                env: &str,
                $seed: u64,
                $total: usize,
                $device: B::Device,
            ) -> anyhow::Result<
                Box<dyn $crate::core::learner::Learner<Policy = $crate::core::nn::Mlp<B>>>,
            > {
                let $venv = $crate::core::rollout::make_vec_env(env, self.num_envs)?;
                let $c = self.clone();
                Ok(Box::new($make?))
            }
        }
    };
}

/// The [`Learner`] of a toy learner built on the shared actor-critic (fields `model`,
/// `collector`, `iteration`, `device`, and its `iterate`), written once, with its `global_step`: its
/// policy is the actor, its checkpoint the two networks, the environments mid-episode
/// ([`crate::core::checkpoint::save_actor_critic`]) and the optimizers named, each in its own
/// folder:
///
/// ```text
/// actor_critic_learner!(Reinforce, actor_optim: "optim_actor", critic_optim: "optim_critic");
/// ```
#[macro_export]
macro_rules! actor_critic_learner {
    ($learner:ident $(, $optim:ident: $folder:literal)*) => {
        impl<B: burn::tensor::backend::AutodiffBackend> $learner<B> {
            /// Environment steps taken so far.
            pub fn global_step(&self) -> usize {
                self.collector.global_step
            }
        }

        impl<B: burn::tensor::backend::AutodiffBackend> $crate::core::learner::Learner
            for $learner<B>
        {
            type Policy = $crate::core::nn::Mlp<B>;
            fn iterate(&mut self) -> anyhow::Result<$crate::Metrics> {
                Ok($learner::iterate(self)?)
            }
            fn global_step(&self) -> usize {
                self.collector.global_step
            }
            fn policy(&self) -> &Self::Policy {
                &self.model.actor
            }
            fn save(&self, dir: &std::path::Path) -> anyhow::Result<()> {
                use $crate::core::checkpoint::*;
                save_actor_critic(&self.model, &self.collector, self.iteration, dir)?;
                $(save_optim(&self.$optim, &dir.join($folder))?;)*
                Ok(())
            }
            fn load(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
                use $crate::core::checkpoint::*;
                let d = &self.device;
                (self.model, self.collector, self.iteration) =
                    load_actor_critic(self.model.clone(), dir, d)?;
                $(self.$optim = load_optim(self.$optim.clone(), &dir.join($folder), d)?;)*
                Ok(())
            }
            fn is_finite(&self) -> bool {
                $crate::core::checkpoint::all_finite(&self.model)
            }
        }
    };
}
