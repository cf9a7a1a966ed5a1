//! PPO on a language model, with a value head: the comparison GRPO is measured against.
//!
//! The same [`PpoUpdate`], [`clipped_surrogate`], [`value_loss`] and [`gae`] as PPO on the
//! toy environments (`ppo.rs`); only the collection and the shapes differ. Each token is an
//! action, each prefix a state:
//!
//! * the **value model** is a second transformer with a scalar head, started from the same
//!   checkpoint as the policy (as TRL starts its value model from a pretrained model). It
//!   reads the state before each completion token;
//! * the **reward** comes at the completion's last token (the environment's score), `gamma`
//!   and `gae_lambda` spread it back over the tokens by GAE (eq. GAE-1, GAE-2), one episode
//!   per completion;
//! * the **loss** is the clipped surrogate plus `vf_coef` times the value loss, each a token
//!   mean over the completion mask (eq. PPO-2, PPO-4, PPO-5).
//!
//! One completion per prompt, `num_prompts` prompts per iteration ([`PpoLmConfig`]). The
//! toy learner's entropy bonus and learning-rate annealing are not used here (nor in TRL's
//! `PPOTrainer`), so they are not settings of this learner.

use burn::module::{AutodiffModule, Module, ModuleMapper, Param, ParamId};
use burn::nn::{Linear, LinearConfig};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use policy_lab_envs::EnvRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::ppo::{value_loss, PpoUpdate, UpdateStats};
use super::{FromInit, LmLearner};
use crate::core::advantage::{gae, normalize};
use crate::core::metrics::explained_variance;
use crate::core::metrics::generation_metrics;
use crate::core::nn::gradient_step;
use crate::core::objective::{clipped_surrogate, masked_mean, ratio};
use crate::kernels::Adam;
use crate::lm::generate::{completion_log_probs, SamplingConfig};
use crate::lm::model::{Batch, ModelError, Transformer};
use crate::lm::reward::RewardFuncs;
use crate::lm::rollout::{collect_completions, LmRollout, TextEnv};
use crate::lm::sft::{LmError, TokenRows};
use crate::lm::tokenizer::Tokenizer;
use crate::{ConfigError, Metrics};

/// PPO on a language model: prompts per iteration and the shared [`PpoUpdate`]; the
/// completion length is the task's (`LmRunConfig::max_completion_length`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PpoLmConfig {
    /// Prompts per iteration, one completion each.
    pub num_prompts: usize,
    #[serde(flatten)]
    pub update: PpoUpdate,
}

impl Default for PpoLmConfig {
    fn default() -> Self {
        Self {
            // As many completions as GRPO's default 16 groups of 8.
            num_prompts: 128,
            update: PpoUpdate {
                learning_rate: 2e-4,
                gamma: 1.0,
                gae_lambda: 0.95,
                num_minibatches: 1,
                update_epochs: 1,
                vf_coef: 0.1,
                max_grad_norm: 1.0,
                ..PpoUpdate::default()
            },
        }
    }
}

impl PpoLmConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.num_prompts == 0 {
            return Err(ConfigError("ppo: num_prompts must be at least 1".into()));
        }
        self.update.validate(self.num_prompts, "num_prompts")
    }
}

/// A transformer with a scalar head: `V(prefix)`.
#[derive(Module, Debug)]
pub struct ValueModel<B: Backend> {
    trunk: Transformer<B>,
    head: Linear<B>,
}

impl<B: Backend> ValueModel<B> {
    /// A value model on a copy of `trunk`, with a zero-initialized head (every value starts
    /// at 0).
    pub fn new(policy: &Transformer<B>) -> Self {
        // Reading every parameter first materializes the ones burn initializes lazily (a
        // clone of an unread parameter draws its own random values).
        crate::core::flat::flat_params(policy);
        // A copy with parameters of its own: a plain `clone` keeps the parameter ids, and the
        // optimizer, which keys its moments and gradients by id, would then mix the value
        // loss's gradients into the policy.
        let trunk = policy.clone().map(&mut FreshParams);
        let device = trunk.devices()[0].clone();
        let head = LinearConfig::new(trunk.d_model(), 1)
            .with_initializer(burn::nn::Initializer::Zeros)
            .init(&device);
        Self { trunk, head }
    }

