//! Group Relative Policy Optimization (Shao et al., 2024), as Hugging Face TRL computes it,
//! on toy environments. The same [`grpo_loss`] trains the language model: an episode here
//! is a completion there, an action a token.
//!
//! Read it next to the book's GRPO chapter. One iteration:
//!
//! 1. **collect** `num_groups` groups of `num_generations` episodes; the members of a group
//!    share their start (the same bandit context, the maze's start, CartPole's reset seed).
//!    With `dynamic_sampling`, groups whose rewards are all equal are dropped and refilled
//!    (DAPO);
//! 2. **advantages**: each episode's return against its group (eq. GRPO-1): no critic;
//! 3. **update** `num_iterations` times: the clipped surrogate per action with clip-higher
//!    (eq. PPO-2), plus `beta` times the k3 estimate of KL(pi || pi_ref) to the frozen
//!    initial policy (eq. GRPO-3), aggregated by `loss_type` (eq. GRPO-4);
//! 4. **metrics** under TRL's names: `reward`, `reward_std`, `frac_reward_zero_std`, `kl`,
//!    `entropy`, `clip_ratio/*`, `completions/mean_length`, `completions/clipped_ratio`.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::core::advantage::{group_advantages, zero_std_groups, GroupBaseline, ScaleRewards};
use crate::core::metrics::generation_metrics;
use crate::core::nn::{categorical, gradient_step, Mlp};
use crate::core::objective::{
    aggregate, clipped_surrogate, kl, masked_mean, ratio, Aggregation, KlEstimator,
};
use crate::core::rollout::tensor2;
use crate::kernels::{self, Adam};
use crate::{scalar, ConfigError, Metrics};
use policy_lab_envs::{AnyEnv, Env, EnvRng};

/// How per-token losses are aggregated (TRL's `loss_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over each sequence's tokens, then over sequences (the original GRPO).
    Grpo,
    /// Sum over all tokens / tokens in the batch.
    Bnpo,
    /// Sum over all tokens / (sequences * max_completion_length) (Dr. GRPO).
    DrGrpo,
    /// Sum over all tokens / active tokens in the global batch (DAPO; TRL's default). With
    /// one process and no gradient accumulation the global batch is this batch, as in `bnpo`.
    Dapo,
}

/// GRPO's groups and update, shared by the toy learner here and the language-model one
/// (`grpo_lm.rs`): a group is `num_generations` episodes from one start, or completions of
/// one prompt. Named as in TRL's `GRPOConfig` where TRL has them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpoUpdate {
    /// G: episodes (completions) per group.
    pub num_generations: usize,
    /// Groups per iteration (TRL: prompts per batch).
    pub num_groups: usize,
    /// Drop groups whose rewards are all equal and refill the batch (DAPO).
    pub dynamic_sampling: bool,
    /// Sampling temperature; log-probabilities come from `logits / temperature`, as in TRL.
    pub temperature: f32,
    pub learning_rate: f64,
    /// The low clip range.
    pub epsilon: f32,
    /// The high clip range (DAPO's clip-higher); `None` means `epsilon`.
    pub epsilon_high: Option<f32>,
    /// The weight of the KL(pi || pi_ref) term (TRL's default today: 0).
    pub beta: f32,
    /// Multiply the KL term by the ratio (TRL 1.x's `use_bias_correction_kl`, the default).
    pub kl_bias_correction: bool,
    pub loss_type: LossType,
    pub scale_rewards: ScaleRewards,
    pub baseline: GroupBaseline,
    /// Updates per batch of generations (mu).
    pub num_iterations: usize,
    pub max_grad_norm: f32,
}

impl Default for GrpoUpdate {
    fn default() -> Self {
        Self {
            num_generations: 8,
            num_groups: 8,
            dynamic_sampling: false,
            temperature: 1.0,
            learning_rate: 3e-3,
            epsilon: 0.2,
            epsilon_high: None,
            beta: 0.0,
            kl_bias_correction: true,
            loss_type: LossType::Dapo,
            scale_rewards: ScaleRewards::Group,
            baseline: GroupBaseline::Mean,
            num_iterations: 1,
            max_grad_norm: 1.0,
        }
    }
}

