//! Collecting experience: run the policy in a vector env for a number of steps.
//!
//! The first stage of the one data flow (`env → rollout → batch → advantages → objective →
//! update`). The policy samples actions and records `log pi_old(a|s)`; the environment's
//! `terminated` and `truncated` flags are kept apart, so that the critic's bootstrap value
//! is 0 after a termination and `V(final observation)` after a truncation (the vector env
//! resets in the same step: see `policy_lab::envs::vector`).

use std::collections::VecDeque;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use policy_lab_envs::{AnyEnv, EnvRng, RecordEpisodeStatistics, SyncVectorEnv};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::core::nn::{categorical, Mlp};

/// The vector env every algorithm collects from.
pub type VecEnv = SyncVectorEnv<RecordEpisodeStatistics<AnyEnv>>;

/// One rollout of `steps` steps of `num_envs` copies, time-major (`k = t * num_envs + i`).
#[derive(Clone, Debug, Default)]
pub struct Rollout {
    pub num_envs: usize,
    pub obs_dim: usize,
    /// `[steps * num_envs, obs_dim]`, flattened.
    pub obs: Vec<f32>,
    pub actions: Vec<usize>,
    /// `log pi_old(a|s)` of the taken actions.
    pub logp: Vec<f32>,
    pub rewards: Vec<f32>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    /// The observation after the last step, `[num_envs, obs_dim]`.
    pub last_obs: Vec<f32>,
    /// For each truncated step `k`: `(k, final observation)`, to bootstrap from.
    pub truncated_obs: Vec<(usize, Vec<f32>)>,
    /// Returns and lengths of the episodes that finished during the rollout.
    pub episode_returns: Vec<f64>,
    pub episode_lengths: Vec<usize>,
}

impl Rollout {
    /// How many transitions the batch holds (`num_envs * num_steps`).
    pub fn transitions(&self) -> usize {
        self.actions.len()
    }
    /// Whether step `k` ended an episode (either way).
    pub fn episode_ends(&self) -> Vec<bool> {
        self.terminated
            .iter()
            .zip(&self.truncated)
            .map(|(a, b)| *a || *b)
            .collect()
    }

    // ANCHOR: ac_next_values
    /// The bootstrap value after every step, from the critic's values: `0` after a
    /// termination, `V(final obs)` after a truncation, `V(s_{t+1})` otherwise (eq. GAE-1).
    pub fn next_values<B: Backend>(&self, values: &[f32], critic: &Mlp<B>) -> Vec<f32> {
        let n = self.num_envs;
        let last = critic_values(critic, &self.last_obs, self.obs_dim);
        let mut next: Vec<f32> = (0..self.transitions())
            .map(|k| {
                if k + n < self.transitions() {
                    values[k + n]
                } else {
                    last[k % n]
                }
            })
            .collect();
        for (k, t) in self.terminated.iter().enumerate() {
            if *t {
                next[k] = 0.0;
            }
        }
        if !self.truncated_obs.is_empty() {
            let flat: Vec<f32> = self
                .truncated_obs
                .iter()
                .flat_map(|(_, o)| o.iter().copied())
                .collect();
            let v = critic_values(critic, &flat, self.obs_dim);
            for ((k, _), v) in self.truncated_obs.iter().zip(v) {
                if !self.terminated[*k] {
                    next[*k] = v;
                }
            }
        }
        next
    }
    // ANCHOR_END: ac_next_values
}

/// A `[rows, dim]` tensor from a flat slice.
pub fn tensor2<B: Backend>(data: &[f32], dim: usize, device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(data.to_vec(), [data.len() / dim, dim]),
        device,
    )
}

/// The critic's values of a batch of flat observations.
pub fn critic_values<B: Backend>(critic: &Mlp<B>, obs: &[f32], obs_dim: usize) -> Vec<f32> {
    if obs.is_empty() {
        return Vec::new();
    }
    critic
        .forward(tensor2(obs, obs_dim, &critic.device()))
        .into_data()
        .to_vec()
        .expect("f32 values")
}

/// The actor's log-probabilities of every action for a batch of flat observations,
/// `[rows * actions]`, flattened.
pub fn actor_log_probs<B: Backend>(actor: &Mlp<B>, obs: &[f32], obs_dim: usize) -> Vec<f32> {
    categorical::log_probs(actor.forward(tensor2(obs, obs_dim, &actor.device())))
        .into_data()
        .to_vec()
        .expect("f32 log-probs")
}

/// How many finished episodes [`Collector::recent_returns`] keeps.
pub const RECENT_EPISODES: usize = 100;

/// The environments an on-policy learner collects from, where each copy stands, the random
/// numbers actions are sampled with, and the step count: everything of a run that is not a
/// network. It serializes, so that a run can be saved and resumed exactly.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Collector {
    pub venv: VecEnv,
    /// The observation every copy shows now, `[num_envs, obs_dim]`, flattened.
    obs: Vec<f32>,
    rng: EnvRng,
    /// Environment steps taken so far.
    pub global_step: usize,
    /// The returns of the last 100 finished episodes, oldest first (SB3's `ep_info_buffer`).
    pub recent_returns: VecDeque<f64>,
}

