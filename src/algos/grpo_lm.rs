//! GRPO on a language model: the same [`GrpoConfig`], group advantages and [`grpo_loss`] as
//! the toy environments in `grpo.rs`; only the collection differs. A prompt is the start state
//! that a group shares, a completion is an episode, a token is an action.
//!
//! One iteration:
//!
//! 1. **collect**: `num_groups` prompts from the task environment (`reset`), each sampled
//!    `num_generations` times; each completion is scored by the environment (`step`). With
//!    `dynamic_sampling`, groups whose rewards are all equal are dropped and refilled (DAPO);
//! 2. **advantages**: each completion's reward against its group (eq. GRPO-1);
//! 3. **update** `num_iterations` times on `[completions, tokens]` log-probabilities with the
//!    completion mask (eq. GRPO-2 to GRPO-4), the KL to the frozen reference model when
//!    `beta > 0`;
//! 4. **metrics** under TRL's names.

use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use policy_lab_envs::{Env, EnvRng, Space};
use rand::SeedableRng;

use super::grpo::{generation_metrics, grpo_loss, GrpoBatch, GrpoConfig};
use crate::advantage::{group_advantages, zero_std_groups};
use crate::lm::generate::{completion_log_probs, SamplingConfig};
use crate::lm::model::Transformer;
use crate::lm::rollout::{collect_completions, LmRollout};
use crate::lm::sft::LmError;
use crate::lm::tokenizer::Tokenizer;
use crate::nn::gradient_step;
use crate::{ConfigError, Metrics};

/// A GRPO learner for a language model on a text task: any environment whose observations
/// (prompts) and actions (completions) are strings, scored in one step.
pub struct GrpoLm<B: AutodiffBackend, E, T> {
    pub config: GrpoConfig,
    /// The longest completion sampled (TRL's `max_completion_length`).
    pub max_completion_length: usize,
    pub model: Transformer<B>,
    /// The frozen reference of the KL term: kept only when `beta > 0` (as TRL, which loads
    /// no reference model when `beta = 0`).
    reference: Option<Transformer<B::InnerBackend>>,
    optim: OptimizerAdaptor<Adam, Transformer<B>, B>,
    env: E,
    tokenizer: T,
    rng: EnvRng,
    /// Completions generated so far.
    pub completions: usize,
    pub iteration: usize,
}

impl<B, E, T> GrpoLm<B, E, T>
where
    B: AutodiffBackend,
    E: Env + Clone,
    E::ObsSpace: Space<Item = String>,
    E::ActSpace: Space<Item = String>,
    T: Tokenizer,
{
    /// A learner that starts from `model` (usually an SFT checkpoint), which is also the
    /// frozen reference of the KL term.
    pub fn new(
        config: GrpoConfig,
        max_completion_length: usize,
        model: Transformer<B>,
        env: E,
        tokenizer: T,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if max_completion_length == 0 {
            return Err(ConfigError(
                "grpo: max_completion_length must be at least 1".into(),
            ));
        }
        let reference = (config.beta > 0.0).then(|| model.valid());
        Ok(Self {
            config,
            max_completion_length,
            reference,
            model,
            optim: AdamConfig::new().init(),
            env,
            tokenizer,
            rng: EnvRng::seed_from_u64(seed),
            completions: 0,
            iteration: 0,
        })
    }

    /// One iteration: prompts, completions and rewards, advantages, updates, metrics.
    pub fn iterate(&mut self) -> Result<Metrics, LmError> {
        let c = self.config.clone();
        let g = c.num_generations;
        let tok = &self.tokenizer;

        // 1. Collect: G completions of each prompt, scored by the environment.
        let sampling = SamplingConfig {
            temperature: c.temperature,
            max_new_tokens: self.max_completion_length,
            ..SamplingConfig::default()
        };
        let policy = self.model.valid();
        let collect = |rng: &mut EnvRng| {
            collect_completions(&policy, &self.env, tok, c.num_groups, g, &sampling, rng)
        };
        let mut rollout = collect(&mut self.rng)?;
        self.completions += rollout.len();
        // The metrics describe the policy's own samples: the first batch, before any refill.
        let first = (
            rollout.rewards.clone(),
            rollout.tokens.clone(),
            rollout.finished.clone(),
        );
        let zero_std = zero_std_groups(&first.0, g);
        // With dynamic sampling, keep only groups whose rewards differ (at most four
        // batches' worth of tries), as `grpo.rs` does.
        if c.dynamic_sampling {
            let mut tries = 1;
            let informative = |r: &LmRollout| {
                zero_std_groups(&r.rewards, g)
                    .iter()
                    .filter(|z| !**z)
                    .count()
            };
            while informative(&rollout) < c.num_groups && tries < 4 {
                let more = collect(&mut self.rng)?;
                self.completions += more.len();
                rollout = rollout.merge_informative(more, g, c.num_groups);
                tries += 1;
            }
        }
        let rewards = &rollout.rewards;

        // 2. Group-relative advantages (eq. GRPO-1).
        let adv = group_advantages(rewards, g, c.baseline, c.scale_rewards);

        // 3. Updates on `[completions, tokens]` with the completion mask.
        let (n, t) = (rollout.len(), rollout.max_len());
        let device = self.model.devices()[0].clone();
        let old = rollout.padded(&rollout.logp);
        let old_logp = Tensor::<B, 2>::from_data(TensorData::new(old, [n, t]), &device);
        let advantages = Tensor::<B, 1>::from_data(TensorData::new(adv, [n]), &device);
        let pad = tok.pad_id();
        let ref_logp = match &self.reference {
            Some(reference) => {
                let (lp, _) = completion_log_probs(
                    reference,
                    &rollout.prompts,
                    &rollout.tokens,
                    pad,
                    c.temperature,
                )?;
                Some(Tensor::<B, 2>::from_inner(lp))
            }
            None => None,
        };
        let mut m = Metrics::new();
        for _ in 0..c.num_iterations {
            let (logp, mask) = completion_log_probs(
                &self.model,
                &rollout.prompts,
                &rollout.tokens,
                pad,
                c.temperature,
            )?;
            let batch = GrpoBatch {
                logp,
                old_logp: old_logp.clone(),
                ref_logp: ref_logp.clone(),
                advantages: advantages.clone(),
                mask,
                max_completion_length: self.max_completion_length,
            };
            let (loss, stats) = grpo_loss(batch, &c);
            m = stats;
            let (model, grad_norm) = gradient_step(
                self.model.clone(),
                loss,
                &mut self.optim,
                c.learning_rate,
                Some(c.max_grad_norm),
            );
            self.model = model;
            m.insert("grad_norm", f64::from(grad_norm));
        }
        self.iteration += 1;

        // 4. Metrics (TRL's names).
        let lengths: Vec<usize> = first.1.iter().map(Vec::len).collect();
        let clipped: Vec<bool> = first.2.iter().map(|f| !f).collect();
        generation_metrics(&first.0, &zero_std, &lengths, &clipped, &mut m);
        m.insert("completions_seen", self.completions as f64);
        Ok(m)
    }
}