/// GRPO on the toy environments: the policy network, the length `dr_grpo` divides by, and
/// the shared [`GrpoUpdate`]. In a TOML `[grpo]` table the update's keys sit beside these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpoConfig {
    /// The length `dr_grpo` divides by (TRL's `max_completion_length`, for episodes);
    /// `None` uses the environment's time limit, or the longest episode of the batch.
    pub max_completion_length: Option<usize>,
    /// Hidden layer sizes of the policy.
    pub hidden: Vec<usize>,
    #[serde(flatten)]
    pub update: GrpoUpdate,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            max_completion_length: None,
            hidden: vec![64, 64],
            update: GrpoUpdate::default(),
        }
    }
}

/// `Err(ConfigError("grpo: msg"))` unless `ok`.
fn check(ok: bool, msg: &str) -> Result<(), ConfigError> {
    ConfigError::unless(ok, "grpo", msg)
}

impl GrpoConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.max_completion_length != Some(0),
            "max_completion_length must be at least 1",
        )?;
        ConfigError::check_hidden("grpo", &self.hidden)?;
        self.update.validate()
    }
}

impl GrpoUpdate {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.num_generations >= 2,
            "num_generations (G) must be at least 2: a group needs someone to compare with",
        )?;
        check(self.num_groups >= 1, "num_groups must be at least 1")?;
        check(
            self.learning_rate > 0.0 && self.learning_rate.is_finite(),
            "learning_rate must be positive",
        )?;
        check(
            self.epsilon > 0.0
                && self.epsilon.is_finite()
                && self.epsilon_high.is_none_or(|e| e > 0.0 && e.is_finite()),
            "epsilon and epsilon_high must be > 0 and finite",
        )?;
        check(
            self.beta >= 0.0 && self.beta.is_finite(),
            "beta must be >= 0 and finite",
        )?;
        check(
            self.num_iterations >= 1,
            "num_iterations must be at least 1",
        )?;
        check(
            self.temperature > 0.0 && self.temperature.is_finite(),
            "temperature must be > 0 and finite",
        )?;
        check(
            self.max_grad_norm > 0.0 && self.max_grad_norm.is_finite(),
            "max_grad_norm must be > 0 and finite",
        )
    }
    // ANCHOR: grpo_loss_type
    /// How `loss_type` reduces a batch of `batch` completions padded to `max_len` tokens.
    pub fn aggregation(&self, batch: usize, max_len: usize) -> Aggregation {
        match self.loss_type {
            LossType::Grpo => Aggregation::SequenceMean,
            LossType::Bnpo | LossType::Dapo => Aggregation::TokenMean,
            LossType::DrGrpo => Aggregation::Constant((batch * max_len) as f32),
        }
    }
    // ANCHOR_END: grpo_loss_type
}

/// What [`grpo_loss`] needs: per-token tensors `[sequences, tokens]` and one advantage per
/// sequence.
pub struct GrpoBatch<B: Backend> {
    /// `log pi(token)` under the policy being trained (with gradients).
    pub logp: Tensor<B, 2>,
    /// `log pi_old(token)` at generation time.
    pub old_logp: Tensor<B, 2>,
    /// `log pi_ref(token)`, when `beta > 0`.
    pub ref_logp: Option<Tensor<B, 2>>,
    /// `[sequences]`.
    pub advantages: Tensor<B, 1>,
    /// 1 for real tokens, 0 for padding.
    pub mask: Tensor<B, 2>,
    /// The length `dr_grpo` divides by.
    pub max_completion_length: usize,
    /// When this batch is one part of a larger one (gradient accumulation, data-parallel
    /// peers): the larger batch's counts, so that the parts' losses add up to its loss.
    pub whole: Option<WholeBatch>,
}

/// The sequences and real tokens of a whole batch, per data-parallel peer (the global
/// counts divided by the number of peers; the plain counts on one device). A part's loss
/// divides by these instead of its own counts: summed over the parts of an accumulated
/// step and averaged over the peers, it is the whole batch's loss (TRL normalizes `dapo` by
/// the global token count across processes in the same way).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WholeBatch {
    pub sequences: f32,
    pub tokens: f32,
}