    /// The value of the state before each completion token, `[rows, max_completion_len]`:
    /// read at the same positions as the logits that predict those tokens.
    pub fn values(
        &self,
        prompts: &[Vec<u32>],
        completions: &[Vec<u32>],
        pad: u32,
    ) -> Result<Tensor<B, 2>, ModelError> {
        // ANCHOR: ppolm_values
        let rows = prompts.len();
        let mut batch = Batch::left_padded(prompts, pad);
        let p_len = batch.len();
        let c_len = completions.iter().map(Vec::len).max().unwrap_or(0);
        for (r, completion) in completions.iter().enumerate() {
            for j in 0..c_len {
                batch.tokens[r].push(completion.get(j).copied().unwrap_or(pad));
                batch.valid[r].push(j < completion.len());
            }
        }
        let hidden = self.trunk.hidden(&batch)?.narrow(1, p_len - 1, c_len);
        Ok(self.head.forward(hidden).reshape([rows, c_len]))
        // ANCHOR_END: ppolm_values
    }
}

/// Gives every parameter a new id and a new tensor (the same values).
struct FreshParams;

impl<B: Backend> ModuleMapper<B> for FreshParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (_, tensor, mapper) = param.consume();
        let mut copy = Tensor::from_data(tensor.to_data(), &tensor.device());
        if tensor.is_require_grad() {
            copy = copy.require_grad();
        }
        Param::from_mapped_value(ParamId::new(), copy, mapper)
    }
}

/// The networks PPO trains: the policy and the value model (one optimizer for both).
#[derive(Module, Debug)]
pub struct PolicyAndValue<B: Backend> {
    pub policy: Transformer<B>,
    pub value: ValueModel<B>,
}

/// A PPO learner for a language model on a text task.
pub struct PpoLm<B: AutodiffBackend, E, T> {
    pub config: PpoLmConfig,
    pub max_completion_length: usize,
    pub nets: PolicyAndValue<B>,
    optim: OptimizerAdaptor<Adam, PolicyAndValue<B>, B>,
    env: E,
    tokenizer: T,
    rng: EnvRng,
    pub completions: usize,
    /// What scores a completion: the task's reward, reward models, or both, weighted.
    rewards: RewardFuncs<B::InnerBackend>,
}

