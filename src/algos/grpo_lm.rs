//! GRPO on a language model: the same [`GrpoUpdate`], group advantages and [`grpo_loss`] as
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
//!    `beta > 0`; with `gradient_accumulation_steps > 1`, the batch is backpropagated in
//!    parts whose gradients add up to the whole batch's;
//! 4. **metrics** under TRL's names.
//!
//! Data-parallel training ([`crate::algos::grpo_parallel`]) runs one learner per device: each
//! collects its share of the groups, and [`GrpoLm::update`] averages the gradients over the
//! peers (burn's all-reduce) before each step.

use burn::collective::{all_reduce, PeerId, ReduceOperation};
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use policy_lab_envs::EnvRng;
use rand::SeedableRng;

use super::grpo::{grpo_loss, GrpoBatch, GrpoUpdate, WholeBatch};
use crate::core::advantage::{group_advantages, zero_std_groups};
use crate::core::metrics::generation_metrics;
use crate::core::nn::clip_grad_norm;
use crate::kernels::Adam;
use crate::lm::generate::{completion_log_probs, SamplingConfig};
use crate::lm::model::Transformer;
use crate::lm::reward::RewardFuncs;
use crate::lm::rollout::{collect_completions, LmRollout, TextEnv};
use crate::lm::sft::LmError;
use crate::lm::tokenizer::Tokenizer;
use crate::{ConfigError, Metrics};

/// GRPO on a language model: the shared [`GrpoUpdate`] (a group is `num_generations`
/// completions of one prompt) and the one setting only a language model needs. The
/// completion length is the task's (`LmRunConfig::max_completion_length`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GrpoLmConfig {
    /// Split each update's batch into this many parts, backpropagate them one by one and
    /// add up their gradients before the step (TRL's `gradient_accumulation_steps`): the same
    /// step with a fraction of the activation memory.
    pub gradient_accumulation_steps: usize,
    #[serde(flatten)]
    pub update: GrpoUpdate,
}

impl Default for GrpoLmConfig {
    fn default() -> Self {
        Self {
            gradient_accumulation_steps: 1,
            update: GrpoUpdate {
                num_groups: 16,
                num_generations: 8,
                learning_rate: 2e-4,
                // Without it, most groups of a sharp SFT model soon score all right or all
                // wrong, teach nothing, and held-out accuracy stalls (BENCHMARKS.md).
                dynamic_sampling: true,
                ..GrpoUpdate::default()
            },
        }
    }
}

impl GrpoLmConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.gradient_accumulation_steps == 0 {
            return Err(ConfigError(
                "grpo: gradient_accumulation_steps must be at least 1".into(),
            ));
        }
        self.update.validate()
    }
}

/// A GRPO learner for a language model on a text task: any environment whose observations
/// (prompts) and actions (completions) are strings, scored in one step.
pub struct GrpoLm<B: AutodiffBackend, E, T> {
    pub config: GrpoLmConfig,
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
    /// This learner's place among data-parallel peers ([`crate::algos::grpo_parallel`]), if any.
    peer: Option<PeerId>,
    /// What scores a completion: the task's reward, reward models, or both, weighted.
    rewards: RewardFuncs<B::InnerBackend>,
    /// Each reward function's mean over the last batch, and the preference task's hidden
    /// rater's mean score when a reward model is used (metrics).
    reward_means: Vec<(String, f64)>,
}

