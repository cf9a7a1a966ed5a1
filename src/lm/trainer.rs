//! The one learner of the stages that train a fresh model (`lm sft`, `lm reward`): AdamW steps
//! (no weight decay), each on a fresh batch of the stage's [`Lesson`] (demonstrations for SFT,
//! preference pairs for the reward model), so that such a stage runs, checkpoints and resumes
//! as every other run does. One iteration is one optimizer step on `batch_size` examples.

use anyhow::Result;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use policy_lab_envs::EnvRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::error::LmError;
use crate::core::checkpoint::{all_finite, load_model_optim_state, save_model_optim_state};
use crate::core::learner::Learner;
use crate::Metrics;

/// What a fresh stage learns from: fresh batches of its task's examples, and their loss.
pub trait Lesson<B: AutodiffBackend> {
    /// The model it trains (a transformer, a reward model).
    type Model: AutodiffModule<B>;
    /// The loss of `n` fresh examples drawn with `rng`, on `model`, and the metrics to log
    /// beside it (`loss` among them).
    fn loss(
        &self,
        model: &Self::Model,
        n: usize,
        rng: &mut EnvRng,
    ) -> Result<(Tensor<B, 1>, Metrics), LmError>;
}

/// A model trained on a [`Lesson`], one AdamW step per batch.
pub struct Trainer<B: AutodiffBackend, L: Lesson<B>> {
    pub model: L::Model,
    optim: OptimizerAdaptor<AdamW, L::Model, B>,
    pub lesson: L,
    rng: EnvRng,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Optimizer steps done.
    pub steps: usize,
}

/// What a trainer keeps besides the model and the optimizer (`state.json`).
#[derive(Serialize, Deserialize)]
struct TrainerState {
    rng: EnvRng,
    steps: usize,
}

impl<B: AutodiffBackend, L: Lesson<B>> Trainer<B, L> {
    /// Trains `model` on `lesson`, `batch_size` examples a step, drawn from `seed`.
    pub fn new(
        model: L::Model,
        lesson: L,
        batch_size: usize,
        learning_rate: f64,
        seed: u64,
    ) -> Self {
        Self {
            model,
            optim: AdamWConfig::new().with_weight_decay(0.0).init(),
            lesson,
            rng: EnvRng::seed_from_u64(seed),
            batch_size,
            learning_rate,
            steps: 0,
        }
    }

    /// One optimizer step on a fresh batch; returns the lesson's metrics of it (before the
    /// step).
    pub fn step(&mut self) -> Result<Metrics, LmError> {
        let (loss, metrics) = self
            .lesson
            .loss(&self.model, self.batch_size, &mut self.rng)?;
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self
            .optim
            .step(self.learning_rate, self.model.clone(), grads);
        self.steps += 1;
        Ok(metrics)
    }
}

impl<B: AutodiffBackend, L: Lesson<B>> Learner for Trainer<B, L> {
    type Policy = L::Model;
    fn iterate(&mut self) -> Result<Metrics> {
        let mut m = self.step()?;
        m.insert("step", self.steps as f64);
        m.insert("global_step", self.global_step() as f64);
        Ok(m)
    }
    fn global_step(&self) -> usize {
        self.steps * self.batch_size
    }
    fn policy(&self) -> &L::Model {
        &self.model
    }
    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let state = TrainerState {
            rng: self.rng.clone(),
            steps: self.steps,
        };
        save_model_optim_state(dir, &self.model, &self.optim, &state)
    }
    fn load(&mut self, dir: &std::path::Path) -> Result<()> {
        let (model, optim, s): (_, _, TrainerState) =
            load_model_optim_state(dir, self.model.clone(), self.optim.clone())?;
        (self.model, self.optim, self.rng, self.steps) = (model, optim, s.rng, s.steps);
        Ok(())
    }
    fn is_finite(&self) -> bool {
        all_finite(&self.model)
    }
}
