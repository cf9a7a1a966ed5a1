//! Supervised fine-tuning (SFT): teach the model to imitate demonstrations before any
//! reinforcement learning, the warm start every RL-for-language-models recipe begins with.
//!
//! The loss is the mean negative log-likelihood of the demonstration's completion tokens,
//! given the prompt (the prompt's own tokens are not trained on, as in TRL's
//! `completion_only_loss`):
//!
//! ```text
//! L = - (1 / #tokens) * sum over completion tokens t of log pi(t | prompt, tokens before t)
//! ```

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

use super::checkpoint::{save_lm, LmTokenizer};
use super::generate::completion_log_probs;
use super::model::{Transformer, TransformerConfig};
use super::stage::{check_training, Evaluator, Fresh, FreshStage, Stage};
use super::task::{evaluate_accuracy, task_tokenizer};
pub use super::tokenizer::encode_prompt;
use super::tokenizer::{CharTokenizer, Tokenizer, TokenizerError};
use super::trainer::{Lesson, Trainer};
use crate::core::objective::masked_mean;

pub use super::error::LmError;

/// Rows of token ids.
pub type TokenRows = Vec<Vec<u32>>;

/// Token ids of prompts (with BOS in front) and completions (with EOS at the end).
// ANCHOR: lm_encode_pairs
pub fn encode_pairs(
    tokenizer: &impl Tokenizer,
    pairs: &[(String, String)],
) -> Result<(TokenRows, TokenRows), TokenizerError> {
    let mut prompts = Vec::with_capacity(pairs.len());
    let mut completions = Vec::with_capacity(pairs.len());
    for (prompt, completion) in pairs {
        let p = encode_prompt(tokenizer, prompt)?;
        let mut c = tokenizer.encode(completion)?;
        c.push(tokenizer.eos_id());
        prompts.push(p);
        completions.push(c);
    }
    Ok((prompts, completions))
}
// ANCHOR_END: lm_encode_pairs

/// The SFT loss of a batch of `(prompt, completion)` pairs (see the module docs).
// ANCHOR: lm_sft_loss
pub fn sft_loss<B: AutodiffBackend>(
    model: &Transformer<B>,
    tokenizer: &impl Tokenizer,
    pairs: &[(String, String)],
) -> Result<Tensor<B, 1>, LmError> {
    let (prompts, completions) = encode_pairs(tokenizer, pairs)?;
    let (logp, mask) =
        completion_log_probs(model, &prompts, &completions, tokenizer.pad_id(), 1.0)?;
    Ok(-masked_mean(logp, mask))
}
// ANCHOR_END: lm_sft_loss

/// Trains `model` on the demonstrations that `batches` yields, one AdamW step per batch;
/// returns the model and the loss of every step.
pub fn train_sft<B: AutodiffBackend>(
    mut model: Transformer<B>,
    tokenizer: &impl Tokenizer,
    batches: impl IntoIterator<Item = Vec<(String, String)>>,
    learning_rate: f64,
) -> Result<(Transformer<B>, Vec<f64>), LmError> {
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut losses = Vec::new();
    for pairs in batches {
        let loss = sft_loss(&model, tokenizer, &pairs)?;
        losses.push(crate::scalar(&loss));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(learning_rate, model, grads);
    }
    Ok((model, losses))
}

/// The inference copy of a model (no autodiff), for generation.
pub fn inference<B: AutodiffBackend>(model: &Transformer<B>) -> Transformer<B::InnerBackend> {
    model.valid()
}

/// SFT's [`Lesson`]: demonstrations of `env` (its training split), their loss [`sft_loss`]
/// (the completion tokens' mean negative log-likelihood). `policy-lab lm sft` trains on it
/// with a [`Trainer`].
pub struct Demonstrations<T> {
    pub tokenizer: T,
    pub env: policy_lab_envs::Arithmetic,
}

