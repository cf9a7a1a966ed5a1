//! Vector environments: `N` copies of an environment stepped together, their observations
//! flattened into one `[N, obs_dim]` array for a neural network.
//!
//! # Autoreset mode: same step
//!
//! When copy `i` ends an episode (terminated or truncated), [`SyncVectorEnv::step`] resets it
//! at once, in the same call (Gymnasium's `AutoresetMode.SAME_STEP`, also what
//! Stable-Baselines3 does):
//!
//! * `obs[i]` is already the first observation of the next episode;
//! * `final_obs[i]` holds the last observation of the finished episode, and `infos[i]` the
//!   info of its last step (with `episode` statistics under `RecordEpisodeStatistics`);
//! * `rewards[i]`, `terminated[i]`, `truncated[i]` belong to the finished episode's last step.
//!
//! Every call is therefore a real transition of every copy; there is no dummy step to mask
//! (Gymnasium's default NEXT_STEP mode has one). A learner bootstraps a truncated episode from
//! `final_obs[i]`, never from `obs[i]`.
//!
//! # Seeding
//!
//! `reset(Some(seed))` seeds copy `i` with `seed + i`, as Gymnasium does; later autoresets
//! continue each copy's own random stream, so a seeded run is reproducible.

use ndarray::Array2;

use crate::env::{Act, Env, Info};
use crate::error::{EnvError, Result};
use crate::space::Space;

/// The outcome of one vector step (see the module docs for the autoreset rules).
#[derive(Clone, Debug)]
pub struct VecStep {
    /// `[num_envs, obs_dim]`: the observation each copy shows now.
    pub obs: Array2<f32>,
    pub rewards: Vec<f64>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    /// `[num_envs, obs_dim]`: row `i` is the last observation of the episode copy `i` just
    /// finished; rows of copies that did not finish are left as they were.
    pub final_obs: Array2<f32>,
    pub infos: Vec<Info>,
}

impl VecStep {
    /// Whether copy `i` finished an episode in this step.
    pub fn done(&self, i: usize) -> bool {
        self.terminated[i] || self.truncated[i]
    }
}

/// `N` copies of an environment, stepped one after another in this thread.
///
/// It serializes (serde) as its copies and whether they were reset, so that a training run
/// can be saved and resumed exactly; the scratch buffer for the last step is rebuilt.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(
    try_from = "Snapshot<E>",
    into = "Snapshot<E>",
    bound = "E: Clone + serde::Serialize + serde::de::DeserializeOwned"
)]
pub struct SyncVectorEnv<E: Env> {
    envs: Vec<E>,
    out: VecStep,
    started: bool,
}

/// What a [`SyncVectorEnv`] saves of itself.
#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot<E> {
    envs: Vec<E>,
    started: bool,
}

impl<E: Env> From<SyncVectorEnv<E>> for Snapshot<E> {
    fn from(v: SyncVectorEnv<E>) -> Self {
        Snapshot {
            envs: v.envs,
            started: v.started,
        }
    }
}

impl<E: Env> TryFrom<Snapshot<E>> for SyncVectorEnv<E> {
    type Error = EnvError;
    fn try_from(s: Snapshot<E>) -> Result<Self> {
        let mut envs = s.envs.into_iter();
        let mut v = Self::new(envs.len(), |_| envs.next().expect("one env per copy"))?;
        v.started = s.started;
        Ok(v)
    }
}

impl<E: Env> SyncVectorEnv<E> {
    /// A vector env of `num_envs` copies made by `make(i)`.
    pub fn new(num_envs: usize, make: impl FnMut(usize) -> E) -> Result<Self> {
        if num_envs == 0 {
            return Err(EnvError::config("a vector env needs at least one copy"));
        }
        let envs: Vec<E> = (0..num_envs).map(make).collect();
        let dim = envs[0].observation_space().flat_dim();
        let out = VecStep {
            obs: Array2::zeros((num_envs, dim)),
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            final_obs: Array2::zeros((num_envs, dim)),
            infos: vec![Info::default(); num_envs],
        };
        Ok(Self {
            envs,
            out,
            started: false,
        })
    }

    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }
    /// The observation space of one copy.
    pub fn single_observation_space(&self) -> &E::ObsSpace {
        self.envs[0].observation_space()
    }
    /// The action space of one copy.
    pub fn single_action_space(&self) -> &E::ActSpace {
        self.envs[0].action_space()
    }
    /// The copies, for inspection.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Resets every copy (copy `i` with `seed + i`); returns the `[N, obs_dim]` observations
    /// and each copy's reset info.
    pub fn reset(&mut self, seed: Option<u64>) -> (&Array2<f32>, Vec<Info>) {
        let mut infos = Vec::with_capacity(self.envs.len());
        for (i, env) in self.envs.iter_mut().enumerate() {
            let (obs, info) = env.reset(seed.map(|s| s.wrapping_add(i as u64)));
            let row = self
                .out
                .obs
                .row_mut(i)
                .into_slice()
                .expect("rows are contiguous");
            env.observation_space().flatten_into(&obs, row);
            infos.push(info);
        }
        self.started = true;
        (&self.out.obs, infos)
    }

    // ANCHOR: env_vector_step
    /// Steps copy `i` with `actions[i]`, resetting the copies whose episode ended.
    pub fn step(&mut self, actions: &[Act<E>]) -> Result<&VecStep> {
        if actions.len() != self.envs.len() {
            return Err(EnvError::InvalidAction {
                action: format!("a batch of {} actions", actions.len()),
                space: format!("one action for each of the {} copies", self.envs.len()),
            });
        }
        if !self.started {
            return Err(EnvError::BEFORE_RESET);
        }
        // Check every action first so that a bad one leaves no copy half-stepped.
        for (env, a) in self.envs.iter().zip(actions) {
            crate::env::check_action(env.action_space(), a)?;
        }
        let out = &mut self.out;
        for (i, (env, action)) in self.envs.iter_mut().zip(actions).enumerate() {
            let step = env.step(action.clone())?;
            let row = if step.done() {
                out.final_obs.row_mut(i)
            } else {
                out.obs.row_mut(i)
            };
            env.observation_space()
                .flatten_into(&step.obs, row.into_slice().expect("rows are contiguous"));
            if step.done() {
                let (obs, _) = env.reset(None);
                let row = out
                    .obs
                    .row_mut(i)
                    .into_slice()
                    .expect("rows are contiguous");
                env.observation_space().flatten_into(&obs, row);
            }
            out.rewards[i] = step.reward;
            out.terminated[i] = step.terminated;
            out.truncated[i] = step.truncated;
            out.infos[i] = step.info;
        }
        Ok(&self.out)
    }
    // ANCHOR_END: env_vector_step
}