impl<B, E, T> GrpoLm<B, E, T>
where
    B: AutodiffBackend,
    E: TextEnv,
    T: Tokenizer,
{
    /// A learner that starts from `model` (usually an SFT checkpoint), which is also the
    /// frozen reference of the KL term.
    pub fn new(
        config: GrpoLmConfig,
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
        let reference = (config.update.beta > 0.0).then(|| model.valid());
        Ok(Self {
            config,
            max_completion_length,
            reference,
            model,
            optim: Adam::new().init(),
            env,
            tokenizer,
            rng: EnvRng::seed_from_u64(seed),
            completions: 0,
            iteration: 0,
            peer: None,
            rewards: RewardFuncs::default(),
            reward_means: Vec::new(),
        })
    }

    /// Scores completions with `rewards` (TRL's `reward_funcs` and `reward_weights`) instead
    /// of the task's reward alone.
    pub fn with_rewards(mut self, rewards: RewardFuncs<B::InnerBackend>) -> Self {
        self.rewards = rewards;
        self
    }

    /// Makes this learner the data-parallel peer `peer`: its gradients are averaged with the
    /// other peers' at every step. Register the peer with burn's collective first, on the
    /// inner backend (see [`crate::algos::grpo_parallel`]).
    pub fn with_peer(mut self, peer: PeerId) -> Self {
        self.peer = Some(peer);
        self
    }

    /// One iteration: prompts, completions and rewards, advantages, updates, metrics.
    pub fn iterate(&mut self) -> Result<Metrics, LmError> {
        let (rollout, first) = self.collect()?;
        let mut m = self.update(&rollout)?;
        self.iteration += 1;

        // 4. Metrics (TRL's names), of the policy's own samples: the first batch, before
        // any refill.
        let g = self.config.update.num_generations;
        let zero_std = zero_std_groups(&first.rewards, g);
        let lengths: Vec<usize> = first.tokens.iter().map(Vec::len).collect();
        let clipped: Vec<bool> = first.finished.iter().map(|f| !f).collect();
        generation_metrics(&first.rewards, &zero_std, &lengths, &clipped, &mut m);
        m.insert("completions_seen", self.completions as f64);
        for (name, mean) in &self.reward_means {
            m.insert(crate::lm::reward::metric_key(name), *mean);
        }
        Ok(m)
    }

    /// Step 1, collect: `num_groups` prompts, `num_generations` completions of each, scored
    /// by the environment; with dynamic sampling, refilled with groups whose rewards differ.
    /// Returns the batch to learn from and the first batch sampled (for the metrics).
    // ANCHOR: grpolm_collect
    pub fn collect(&mut self) -> Result<(LmRollout, LmRollout), LmError> {
        let c = &self.config;
        let g = c.update.num_generations;
        let sampling = SamplingConfig {
            temperature: c.update.temperature,
            max_new_tokens: self.max_completion_length,
            ..SamplingConfig::default()
        };
        let policy = self.model.valid();
        let (env, tok, rewards) = (&self.env, &self.tokenizer, &self.rewards);
        let means = std::cell::RefCell::new(Vec::new());
        let collect = |rng: &mut EnvRng| {
            let mut r =
                collect_completions(&policy, env, tok, c.update.num_groups, g, &sampling, rng)?;
            let m = rewards.rescore(&mut r, tok)?;
            if means.borrow().is_empty() {
                *means.borrow_mut() = m;
            }
            Ok::<_, LmError>(r)
        };
        let mut rollout = collect(&mut self.rng)?;
        self.completions += rollout.completions();
        let first = rollout.clone();
        // With dynamic sampling, keep only groups whose rewards differ (at most four
        // batches' worth of tries), as `grpo.rs` does.
        if c.update.dynamic_sampling {
            let mut tries = 1;
            let informative = |r: &LmRollout| {
                zero_std_groups(&r.rewards, g)
                    .iter()
                    .filter(|z| !**z)
                    .count()
            };
            while informative(&rollout) < c.update.num_groups && tries < 4 {
                let more = collect(&mut self.rng)?;
                self.completions += more.completions();
                rollout = rollout.merge_informative(more, g, c.update.num_groups);
                tries += 1;
            }
        }
        self.reward_means = means.into_inner();
        Ok((rollout, first))
    }
    // ANCHOR_END: grpolm_collect

    /// Steps 2 and 3: group-relative advantages, then `num_iterations` updates on
    /// `rollout` (whole groups). With a data-parallel peer, the gradients are averaged over
    /// all peers before each step, so every replica takes the same step.
    pub fn update(&mut self, rollout: &LmRollout) -> Result<Metrics, LmError> {
        let parts = self.prepare(rollout)?;
        let mut m = Metrics::new();
        for _ in 0..self.config.update.num_iterations {
            // The gradients (averaged over the peers, with a peer), their global norm
            // clipped, one step: `gradient_step`, for gradients that may come from elsewhere.
            let (mut grads, stats) = self.gradients_of(&parts)?;
            m = stats;
            let u = &self.config.update;
            let grad_norm = clip_grad_norm(&self.model, &mut grads, u.max_grad_norm);
            self.model = self.optim.step(u.learning_rate, self.model.clone(), grads);
            m.insert("grad_norm", f64::from(grad_norm));
        }
        Ok(m)
    }

    /// The gradient of GRPO's loss on `rollout` (accumulated over its parts; averaged over
    /// the peers, with a peer) and the loss's metrics: what one update step applies.
    pub fn gradients(&self, rollout: &LmRollout) -> Result<(GradientsParams, Metrics), LmError> {
        let parts = self.prepare(rollout)?;
        self.gradients_of(&parts)
    }

    /// What stays fixed over the updates on one batch, cut into the
    /// `gradient_accumulation_steps` parts that are backpropagated one at a time: each
    /// part's rows, `log pi_old`, advantages (eq. GRPO-1, computed on whole groups first)
    /// and `log pi_ref`, and the whole batch's counts (all peers', shared out).
    fn prepare(&self, rollout: &LmRollout) -> Result<Vec<Part<B>>, LmError> {
        let c = &self.config;
        let adv = group_advantages(
            &rollout.rewards,
            c.update.num_generations,
            c.update.baseline,
            c.update.scale_rewards,
        );
        let device = self.model.devices()[0].clone();
        // ANCHOR: gpus_whole_counts
        let tokens: usize = rollout.tokens.iter().map(Vec::len).sum();
        let mut whole = WholeBatch {
            sequences: rollout.completions() as f32,
            tokens: tokens as f32,
        };
        if let Some(peer) = self.peer {
            // The mean over the peers of (sequences, tokens): the global counts per peer.
            let mean = mean_over_peers::<B::InnerBackend>(
                peer,
                &[whole.sequences, whole.tokens],
                &device,
            )?;
            whole = WholeBatch {
                sequences: mean[0],
                tokens: mean[1],
            };
        }
        // ANCHOR_END: gpus_whole_counts
        let n = rollout.completions();
        let size = n.div_ceil(c.gradient_accumulation_steps.min(n).max(1));
        let mut parts = Vec::new();
        for start in (0..n).step_by(size.max(1)) {
            let rows = rollout.rows(start..(start + size).min(n));
            let (len, t) = (rows.completions(), rows.max_len());
            let old_logp = Tensor::<B, 2>::from_data(
                TensorData::new(rows.padded(&rows.logp), [len, t]),
                &device,
            );
            let advantages = Tensor::<B, 1>::from_data(
                TensorData::new(adv[start..start + len].to_vec(), [len]),
                &device,
            );
            // ANCHOR: grpolm_reference
            let ref_logp = match &self.reference {
                Some(reference) => {
                    let (lp, _) = completion_log_probs(
                        reference,
                        &rows.prompts,
                        &rows.tokens,
                        self.tokenizer.pad_id(),
                        c.update.temperature,
                    )?;
                    Some(Tensor::<B, 2>::from_inner(lp))
                }
                None => None,
            };
            // ANCHOR_END: grpolm_reference
            parts.push(Part {
                rows,
                old_logp,
                advantages,
                ref_logp,
                whole,
            });
        }
        Ok(parts)
    }

    /// Step 3: the loss of each part on `[completions, tokens]` with the completion mask
    /// (eq. GRPO-2 to GRPO-4), backpropagated part by part and added up (the parts' losses
    /// sum to the whole batch's); then all-reduced (mean) over the peers. The metrics are
    /// the parts' mean (the loss: their sum).
    fn gradients_of(&self, parts: &[Part<B>]) -> Result<(GradientsParams, Metrics), LmError> {
        // ANCHOR: grpolm_gradients
        let mut accumulated = GradientsAccumulator::<Transformer<B>>::new();
        let mut m = Metrics::new();
        for part in parts {
            let (logp, mask) = completion_log_probs(
                &self.model,
                &part.rows.prompts,
                &part.rows.tokens,
                self.tokenizer.pad_id(),
                self.config.update.temperature,
            )?;
            let batch = GrpoBatch {
                logp,
                old_logp: part.old_logp.clone(),
                ref_logp: part.ref_logp.clone(),
                advantages: part.advantages.clone(),
                mask,
                max_completion_length: self.max_completion_length,
                whole: Some(part.whole),
            };
            let (loss, stats) = grpo_loss(batch, &self.config.update);
            accumulated.accumulate(
                &self.model,
                GradientsParams::from_grads(loss.backward(), &self.model),
            );
            for (key, value) in stats {
                let share = if key == "loss" {
                    1.0
                } else {
                    1.0 / parts.len() as f64
                };
                *m.entry(key).or_insert(0.0) += value * share;
            }
        }
        let mut grads = accumulated.grads();
        if let Some(peer) = self.peer {
            grads = grads
                .all_reduce::<B::InnerBackend>(peer, ReduceOperation::Mean)
                .map_err(collective_error)?;
        }
        // ANCHOR_END: grpolm_gradients
        Ok((grads, m))
    }
}