impl<B: AutodiffBackend, T: Tokenizer> Lesson<B> for Demonstrations<T> {
    type Model = Transformer<B>;
    fn loss(
        &self,
        model: &Transformer<B>,
        n: usize,
        rng: &mut policy_lab_envs::EnvRng,
    ) -> Result<(Tensor<B, 1>, crate::Metrics), LmError> {
        let pairs: Vec<(String, String)> = (0..n).map(|_| self.env.demonstration(rng)).collect();
        let loss = sft_loss(model, &self.tokenizer, &pairs)?;
        let metrics = crate::Metrics::from([("loss", crate::scalar(&loss))]);
        Ok((loss, metrics))
    }
}

/// The SFT warm start (`lm sft`, the `[sft]` table): a fresh model of `[model]`'s shape
/// learns from the task's demonstrations until its held-out accuracy reaches
/// `stop_at_accuracy`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// The most optimizer steps.
    pub steps: usize,
    /// Demonstrations per step.
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Measure the held-out accuracy every this many steps.
    pub eval_every: usize,
    /// Stop (and save) as soon as the held-out accuracy reaches this: a *partial* warm
    /// start, which RL is then asked to improve. Above 1 (e.g. 2.0), all `steps` run.
    pub stop_at_accuracy: f64,
}

impl SftConfig {
    /// Checks the settings; a message names the key and what is allowed.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let counts = [
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("eval_every", self.eval_every),
        ];
        check_training("sft", &counts, self.learning_rate)
    }
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            steps: 5000,
            batch_size: 64,
            learning_rate: 1e-3,
            eval_every: 50,
            stop_at_accuracy: 0.5,
        }
    }
}

// How `policy-lab lm sft` reads the settings and makes the learner (registered in
// `src/run/lm/mod.rs`): a fresh model, the task's demonstrations, the held-out accuracy.
impl Stage for SftConfig {
    const ABOUT: &'static str = "Train a fresh model on demonstrations until it reaches a partial held-out accuracy (`sft.stop_at_accuracy`), and save it: the warm start for RL.";
}

impl FreshStage for SftConfig {
    type Learner<B: AutodiffBackend> = Trainer<B, Demonstrations<CharTokenizer>>;

    fn steps(&self) -> usize {
        self.steps
    }
    fn set_steps(&mut self, steps: usize) {
        self.steps = steps;
    }
    fn eval_every(&self) -> usize {
        self.eval_every
    }
    fn stop_at(&self) -> f64 {
        self.stop_at_accuracy
    }
    fn learner<B: AutodiffBackend>(
        &self,
        start: &Fresh<'_, B>,
    ) -> anyhow::Result<Self::Learner<B>> {
        let model: Transformer<B> =
            crate::backend::seeded::<B, _>(start.device, start.seed, || {
                start.shape.init(start.device)
            })
            .with_precision(start.precision);
        let env = start.env(policy_lab_envs::Split::Train)?;
        let lesson = Demonstrations {
            tokenizer: task_tokenizer(),
            env,
        };
        let (batch, lr) = (self.batch_size, self.learning_rate);
        Ok(Trainer::new(model, lesson, batch, lr, start.seed))
    }
    fn evaluator<B: AutodiffBackend>(
        &self,
        start: &Fresh<'_, B>,
    ) -> anyhow::Result<Evaluator<Self::Learner<B>>> {
        let test = start.env(policy_lab_envs::Split::Test)?;
        Ok(Box::new(
            move |learner: &Self::Learner<B>, m: &mut crate::Metrics| {
                let model = learner.model.valid();
                let accuracy = evaluate_accuracy(&model, &learner.lesson.tokenizer, &test, None)?;
                m.insert(Self::MEASURE, accuracy.accuracy);
                Ok(accuracy)
            },
        ))
    }
    fn save<B: AutodiffBackend>(
        learner: &Self::Learner<B>,
        shape: &TransformerConfig,
        tokenizer: &LmTokenizer,
        dir: &std::path::Path,
    ) -> anyhow::Result<()> {
        save_lm(dir, &learner.model, shape, tokenizer)
    }
}