impl<B, E, T> PpoLm<B, E, T>
where
    B: AutodiffBackend,
    E: TextEnv,
    T: Tokenizer,
{
    /// A learner whose policy and value trunk both start from `model`.
    pub fn new(
        config: PpoLmConfig,
        max_completion_length: usize,
        model: Transformer<B>,
        env: E,
        tokenizer: T,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if max_completion_length == 0 {
            return Err(ConfigError(
                "ppo: max_completion_length must be at least 1".into(),
            ));
        }
        let nets = PolicyAndValue {
            value: ValueModel::new(&model),
            policy: model,
        };
        Ok(Self {
            config,
            max_completion_length,
            nets,
            optim: Adam::new().init(),
            env,
            tokenizer,
            rng: EnvRng::seed_from_u64(seed),
            completions: 0,
            rewards: RewardFuncs::default(),
        })
    }

    /// Scores completions with `rewards` (reward models, the task's reward, weighted)
    /// instead of the task's reward alone.
    pub fn with_rewards(mut self, rewards: RewardFuncs<B::InnerBackend>) -> Self {
        self.rewards = rewards;
        self
    }

    /// The policy being trained.
    pub fn policy(&self) -> &Transformer<B> {
        &self.nets.policy
    }

    /// One iteration: completions and rewards, GAE over tokens, epochs of minibatch
    /// updates, metrics.
    pub fn iterate(&mut self) -> Result<Metrics, LmError> {
        let c = self.config.update.clone();
        let pad = self.tokenizer.pad_id();

        // 1. Collect: one completion per prompt, scored by the environment.
        let sampling = SamplingConfig {
            max_new_tokens: self.max_completion_length,
            ..SamplingConfig::default()
        };
        let inference = self.nets.valid();
        let mut rollout = collect_completions(
            &inference.policy,
            &self.env,
            &self.tokenizer,
            self.config.num_prompts,
            1,
            &sampling,
            &mut self.rng,
        )?;
        let reward_means = self.rewards.rescore(&mut rollout, &self.tokenizer)?;
        self.completions += rollout.completions();

        // 2. Advantages by GAE over each completion's tokens (eq. GAE-1, GAE-2).
        let values = inference
            .value
            .values(&rollout.prompts, &rollout.tokens, pad)?;
        let (advantages, returns, values) = token_gae(&rollout, values, &c);

        // 3. Update: epochs of shuffled minibatches of completions.
        let (n, t) = (rollout.completions(), rollout.max_len());
        let device = self.nets.policy.devices()[0].clone();
        let matrix = |rows: &[usize], x: &[f32]| {
            let data: Vec<f32> = rows
                .iter()
                .flat_map(|&r| x[r * t..(r + 1) * t].iter().copied())
                .collect();
            Tensor::<B, 2>::from_data(TensorData::new(data, [rows.len(), t]), &device)
        };
        let old_logp = rollout.padded(&rollout.logp);
        let mut order: Vec<usize> = (0..n).collect();
        let mut stats = UpdateStats::default();
        'epochs: for _ in 0..c.update_epochs {
            order.shuffle(&mut self.rng);
            for mb in order.chunks(n / c.num_minibatches) {
                let pick =
                    |x: &TokenRows| -> TokenRows { mb.iter().map(|&r| x[r].clone()).collect() };
                let (prompts, tokens) = (pick(&rollout.prompts), pick(&rollout.tokens));
                let (logp, mask) =
                    completion_log_probs(&self.nets.policy, &prompts, &tokens, pad, 1.0)?;
                // Pad the minibatch's tokens to the batch's width `t`.
                let (logp, mask) = (pad_cols(logp, t), pad_cols(mask, t));
                let old = matrix(mb, &old_logp);
                let r = ratio(logp.clone(), old.clone());
                record_masked_ratio(&mut stats, &r, &(logp - old), &mask, c.clip_coef);

                // ANCHOR: ppolm_loss
                // eq. (PPO-2), a token mean over the mask.
                let adv = matrix(mb, &advantages);
                let pg_loss = masked_mean(
                    clipped_surrogate(r, adv, c.clip_coef, c.clip_coef),
                    mask.clone(),
                );
                // eq. (PPO-4), the same way.
                let v = pad_cols(self.nets.value.values(&prompts, &tokens, pad)?, t);
                let v_loss = masked_mean(
                    value_loss(v, matrix(mb, &values), matrix(mb, &returns), &c),
                    mask,
                );
                // eq. (PPO-5).
                let loss = pg_loss.clone() + v_loss.clone() * c.vf_coef;
                // ANCHOR_END: ppolm_loss
                let zero = pg_loss.zeros_like();
                stats.record_losses(&pg_loss, &v_loss, &zero);
                let (nets, grad_norm) = gradient_step(
                    self.nets.clone(),
                    loss,
                    &mut self.optim,
                    c.learning_rate,
                    Some(c.max_grad_norm),
                );
                self.nets = nets;
                stats.grad_norm += f64::from(grad_norm);
            }
            if c.target_kl.is_some_and(|k| stats.last_approx_kl > k) {
                stats.stopped_early = true;
                break 'epochs;
            }
        }

        // 4. Metrics (TRL's generation metrics, CleanRL's update metrics).
        let mut m = stats.finish();
        m.remove("entropy");
        let real: Vec<usize> = (0..n * t)
            .filter(|&k| k % t < rollout.tokens[k / t].len())
            .collect();
        let (v_real, r_real): (Vec<f32>, Vec<f32>) =
            real.iter().map(|&k| (values[k], returns[k])).unzip();
        m.insert("explained_variance", explained_variance(&v_real, &r_real));
        let lengths: Vec<usize> = rollout.tokens.iter().map(Vec::len).collect();
        let clipped: Vec<bool> = rollout.finished.iter().map(|f| !f).collect();
        let none = vec![false; n];
        generation_metrics(&rollout.rewards, &none, &lengths, &clipped, &mut m);
        m.remove("frac_reward_zero_std");
        m.insert("completions_seen", self.completions as f64);
        for (name, mean) in &reward_means {
            m.insert(crate::lm::reward::metric_key(name), *mean);
        }
        Ok(m)
    }
}