/// GRPO's loss (eq. GRPO-2) and TRL's per-update metrics. The one copy, for toy
/// environments and language models alike.
// ANCHOR: grpo_loss
pub fn grpo_loss<B: Backend>(batch: GrpoBatch<B>, config: &GrpoUpdate) -> (Tensor<B, 1>, Metrics) {
    let [n, t] = batch.logp.dims();
    let adv = batch.advantages.unsqueeze_dim::<2>(1).repeat_dim(1, t);
    let eps_high = config.epsilon_high.unwrap_or(config.epsilon);
    // eq. (PPO-2) per token: one fused operation where the backend has it (`kernels`,
    // the same gradient to the bit), else the definition.
    let fused =
        kernels::clipped_surrogate(&batch.logp, &batch.old_logp, &adv, config.epsilon, eps_high);
    let r = ratio(batch.logp.clone(), batch.old_logp);
    let mut per_token = fused
        .unwrap_or_else(|| clipped_surrogate(r.clone(), adv.clone(), config.epsilon, eps_high));
    let mut m = Metrics::new();
    if let (Some(ref_logp), true) = (batch.ref_logp, config.beta > 0.0) {
        let k3 = kl(batch.logp, ref_logp, KlEstimator::K3);
        m.insert("kl", scalar(&masked_mean(k3.clone(), batch.mask.clone())));
        let weighted = if config.kl_bias_correction {
            k3 * r.clone()
        } else {
            k3
        };
        per_token = per_token + weighted * config.beta;
    }
    // ANCHOR_END: grpo_loss
    // ANCHOR: gpus_whole_batch_loss
    let loss = match batch.whole {
        None => aggregate(
            per_token,
            batch.mask.clone(),
            config.aggregation(n, batch.max_completion_length),
        ),
        // A part of a larger batch: the part's share of the larger batch's loss.
        Some(whole) => match config.aggregation(n, batch.max_completion_length) {
            Aggregation::SequenceMean => {
                aggregate(per_token, batch.mask.clone(), Aggregation::SequenceMean) * n as f32
                    / whole.sequences
            }
            Aggregation::TokenMean => aggregate(
                per_token,
                batch.mask.clone(),
                Aggregation::Constant(whole.tokens.max(1.0)),
            ),
            Aggregation::Constant(_) => aggregate(
                per_token,
                batch.mask.clone(),
                Aggregation::Constant(whole.sequences * batch.max_completion_length as f32),
            ),
        },
    };
    // ANCHOR_END: gpus_whole_batch_loss

    // TRL's clip metrics: how often the ratio sits outside the trust region on the side
    // that the clip cuts.
    let low =
        r.clone().lower_elem(1.0 - config.epsilon).float() * adv.clone().lower_elem(0.0).float();
    let high = r.greater_elem(1.0 + eps_high).float() * adv.greater_elem(0.0).float();
    let low_mean = scalar(&masked_mean(low, batch.mask.clone()));
    let high_mean = scalar(&masked_mean(high, batch.mask));
    m.insert("clip_ratio/low_mean", low_mean);
    m.insert("clip_ratio/high_mean", high_mean);
    m.insert("clip_ratio/region_mean", low_mean + high_mean);
    m.insert("loss", scalar(&loss));
    (loss, m)
}

/// The episodes of one iteration, padded into `[episodes, max_len]`.
struct Episodes {
    obs: Vec<f32>,
    actions: Vec<i64>,
    logp: Vec<f32>,
    mask: Vec<f32>,
    rewards: Vec<f32>,
    lengths: Vec<usize>,
    truncated: Vec<bool>,
    max_len: usize,
}

/// A GRPO learner for a toy environment.
pub struct Grpo<B: AutodiffBackend> {
    pub config: GrpoConfig,
    pub actor: Mlp<B>,
    pub(crate) reference: Mlp<B::InnerBackend>,
    pub(crate) optim: OptimizerAdaptor<Adam, Mlp<B>, B>,
    env: AnyEnv,
    time_limit: Option<usize>,
    pub(crate) rng: EnvRng,
    device: B::Device,
    /// Environment steps taken so far.
    pub(crate) steps: usize,
    pub iteration: usize,
}