impl Collector {
    /// Resets `venv` with `seed` (copy `i` with `seed + i`) and seeds the action sampler.
    pub fn new(mut venv: VecEnv, seed: u64) -> Self {
        let (obs, _) = venv.reset(Some(seed));
        let obs = obs.as_slice().expect("contiguous observations").to_vec();
        Self {
            venv,
            obs,
            rng: EnvRng::seed_from_u64(seed),
            global_step: 0,
            recent_returns: VecDeque::with_capacity(RECENT_EPISODES),
        }
    }
    pub fn num_envs(&self) -> usize {
        self.venv.num_envs()
    }
    pub fn obs_dim(&self) -> usize {
        self.obs.len() / self.num_envs()
    }
    pub fn num_actions(&self) -> usize {
        self.venv.single_action_space().n
    }
    /// The random numbers for the update (minibatch shuffling), drawn from the same stream.
    pub fn rng(&mut self) -> &mut EnvRng {
        &mut self.rng
    }

    /// Runs `actor` (a module on an inference backend) for `steps` steps in every copy,
    /// sampling actions and recording `log pi_old(a|s)`.
    pub fn collect<B: Backend>(
        &mut self,
        actor: &Mlp<B>,
        steps: usize,
    ) -> policy_lab_envs::Result<Rollout> {
        let n = self.num_envs();
        let dim = self.obs_dim();
        let num_actions = self.num_actions();
        let mut r = Rollout {
            num_envs: n,
            obs_dim: dim,
            ..Default::default()
        };
        for t in 0..steps {
            let log_probs = actor_log_probs(actor, &self.obs, dim);
            let (actions, logp) = categorical::sample(&log_probs, num_actions, &mut self.rng);
            r.obs.extend_from_slice(&self.obs);
            // ANCHOR: ac_collect_step
            let out = self.venv.step(&actions)?;
            for i in 0..n {
                r.rewards.push(out.rewards[i] as f32);
                r.terminated.push(out.terminated[i]);
                r.truncated.push(out.truncated[i]);
                if out.truncated[i] {
                    r.truncated_obs
                        .push((t * n + i, out.final_obs.row(i).to_vec()));
                }
                if let Some(ep) = out.infos[i].episode {
                    r.episode_returns.push(ep.r);
                    r.episode_lengths.push(ep.l);
                }
            }
            // ANCHOR_END: ac_collect_step
            self.obs
                .copy_from_slice(out.obs.as_slice().expect("contiguous observations"));
            r.actions.extend(actions);
            r.logp.extend(logp);
        }
        r.last_obs = self.obs.clone();
        self.global_step += r.transitions();
        for ret in &r.episode_returns {
            if self.recent_returns.len() == RECENT_EPISODES {
                self.recent_returns.pop_front();
            }
            self.recent_returns.push_back(*ret);
        }
        Ok(r)
    }
}

/// The entries of `v` at `idx`.
pub fn pick<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&k| v[k]).collect()
}

/// A `[len]` tensor.
pub fn tensor1<B: Backend>(v: Vec<f32>, device: &B::Device) -> Tensor<B, 1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// The observations (`[idx.len(), obs_dim]`) and actions (`[idx.len()]`) of the rollout
/// steps `idx`, as tensors.
pub fn obs_and_actions<B: Backend>(
    r: &Rollout,
    idx: &[usize],
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 1, Int>) {
    let dim = r.obs_dim;
    let obs: Vec<f32> = idx
        .iter()
        .flat_map(|&k| r.obs[k * dim..(k + 1) * dim].iter().copied())
        .collect();
    let actions: Vec<i64> = idx.iter().map(|&k| r.actions[k] as i64).collect();
    (
        Tensor::from_data(TensorData::new(obs, [idx.len(), dim]), device),
        Tensor::from_data(TensorData::new(actions, [idx.len()]), device),
    )
}

/// Adds `episodic_return` and `episodic_length` (means over the episodes that finished in
/// the rollout) to `m`.
pub fn episode_metrics(r: &Rollout, m: &mut crate::Metrics) {
    if !r.episode_returns.is_empty() {
        let n = r.episode_returns.len() as f64;
        m.insert("episodic_return", r.episode_returns.iter().sum::<f64>() / n);
        m.insert(
            "episodic_length",
            r.episode_lengths.iter().sum::<usize>() as f64 / n,
        );
    }
}

/// `num_envs` copies of the environment `id` (see `policy_lab::envs::make`), each recording
/// its episode statistics.
pub fn make_vec_env(id: &str, num_envs: usize) -> policy_lab_envs::Result<VecEnv> {
    let (env, _) = policy_lab_envs::make(id)?;
    SyncVectorEnv::new(num_envs, |_| RecordEpisodeStatistics::new(env.clone()))
}