/// GAE over the tokens of each completion, the reward at its last token, no bootstrap after
/// it (the episode ends there). Returns `[rows * t]` row-major advantages (normalized over
/// real tokens when `norm_adv`), returns and values.
fn token_gae<B: Backend>(
    rollout: &LmRollout,
    values: Tensor<B, 2>,
    c: &PpoUpdate,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, t) = (rollout.completions(), rollout.max_len());
    let values: Vec<f32> = values.into_data().to_vec().expect("f32 values");
    let c_len = values.len() / n.max(1);
    // `gae` takes time-major arrays (step k of copy i at k * copies + i): token j of
    // completion i is step j of copy i.
    let (mut rew, mut val, mut next, mut ends) = (
        vec![0.0; n * t],
        vec![0.0; n * t],
        vec![0.0; n * t],
        vec![false; n * t],
    );
    // ANCHOR: ppolm_token_gae
    for i in 0..n {
        let len = rollout.tokens[i].len();
        for j in 0..len {
            let k = j * n + i;
            val[k] = values[i * c_len + j];
            ends[k] = j + 1 == len;
            if j + 1 == len {
                rew[k] = rollout.rewards[i];
            } else {
                next[k] = values[i * c_len + j + 1];
            }
        }
    }
    let (adv_tm, ret_tm) = gae(&rew, &val, &next, &ends, n, c.gamma, c.gae_lambda);
    // ANCHOR_END: ppolm_token_gae
    // Back to row-major, keeping only real tokens for the normalization.
    let (mut adv, mut ret, mut v) = (vec![0.0; n * t], vec![0.0; n * t], vec![0.0; n * t]);
    let mut real = Vec::new();
    for i in 0..n {
        for j in 0..rollout.tokens[i].len() {
            let (k, r) = (j * n + i, i * t + j);
            adv[r] = adv_tm[k];
            ret[r] = ret_tm[k];
            v[r] = val[k];
            real.push(r);
        }
    }
    if c.norm_adv {
        let mut a: Vec<f32> = real.iter().map(|&r| adv[r]).collect();
        normalize(&mut a, 1e-8);
        for (&r, x) in real.iter().zip(a) {
            adv[r] = x;
        }
    }
    (adv, ret, v)
}

/// `x` `[rows, cols]` padded with zero columns to `[rows, t]`.
fn pad_cols<B: Backend>(x: Tensor<B, 2>, t: usize) -> Tensor<B, 2> {
    let [rows, cols] = x.dims();
    if cols == t {
        return x;
    }
    let zeros = Tensor::zeros([rows, t - cols], &x.device());
    Tensor::cat(vec![x, zeros], 1)
}

/// `approx_kl` and `clipfrac` over the real tokens only.
fn record_masked_ratio<B: AutodiffBackend>(
    stats: &mut UpdateStats,
    ratio: &Tensor<B, 2>,
    logratio: &Tensor<B, 2>,
    mask: &Tensor<B, 2>,
    clip: f32,
) {
    let data =
        |x: &Tensor<B, 2>| -> Vec<f32> { x.clone().inner().into_data().to_vec().expect("f32") };
    let (r, lr, m) = (data(ratio), data(logratio), data(mask));
    let keep = |x: Vec<f32>| -> Vec<f32> {
        x.into_iter()
            .zip(&m)
            .filter(|(_, m)| **m > 0.0)
            .map(|(x, _)| x)
            .collect()
    };
    stats.record_ratio_values(&keep(r), &keep(lr), clip);
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = burn::backend::NdArray;

    fn rollout(lengths: &[usize], rewards: &[f32]) -> LmRollout {
        LmRollout {
            prompts: vec![vec![1]; lengths.len()],
            tokens: lengths.iter().map(|&n| vec![5; n]).collect(),
            logp: lengths.iter().map(|&n| vec![0.0; n]).collect(),
            finished: vec![true; lengths.len()],
            rewards: rewards.to_vec(),
            prompt_rows: vec![None; lengths.len()],
        }
    }

    #[test]
    fn the_value_loss_trains_the_value_model_and_leaves_the_policy_alone() {
        type A = crate::backend::Cpu;
        let device = Default::default();
        let policy = crate::lm::model::TransformerConfig::new(8)
            .with_d_model(16)
            .with_n_layers(1)
            .with_n_heads(2)
            .with_d_ff(32)
            .with_max_seq_len(8)
            .init::<A>(&device);
        let nets = PolicyAndValue {
            value: ValueModel::new(&policy),
            policy,
        };
        let flat = |m: &Transformer<A>| crate::core::flat::flat_params(&m.valid());
        let (policy_before, trunk_before) = (flat(&nets.policy), flat(&nets.value.trunk));
        assert!(
            policy_before == trunk_before,
            "the value model starts as a copy: {:?} vs {:?}",
            &policy_before[..4],
            &trunk_before[..4]
        );
        let mut optim = Adam::new().init();
        let mut nets = nets;
        for _ in 0..3 {
            let v = nets.value.values(&[vec![1, 3]], &[vec![4, 5]], 0).unwrap();
            let loss = (v - 1.0).powi_scalar(2).mean();
            nets = gradient_step(nets, loss, &mut optim, 1e-2, None).0;
        }
        assert!(
            flat(&nets.policy) == policy_before,
            "the policy must not move"
        );
        assert!(
            flat(&nets.value.trunk) != trunk_before,
            "the value trunk must learn"
        );
    }

    #[test]
    fn token_gae_spreads_the_final_reward_back_and_leaves_padding_at_zero() {
        // Two completions of 3 and 1 tokens; t = 3.
        let r = rollout(&[3, 1], &[1.0, -2.0]);
        let c = PpoUpdate {
            gamma: 1.0,
            gae_lambda: 1.0,
            norm_adv: false,
            ..PpoUpdate::default()
        };
        // V = 0 everywhere: every token's advantage and return is its completion's reward.
        let zeros = Tensor::<B, 2>::zeros([2, 3], &Default::default());
        let (adv, ret, v) = token_gae(&r, zeros, &c);
        assert_eq!(adv, vec![1.0, 1.0, 1.0, -2.0, 0.0, 0.0]);
        assert_eq!(ret, adv);
        assert_eq!(v, vec![0.0; 6]);

        // With values and gamma = 1, lambda = 0: A_j = V_{j+1} - V_j, and r - V_last at the end.
        let values = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.1f32, 0.4, 0.7, 0.5, 9.0, 9.0], [2, 3]),
            &Default::default(),
        );
        let c = PpoUpdate {
            gae_lambda: 0.0,
            ..c
        };
        let (adv, ret, v) = token_gae(&r, values, &c);
        let want = [0.3, 0.3, 0.3, -2.5, 0.0, 0.0];
        for (a, w) in adv.iter().zip(want) {
            assert!((a - w).abs() < 1e-6, "{adv:?}");
        }
        // Returns are advantages plus values; padding (the 9.0s) is ignored.
        assert!((ret[2] - 1.0).abs() < 1e-6 && (ret[3] + 2.0).abs() < 1e-6);
        assert_eq!(v[4..], [0.0, 0.0]);
    }
}

