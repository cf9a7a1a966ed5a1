//! What the run layer needs of a language-model stage that trains a fresh model
//! ([`FreshStage`]: SFT, the reward model), as the toy runner needs a [`Rung`] of a toy rung:
//! each such stage's settings implement it in the stage's own file, and one line of the
//! registry in `src/run/lm/mod.rs` makes `policy-lab lm NAME` run it. (RL stages from a
//! checkpoint implement `algos::RlStage` the same way.)
//!
//! [`Rung`]: crate::core::learner::Rung

use std::path::Path;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use policy_lab_envs::{Arithmetic, ArithmeticConfig, Split};

use super::checkpoint::LmTokenizer;
use super::model::{Precision, TransformerConfig};
use super::task::{task_env, Accuracy};
use crate::core::learner::Learner;
use crate::Metrics;

/// What a fresh stage starts from: the model's shape and number type, the task, the seed and
/// the device.
pub struct Fresh<'a, B: AutodiffBackend> {
    pub shape: &'a TransformerConfig,
    pub precision: Precision,
    pub task: &'a ArithmeticConfig,
    pub seed: u64,
    pub device: &'a B::Device,
}

impl<B: AutodiffBackend> Fresh<'_, B> {
    /// The task's environment on one split of its problems (`Split::Train` to learn from,
    /// `Split::Test` for the held-out measures).
    pub fn env(&self, split: Split) -> Result<Arithmetic> {
        Ok(task_env(self.task, split)?)
    }
}

/// The held-out measure of a fresh stage: called at each evaluation with the learner, it adds
/// its metrics to the iteration's row and returns the accuracy the run's summary reports.
pub type Evaluator<L> = Box<dyn FnMut(&L, &mut Metrics) -> Result<Accuracy>>;

/// What every language-model stage says of itself, fresh (SFT, the reward model) or from a
/// checkpoint (GRPO, PPO): the registry in `src/run/lm/mod.rs` reads it.
pub trait Stage {
    /// What the stage does, in a sentence (`policy-lab lm --help`).
    const ABOUT: &'static str;
    /// The name of the held-out metric the run's summary reports.
    const MEASURE: &'static str = "test_accuracy";
}

/// A stage that trains a fresh model of `[model]`'s shape on the task's data, for `steps`
/// optimizer steps, measured on held-out data every `eval_every` (SFT, the reward model); its
/// settings are checked by their own `validate`.
/// `run::lm::run_fresh` runs every such stage the same way.
pub trait FreshStage: Stage {
    /// The learner the run layer drives.
    type Learner<B: AutodiffBackend>: Learner;

    /// The most optimizer steps.
    fn steps(&self) -> usize;
    /// Sets the most optimizer steps (`--iterations`).
    fn set_steps(&mut self, steps: usize);
    /// Measure the held-out data every this many steps (and at the end).
    fn eval_every(&self) -> usize;
    /// Stop once the held-out measure reaches this (SFT's partial warm start); by default,
    /// never before `steps`.
    fn stop_at(&self) -> f64 {
        f64::INFINITY
    }
    /// The learner on a fresh model of `start.shape`, seeded with `start.seed`.
    fn learner<B: AutodiffBackend>(&self, start: &Fresh<'_, B>) -> Result<Self::Learner<B>>;
    /// The held-out measure ([`Evaluator`]).
    fn evaluator<B: AutodiffBackend>(
        &self,
        start: &Fresh<'_, B>,
    ) -> Result<Evaluator<Self::Learner<B>>>;
    /// Writes the model users read (with its shape and tokenizer) into the folder `dir`.
    fn save<B: AutodiffBackend>(
        learner: &Self::Learner<B>,
        shape: &TransformerConfig,
        tokenizer: &LmTokenizer,
        dir: &Path,
    ) -> Result<()>;
}

/// Checks what every fresh stage's settings have: each of `counts` (`(key, value)`) at least
/// 1, and a positive learning rate; a message names the table and the keys.
pub fn check_training(
    table: &str,
    counts: &[(&str, usize)],
    learning_rate: f64,
) -> Result<(), crate::ConfigError> {
    let keys: Vec<&str> = counts.iter().map(|(key, _)| *key).collect();
    let keys = match keys.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    let counted = counts.iter().all(|(_, n)| *n > 0);
    crate::ConfigError::unless(counted, table, &format!("{keys} must be at least 1"))?;
    let rate = learning_rate > 0.0 && learning_rate.is_finite();
    crate::ConfigError::unless(rate, table, "learning_rate must be positive")
}