impl<B: AutodiffBackend> Grpo<B> {
    /// A learner for `env` (episodes are cut at `time_limit`, the env's own limit).
    pub fn new(
        config: GrpoConfig,
        env: AnyEnv,
        time_limit: Option<usize>,
        seed: u64,
        device: B::Device,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let actor = crate::backend::seeded::<B, _>(&device, seed, || {
            Mlp::new(
                env.obs_dim(),
                &config.hidden,
                env.num_actions(),
                0.01,
                &device,
            )
        });
        let reference = actor.valid();
        Ok(Self {
            config,
            actor,
            reference,
            optim: Adam::new().init(),
            env,
            time_limit,
            rng: EnvRng::seed_from_u64(seed),
            device,
            steps: 0,
            iteration: 0,
        })
    }

    /// Environment steps taken so far.
    pub fn global_step(&self) -> usize {
        self.steps
    }

    /// Plays `groups * G` episodes in lockstep with the current policy.
    fn generate(&mut self, groups: usize) -> policy_lab_envs::Result<Episodes> {
        let g = self.config.update.num_generations;
        let (dim, num_actions) = (self.env.obs_dim(), self.env.num_actions());
        let policy = self.actor.valid();
        let mut envs = vec![self.env.clone(); groups * g];
        let mut obs: Vec<Vec<f32>> = Vec::with_capacity(envs.len());
        // ANCHOR: grpo_group_reset
        for chunk in envs.chunks_mut(g) {
            let group_seed: u64 = self.rng.random();
            for env in chunk.iter_mut() {
                obs.push(env.reset_group_member(group_seed, self.rng.random()).0);
            }
        }
        // ANCHOR_END: grpo_group_reset
        let n = envs.len();
        let mut traj: Vec<(Vec<f32>, Vec<i64>, Vec<f32>)> = vec![Default::default(); n];
        let (mut rewards, mut done, mut truncated) =
            (vec![0.0f32; n], vec![false; n], vec![false; n]);
        while done.iter().any(|d| !d) {
            let active: Vec<usize> = (0..n).filter(|&i| !done[i]).collect();
            let flat: Vec<f32> = active
                .iter()
                .flat_map(|&i| obs[i].iter().copied())
                .collect();
            let logits =
                policy.forward(tensor2(&flat, dim, &self.device)) / self.config.update.temperature;
            let log_probs: Vec<f32> = categorical::log_probs(logits)
                .into_data()
                .to_vec()
                .expect("f32");
            let (actions, logp) = categorical::sample(&log_probs, num_actions, &mut self.rng);
            for (j, &i) in active.iter().enumerate() {
                let step = envs[i].step(actions[j])?;
                let (o, a, l) = &mut traj[i];
                o.extend_from_slice(&obs[i]);
                a.push(actions[j] as i64);
                l.push(logp[j]);
                rewards[i] += step.reward as f32;
                obs[i] = step.obs;
                if step.terminated || step.truncated {
                    done[i] = true;
                    truncated[i] = step.truncated;
                }
            }
        }
        let max_len = traj.iter().map(|(_, a, _)| a.len()).max().unwrap_or(1);
        let mut e = Episodes {
            obs: vec![0.0; n * max_len * dim],
            actions: vec![0; n * max_len],
            logp: vec![0.0; n * max_len],
            mask: vec![0.0; n * max_len],
            rewards,
            lengths: traj.iter().map(|(_, a, _)| a.len()).collect(),
            truncated,
            max_len,
        };
        for (i, (o, a, l)) in traj.iter().enumerate() {
            let row = i * max_len;
            e.obs[row * dim..row * dim + o.len()].copy_from_slice(o);
            e.actions[row..row + a.len()].copy_from_slice(a);
            e.logp[row..row + l.len()].copy_from_slice(l);
            e.mask[row..row + a.len()].fill(1.0);
        }
        self.steps += e.lengths.iter().sum::<usize>();
        Ok(e)
    }

