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
