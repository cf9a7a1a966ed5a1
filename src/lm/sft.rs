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

use super::generate::completion_log_probs;
use super::model::Transformer;
use super::tokenizer::{Tokenizer, TokenizerError};
use crate::core::objective::masked_mean;

pub use super::error::LmError;

/// Rows of token ids.
pub type TokenRows = Vec<Vec<u32>>;

/// The token ids of one prompt, BOS in front (if the tokenizer has one): how every prompt
/// enters the model. With a chat template ([`Tokenizer::chat`]), the prompt is the user's
/// message of a conversation rendered by the template, tokenized without adding special
/// tokens (the template writes its own), as TRL does.
pub fn encode_prompt(tokenizer: &impl Tokenizer, prompt: &str) -> Result<Vec<u32>, TokenizerError> {
    if let Some(chat) = tokenizer.chat() {
        let text = chat
            .render(prompt)
            .map_err(|e| TokenizerError::Other(format!("{e:#}")))?;
        return tokenizer.encode(&text);
    }
    let mut ids: Vec<u32> = tokenizer.bos_id().into_iter().collect();
    ids.extend(tokenizer.encode(prompt)?);
    Ok(ids)
}

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

/// Supervised fine-tuning as a [`crate::core::learner::Learner`], so that `policy-lab lm sft` runs,
/// checkpoints and resumes as every other run does: one iteration is one optimizer step on
/// `batch_size` demonstrations drawn from `env` (eq. above: the completion tokens' mean
/// negative log-likelihood).
pub struct Sft<B: AutodiffBackend, T> {
    pub model: Transformer<B>,
    optim: burn::optim::adaptor::OptimizerAdaptor<burn::optim::AdamW, Transformer<B>, B>,
    pub tokenizer: T,
    env: policy_lab_envs::Arithmetic,
    rng: policy_lab_envs::EnvRng,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Optimizer steps done.
    pub steps: usize,
}

impl<B: AutodiffBackend, T: Tokenizer> Sft<B, T> {
    /// SFT of `model` on demonstrations of `env` (its training split), `batch_size` a step.
    pub fn new(
        model: Transformer<B>,
        tokenizer: T,
        env: policy_lab_envs::Arithmetic,
        batch_size: usize,
        learning_rate: f64,
        seed: u64,
    ) -> Self {
        use rand::SeedableRng;
        Self {
            model,
            optim: AdamWConfig::new().with_weight_decay(0.0).init(),
            tokenizer,
            env,
            rng: policy_lab_envs::EnvRng::seed_from_u64(seed),
            batch_size,
            learning_rate,
            steps: 0,
        }
    }

    /// One optimizer step on a fresh batch of demonstrations; returns its loss.
    pub fn step(&mut self) -> Result<f64, LmError> {
        let pairs: Vec<(String, String)> = (0..self.batch_size)
            .map(|_| self.env.demonstration(&mut self.rng))
            .collect();
        let loss = sft_loss(&self.model, &self.tokenizer, &pairs)?;
        let value = crate::scalar(&loss);
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self
            .optim
            .step(self.learning_rate, self.model.clone(), grads);
        self.steps += 1;
        Ok(value)
    }
}

/// What SFT keeps besides the model and the optimizer (`state.json`).
#[derive(serde::Serialize, serde::Deserialize)]
struct SftState {
    rng: policy_lab_envs::EnvRng,
    steps: usize,
}

impl<B: AutodiffBackend, T: Tokenizer> crate::core::learner::Learner for Sft<B, T> {
    type Policy = Transformer<B>;
    fn iterate(&mut self) -> anyhow::Result<crate::Metrics> {
        let loss = self.step()?;
        let mut m = crate::Metrics::new();
        m.insert("loss", loss);
        m.insert("step", self.steps as f64);
        m.insert("global_step", (self.steps * self.batch_size) as f64);
        Ok(m)
    }
    fn global_step(&self) -> usize {
        self.steps * self.batch_size
    }
    fn policy(&self) -> &Transformer<B> {
        &self.model
    }
    fn save(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        let state = SftState {
            rng: self.rng.clone(),
            steps: self.steps,
        };
        crate::core::checkpoint::save_model_optim_state(dir, &self.model, &self.optim, &state)
    }
    fn load(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
        let (model, optim, s): (_, _, SftState) = crate::core::checkpoint::load_model_optim_state(
            dir,
            self.model.clone(),
            self.optim.clone(),
        )?;
        (self.model, self.optim, self.rng, self.steps) = (model, optim, s.rng, s.steps);
        Ok(())
    }
    fn is_finite(&self) -> bool {
        crate::core::checkpoint::all_finite(&self.model)
    }
}