    /// One iteration: collect groups, advantages, `num_iterations` updates, metrics.
    pub fn iterate(&mut self) -> policy_lab_envs::Result<Metrics> {
        let c = self.config.clone();
        let g = c.update.num_generations;
        // ANCHOR: grpo_collect
        // 1. Collect; with dynamic sampling, keep only groups whose rewards differ (at most
        //    four batches' worth of tries).
        let mut e = self.generate(c.update.num_groups)?;
        let all_rewards = e.rewards.clone();
        let zero_std = zero_std_groups(&e.rewards, g);
        if c.update.dynamic_sampling {
            let mut tries = 1;
            while zero_std_groups(&e.rewards, g)
                .iter()
                .filter(|z| !**z)
                .count()
                < c.update.num_groups
                && tries < 4
            {
                let more = self.generate(c.update.num_groups)?;
                e = merge_informative(e, more, g, c.update.num_groups);
                tries += 1;
            }
        }
        let n = e.rewards.len();
        let t = e.max_len;

        // 2. Group-relative advantages (eq. GRPO-1).
        let adv = group_advantages(&e.rewards, g, c.update.baseline, c.update.scale_rewards);
        // ANCHOR_END: grpo_collect

        // 3. Updates.
        let dev = &self.device;
        let dim = self.env.obs_dim();
        let obs = tensor2::<B>(&e.obs, dim, dev);
        let actions =
            Tensor::<B, 1, Int>::from_data(TensorData::new(e.actions.clone(), [n * t]), dev);
        let old_logp = Tensor::<B, 2>::from_data(TensorData::new(e.logp.clone(), [n, t]), dev);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(e.mask.clone(), [n, t]), dev);
        let advantages = Tensor::<B, 1>::from_data(TensorData::new(adv, [n]), dev);
        let token_logp = |logits: Tensor<B, 2>| {
            categorical::log_prob_of(
                categorical::log_probs(logits / c.update.temperature),
                actions.clone(),
            )
            .reshape([n, t])
        };
        // ANCHOR: grpo_reference
        let ref_logp = (c.update.beta > 0.0).then(|| {
            let logits = self.reference.forward(obs.clone().inner()) / c.update.temperature;
            let lp =
                categorical::log_prob_of(categorical::log_probs(logits), actions.clone().inner())
                    .reshape([n, t]);
            Tensor::<B, 2>::from_inner(lp)
        });
        // ANCHOR_END: grpo_reference
        let max_completion_length = c.max_completion_length.or(self.time_limit).unwrap_or(t);
        let mut m = Metrics::new();
        // ANCHOR: grpo_update
        for _ in 0..c.update.num_iterations {
            let logits = self.actor.forward(obs.clone());
            let entropy = categorical::entropy(categorical::log_probs(
                logits.clone() / c.update.temperature,
            ))
            .reshape([n, t]);
            let batch = GrpoBatch {
                logp: token_logp(logits),
                old_logp: old_logp.clone(),
                ref_logp: ref_logp.clone(),
                advantages: advantages.clone(),
                mask: mask.clone(),
                max_completion_length,
                whole: None,
            };
            let (loss, stats) = grpo_loss(batch, &c.update);
            m = stats;
            m.insert(
                "entropy",
                scalar(&masked_mean(entropy.inner(), mask.clone().inner())),
            );
            let (actor, grad_norm) = gradient_step(
                self.actor.clone(),
                loss,
                &mut self.optim,
                c.update.learning_rate,
                Some(c.update.max_grad_norm),
            );
            self.actor = actor;
            m.insert("grad_norm", f64::from(grad_norm));
        }
        // ANCHOR_END: grpo_update
        self.iteration += 1;

        // 4. Metrics (TRL's names; `reward` over every generated group).
        generation_metrics(&all_rewards, &zero_std, &e.lengths, &e.truncated, &mut m);
        m.insert("global_step", self.steps as f64);
        Ok(m)
    }
}