/// One part of an update's batch; see [`GrpoLm::prepare`].
struct Part<B: AutodiffBackend> {
    rows: LmRollout,
    old_logp: Tensor<B, 2>,
    advantages: Tensor<B, 1>,
    ref_logp: Option<Tensor<B, 2>>,
    whole: WholeBatch,
}

/// The element-wise mean of `values` over every data-parallel peer (burn's all-reduce; every
/// peer must call it with as many values).
pub fn mean_over_peers<B: Backend>(
    peer: PeerId,
    values: &[f32],
    device: &B::Device,
) -> Result<Vec<f32>, LmError> {
    // Across machines burn's ring all-reduce cuts the tensor into one slice per node and
    // refuses a shorter one (RingReduceImpossible): pad short vectors to 256 values.
    let mut padded = values.to_vec();
    padded.resize(values.len().max(256), 0.0);
    let n = padded.len();
    let local = Tensor::<B, 1>::from_data(TensorData::new(padded, [n]), device);
    let mean = all_reduce::<B>(peer, local.into_primitive().tensor(), ReduceOperation::Mean)
        .map_err(collective_error)?;
    let mut mean: Vec<f32> = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(mean))
        .into_data()
        .to_vec()
        .expect("f32 values");
    mean.truncate(values.len());
    Ok(mean)
}