/// What PPO on a language model keeps besides networks and the optimizer (`state.json`).
#[derive(serde::Serialize, serde::Deserialize)]
struct PpoLmState<E> {
    env: E,
    rng: EnvRng,
    completions: usize,
}

// How `policy-lab lm ppo` reads the settings and makes the learner (registered in
// `src/run/lm/mod.rs`).
impl crate::lm::stage::Stage for PpoLmConfig {
    const ABOUT: &'static str =
        "PPO with a value head from a checkpoint (the comparison for GRPO).";
}

impl super::RlStage for PpoLmConfig {
    fn learner<B: AutodiffBackend>(&self, start: FromInit<B>) -> anyhow::Result<LmLearner<B>> {
        let one_device = start.devices.len() == 1 && start.nodes.is_none();
        anyhow::ensure!(
            one_device,
            "rl: data parallelism is implemented for GRPO only"
        );
        let (ppo, rewards) = start.one(self.clone(), PpoLm::new)?;
        Ok(Box::new(ppo.with_rewards(rewards)))
    }
}

// The run layer's view of PPO on a language model: iterate, and the checkpoint (policy and
// value head, Adam's moments, the prompt source and the sampling generator).
impl<B, E, T> PpoLm<B, E, T>
where
    B: AutodiffBackend,
    E: TextEnv + serde::Serialize + serde::de::DeserializeOwned,
    T: Tokenizer,
{
    /// Writes the learner's whole state into the folder `dir` (its `Learner::save`).
    pub fn save_state(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        use crate::core::checkpoint::*;
        save_module(&self.nets, &dir.join("networks"))?;
        save_optim(&self.optim, &dir.join("optim"))?;
        let state = PpoLmState {
            env: self.env.clone(),
            rng: self.rng.clone(),
            completions: self.completions,
        };
        save_json(&state, &dir.join("state.json"))
    }
    /// Restores what [`Self::save_state`] wrote into `dir` (its `Learner::load`).
    pub fn load_state(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
        use crate::core::checkpoint::*;
        let device = self.nets.devices()[0].clone();
        self.nets = load_module(self.nets.clone(), &dir.join("networks"), &device)?;
        self.optim = load_optim(self.optim.clone(), &dir.join("optim"), &device)?;
        let s: PpoLmState<E> = load_json(&dir.join("state.json"))?;
        (self.env, self.rng, self.completions) = (s.env, s.rng, s.completions);
        Ok(())
    }
}

super::lm_learner!(PpoLm, policy: nets.policy, weights: nets);