/// Keeps the groups of `a` and then of `b` whose rewards are not all equal, up to `want`
/// groups (then tops up with the others, so the batch size stays fixed).
fn merge_informative(a: Episodes, b: Episodes, g: usize, want: usize) -> Episodes {
    let max_len = a.max_len.max(b.max_len);
    let dim = a.obs.len() / a.mask.len();
    let mut groups: Vec<(bool, &Episodes, usize)> = Vec::new();
    for e in [&a, &b] {
        for (gi, z) in zero_std_groups(&e.rewards, g).into_iter().enumerate() {
            groups.push((z, e, gi));
        }
    }
    groups.sort_by_key(|(z, _, _)| *z); // informative groups first, stable order otherwise
    groups.truncate(want);
    let n = want * g;
    let mut out = Episodes {
        obs: vec![0.0; n * max_len * dim],
        actions: vec![0; n * max_len],
        logp: vec![0.0; n * max_len],
        mask: vec![0.0; n * max_len],
        rewards: Vec::with_capacity(n),
        lengths: Vec::with_capacity(n),
        truncated: Vec::with_capacity(n),
        max_len,
    };
    let mut row = 0;
    for (_, e, gi) in groups {
        for i in gi * g..(gi + 1) * g {
            let len = e.lengths[i];
            let (src, dst) = (i * e.max_len, row * max_len);
            out.obs[dst * dim..(dst + len) * dim]
                .copy_from_slice(&e.obs[src * dim..(src + len) * dim]);
            out.actions[dst..dst + len].copy_from_slice(&e.actions[src..src + len]);
            out.logp[dst..dst + len].copy_from_slice(&e.logp[src..src + len]);
            out.mask[dst..dst + len].fill(1.0);
            out.rewards.push(e.rewards[i]);
            out.lengths.push(len);
            out.truncated.push(e.truncated[i]);
            row += 1;
        }
    }
    out
}

/// What GRPO keeps besides networks and optimizers (`state.json`).
#[derive(Serialize, Deserialize)]
struct GrpoState {
    rng: EnvRng,
    steps: usize,
    iteration: usize,
}

// How the toy runner reads Grpo's settings and makes its learner (registered in
// `src/run/train.rs`).
impl crate::core::learner::Rung for GrpoConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        GrpoConfig::validate(self)
    }
    fn hidden(&self) -> &[usize] {
        &self.hidden
    }
    fn has_critic(&self) -> bool {
        false
    }
    fn steps_per_iteration(&self) -> usize {
        // Episodes have no fixed length: a rough guess of 16 steps each.
        self.update.num_groups * self.update.num_generations * 16
    }
    fn learner<B: AutodiffBackend>(
        &self,
        env: &str,
        seed: u64,
        _total_timesteps: usize,
        device: B::Device,
    ) -> anyhow::Result<Box<dyn crate::core::learner::Learner<Policy = Mlp<B>>>> {
        let (env, spec) = policy_lab_envs::make(env)?;
        let limit = spec.max_episode_steps;
        Ok(Box::new(Grpo::new(self.clone(), env, limit, seed, device)?))
    }
}

// The run layer's view of GRPO on a toy environment: iterate, and the checkpoint (the
// policy, its frozen reference, the optimizer, the generator that seeds the groups).
impl<B: AutodiffBackend> crate::core::learner::Learner for Grpo<B> {
    type Policy = Mlp<B>;
    fn iterate(&mut self) -> anyhow::Result<Metrics> {
        Ok(Grpo::iterate(self)?)
    }
    fn global_step(&self) -> usize {
        Grpo::global_step(self)
    }
    fn policy(&self) -> &Mlp<B> {
        &self.actor
    }
    fn save(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        use crate::core::checkpoint::*;
        save_module(&self.actor, &dir.join("networks"))?;
        save_module(&self.reference, &dir.join("reference"))?;
        save_optim(&self.optim, &dir.join("optim"))?;
        let state = GrpoState {
            rng: self.rng.clone(),
            steps: self.steps,
            iteration: self.iteration,
        };
        save_json(&state, &dir.join("state.json"))
    }
    fn load(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
        use crate::core::checkpoint::*;
        let d = &self.device;
        self.actor = load_module(self.actor.clone(), &dir.join("networks"), d)?;
        self.reference = load_module(self.reference.clone(), &dir.join("reference"), d)?;
        self.optim = load_optim(self.optim.clone(), &dir.join("optim"), d)?;
        let s: GrpoState = load_json(&dir.join("state.json"))?;
        (self.rng, self.steps, self.iteration) = (s.rng, s.steps, s.iteration);
        Ok(())
    }
    fn is_finite(&self) -> bool {
        crate::core::checkpoint::all_finite(&self.actor)
    }
}