fn collective_error(e: burn::collective::CollectiveError) -> LmError {
    LmError::Collective(format!("{e:?}"))
}

/// What GRPO on a language model keeps besides networks and the optimizer (`state.json`):
/// the prompt source mid-stream and the sampling generator.
#[derive(serde::Serialize, serde::Deserialize)]
struct GrpoLmState<E> {
    env: E,
    rng: EnvRng,
    completions: usize,
    iteration: usize,
}

// The run layer's view of GRPO on a language model: iterate, and the checkpoint (the model,
// its frozen reference when the KL term needs one, Adam's moments, the prompt source and
// the sampling generator).
impl<B, E, T> GrpoLm<B, E, T>
where
    B: AutodiffBackend,
    E: TextEnv + serde::Serialize + serde::de::DeserializeOwned,
    T: Tokenizer,
{
    /// Writes the learner's whole state into the folder `dir` (its `Learner::save`).
    pub fn save_state(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        use crate::core::checkpoint::*;
        save_module(&self.model, &dir.join("model"))?;
        if let Some(reference) = &self.reference {
            save_module(reference, &dir.join("reference"))?;
        }
        save_optim(&self.optim, &dir.join("optim"))?;
        let state = GrpoLmState {
            env: self.env.clone(),
            rng: self.rng.clone(),
            completions: self.completions,
            iteration: self.iteration,
        };
        save_json(&state, &dir.join("state.json"))
    }
    /// Restores what [`Self::save_state`] wrote into `dir` (its `Learner::load`).
    pub fn load_state(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
        use crate::core::checkpoint::*;
        let device = self.model.devices()[0].clone();
        self.model = load_module(self.model.clone(), &dir.join("model"), &device)?;
        if let Some(reference) = self.reference.take() {
            self.reference = Some(load_module(reference, &dir.join("reference"), &device)?);
        }
        self.optim = load_optim(self.optim.clone(), &dir.join("optim"), &device)?;
        let s: GrpoLmState<E> = load_json(&dir.join("state.json"))?;
        (self.env, self.rng) = (s.env, s.rng);
        (self.completions, self.iteration) = (s.completions, s.iteration);
        Ok(())
    }
}

super::lm_learner!(GrpoLm, policy: model, weights: model);
