//! Wrappers: environments around environments (Gymnasium's `gymnasium.wrappers`).
//!
//! | wrapper | what it does |
//! |---|---|
//! | [`TimeLimit`] | truncates the episode after `max_episode_steps` steps |
//! | [`RecordEpisodeStatistics`] | puts `{r, l, t}` in `info.episode` when an episode ends |
//! | [`NormalizeObservation`] | standardizes observations with a running mean and variance |
//! | [`NormalizeReward`] | scales rewards by the running std of the discounted return |
//! | [`OneHotObservation`] | turns a `Discrete` observation into a one-hot vector |
//!
//! Each wrapper owns the environment it wraps; `inner()` / `inner_mut()` reach it.

use std::collections::VecDeque;
use std::time::Instant;

use crate::env::{Act, Env, Info, Obs, Phase, Step};
use crate::error::{EnvError, Result};
use crate::space::{BoxSpace, Discrete, FloatObs, Space};

macro_rules! inner_access {
    () => {
        /// The wrapped environment.
        pub fn inner(&self) -> &E {
            &self.env
        }
        /// The wrapped environment, mutably.
        pub fn inner_mut(&mut self) -> &mut E {
            &mut self.env
        }
        /// Unwraps one layer.
        pub fn into_inner(self) -> E {
            self.env
        }
    };
}

/// Truncates episodes after `max_episode_steps` steps (`truncated = true`; `terminated`
/// keeps the inner environment's value).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TimeLimit<E> {
    env: E,
    max_episode_steps: usize,
    elapsed: usize,
    phase: Phase,
}

impl<E: Env> TimeLimit<E> {
    pub fn new(env: E, max_episode_steps: usize) -> Result<Self> {
        if max_episode_steps == 0 {
            return Err(EnvError::config("max_episode_steps must be at least 1"));
        }
        Ok(Self {
            env,
            max_episode_steps,
            elapsed: 0,
            phase: Phase::NotStarted,
        })
    }
    pub fn max_episode_steps(&self) -> usize {
        self.max_episode_steps
    }
    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed
    }
    inner_access!();
}

impl<E: Env> Env for TimeLimit<E> {
    type ObsSpace = E::ObsSpace;
    type ActSpace = E::ActSpace;
    fn observation_space(&self) -> &E::ObsSpace {
        self.env.observation_space()
    }
    fn action_space(&self) -> &E::ActSpace {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> (Obs<E>, Info) {
        self.elapsed = 0;
        self.phase = Phase::Running;
        self.env.reset(seed)
    }
    // ANCHOR: env_time_limit_step
    fn step(&mut self, action: Act<E>) -> Result<Step<Obs<E>>> {
        // The inner env checks the action first, so a bad action gets the action error.
        if self.phase == Phase::Done {
            crate::env::check_action(self.env.action_space(), &action)?;
        }
        self.phase.check_running()?;
        let mut step = self.env.step(action)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_episode_steps {
            step.truncated = true;
        }
        self.phase = Phase::after(step.done());
        Ok(step)
    }
    // ANCHOR_END: env_time_limit_step
    fn render_ansi(&self) -> Option<String> {
        self.env.render_ansi()
    }
}

/// Records each episode's return, length and wall time; at the end of an episode they are in
/// `info.episode`, and the last `buffer_length` episodes are kept in the queues.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RecordEpisodeStatistics<E> {
    env: E,
    episode_return: f64,
    episode_length: usize,
    #[serde(skip, default = "Instant::now")]
    episode_start: Instant,
    /// How many episodes have finished.
    pub episode_count: usize,
    pub return_queue: VecDeque<f64>,
    pub length_queue: VecDeque<usize>,
    pub time_queue: VecDeque<f64>,
    buffer_length: usize,
}

impl<E: Env> RecordEpisodeStatistics<E> {
    /// Keeps the statistics of the last 100 episodes, as Gymnasium does.
    pub fn new(env: E) -> Self {
        Self::with_buffer_length(env, 100)
    }
    pub fn with_buffer_length(env: E, buffer_length: usize) -> Self {
        Self {
            env,
            episode_return: 0.0,
            episode_length: 0,
            episode_start: Instant::now(),
            episode_count: 0,
            return_queue: VecDeque::with_capacity(buffer_length),
            length_queue: VecDeque::with_capacity(buffer_length),
            time_queue: VecDeque::with_capacity(buffer_length),
            buffer_length,
        }
    }
    inner_access!();
}

fn push_bounded<T>(queue: &mut VecDeque<T>, value: T, cap: usize) {
    if cap == 0 {
        return;
    }
    if queue.len() == cap {
        queue.pop_front();
    }
    queue.push_back(value);
}

impl<E: Env> Env for RecordEpisodeStatistics<E> {
    type ObsSpace = E::ObsSpace;
    type ActSpace = E::ActSpace;
    fn observation_space(&self) -> &E::ObsSpace {
        self.env.observation_space()
    }
    fn action_space(&self) -> &E::ActSpace {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> (Obs<E>, Info) {
        self.episode_return = 0.0;
        self.episode_length = 0;
        self.episode_start = Instant::now();
        self.env.reset(seed)
    }
    // ANCHOR: env_episode_stats_step
    fn step(&mut self, action: Act<E>) -> Result<Step<Obs<E>>> {
        let mut step = self.env.step(action)?;
        self.episode_return += step.reward;
        self.episode_length += 1;
        if step.done() {
            let t = self.episode_start.elapsed().as_secs_f64();
            let stats = crate::EpisodeStats {
                r: self.episode_return,
                l: self.episode_length,
                t,
            };
            step.info.episode = Some(stats);
            self.episode_count += 1;
            push_bounded(&mut self.return_queue, stats.r, self.buffer_length);
            push_bounded(&mut self.length_queue, stats.l, self.buffer_length);
            push_bounded(&mut self.time_queue, stats.t, self.buffer_length);
        }
        Ok(step)
    }
    // ANCHOR_END: env_episode_stats_step
    fn render_ansi(&self) -> Option<String> {
        self.env.render_ansi()
    }
}

/// A running mean and variance (Chan et al.'s parallel algorithm), as Gymnasium's
/// `RunningMeanStd`: it starts at mean 0, variance 1 and a pseudo-count of `1e-4`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunningMeanStd {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    pub count: f64,
}

impl RunningMeanStd {
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
        }
    }
    /// Adds one sample.
    pub fn update(&mut self, x: &[f64]) {
        let total = self.count + 1.0;
        for ((mean, var), x) in self.mean.iter_mut().zip(self.var.iter_mut()).zip(x) {
            let delta = x - *mean;
            let m2 = *var * self.count + delta * delta * self.count / total;
            *mean += delta / total;
            *var = m2 / total;
        }
        self.count = total;
    }
}

/// Standardizes each observation coordinate: `(obs - mean) / sqrt(var + epsilon)` with the
/// running statistics of every observation seen so far (updated on reset and step until
/// `update_running_mean` is turned off, e.g. for evaluation).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NormalizeObservation<E: Env> {
    env: E,
    pub rms: RunningMeanStd,
    pub epsilon: f64,
    pub update_running_mean: bool,
    space: E::ObsSpace,
    scratch: Vec<f64>,
}

impl<E, O> NormalizeObservation<E>
where
    E: Env<ObsSpace = BoxSpace<O>>,
    O: FloatObs,
{
    /// Gymnasium's default `epsilon = 1e-8`.
    pub fn new(env: E) -> Self {
        Self::with_epsilon(env, 1e-8)
    }
    pub fn with_epsilon(env: E, epsilon: f64) -> Self {
        let inner = env.observation_space();
        let len = inner.len();
        let space = BoxSpace::new(
            vec![f32::NEG_INFINITY; len],
            vec![f32::INFINITY; len],
            inner.shape.clone(),
        )
        .expect("same shape as the inner space");
        Self {
            env,
            rms: RunningMeanStd::new(len),
            epsilon,
            update_running_mean: true,
            space,
            scratch: vec![0.0; len],
        }
    }
    fn normalize(&mut self, mut obs: O) -> O {
        for (s, v) in self.scratch.iter_mut().zip(obs.as_ref()) {
            *s = f64::from(*v);
        }
        if self.update_running_mean {
            self.rms.update(&self.scratch);
        }
        for (i, v) in obs.as_mut().iter_mut().enumerate() {
            *v = ((self.scratch[i] - self.rms.mean[i]) / (self.rms.var[i] + self.epsilon).sqrt())
                as f32;
        }
        obs
    }
    inner_access!();
}

impl<E, O> Env for NormalizeObservation<E>
where
    E: Env<ObsSpace = BoxSpace<O>>,
    O: FloatObs,
{
    type ObsSpace = BoxSpace<O>;
    type ActSpace = E::ActSpace;
    fn observation_space(&self) -> &BoxSpace<O> {
        &self.space
    }
    fn action_space(&self) -> &E::ActSpace {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> (O, Info) {
        let (obs, info) = self.env.reset(seed);
        (self.normalize(obs), info)
    }
    fn step(&mut self, action: Act<E>) -> Result<Step<O>> {
        let step = self.env.step(action)?;
        let obs = self.normalize(step.obs);
        Ok(Step { obs, ..step })
    }
    fn render_ansi(&self) -> Option<String> {
        self.env.render_ansi()
    }
}

/// Scales rewards so that the discounted return has roughly unit variance:
/// `reward / sqrt(var(G) + epsilon)`, where `G <- gamma * G * (1 - terminated) + reward` and
/// `var(G)` is its running variance. As in Gymnasium, the mean is not subtracted and `G`
/// carries over a truncation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NormalizeReward<E> {
    env: E,
    pub rms: RunningMeanStd,
    pub gamma: f64,
    pub epsilon: f64,
    pub update_running_mean: bool,
    discounted_return: f64,
}

impl<E: Env> NormalizeReward<E> {
    /// Gymnasium's defaults: `gamma = 0.99`, `epsilon = 1e-8`.
    pub fn new(env: E) -> Self {
        Self::with_params(env, 0.99, 1e-8).expect("default parameters are valid")
    }
    pub fn with_params(env: E, gamma: f64, epsilon: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&gamma) {
            return Err(EnvError::config(format!(
                "gamma must be in [0, 1], got {gamma}"
            )));
        }
        Ok(Self {
            env,
            rms: RunningMeanStd::new(1),
            gamma,
            epsilon,
            update_running_mean: true,
            discounted_return: 0.0,
        })
    }
    inner_access!();
}

impl<E: Env> Env for NormalizeReward<E> {
    type ObsSpace = E::ObsSpace;
    type ActSpace = E::ActSpace;
    fn observation_space(&self) -> &E::ObsSpace {
        self.env.observation_space()
    }
    fn action_space(&self) -> &E::ActSpace {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> (Obs<E>, Info) {
        self.env.reset(seed)
    }
    fn step(&mut self, action: Act<E>) -> Result<Step<Obs<E>>> {
        let mut step = self.env.step(action)?;
        let keep = if step.terminated { 0.0 } else { 1.0 };
        self.discounted_return = self.discounted_return * self.gamma * keep + step.reward;
        if self.update_running_mean {
            self.rms.update(&[self.discounted_return]);
        }
        step.reward /= (self.rms.var[0] + self.epsilon).sqrt();
        Ok(step)
    }
    fn render_ansi(&self) -> Option<String> {
        self.env.render_ansi()
    }
}

/// Turns a `Discrete(n)` observation into a one-hot `f32` vector of length `n` (what
/// Gymnasium's `FlattenObservation` does to a discrete space).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OneHotObservation<E> {
    env: E,
    space: BoxSpace<Vec<f32>>,
}

impl<E: Env<ObsSpace = Discrete>> OneHotObservation<E> {
    pub fn new(env: E) -> Self {
        let space = env.observation_space().flatten_space();
        Self { env, space }
    }
    inner_access!();
}

impl<E: Env<ObsSpace = Discrete>> Env for OneHotObservation<E> {
    type ObsSpace = BoxSpace<Vec<f32>>;
    type ActSpace = E::ActSpace;
    fn observation_space(&self) -> &BoxSpace<Vec<f32>> {
        &self.space
    }
    fn action_space(&self) -> &E::ActSpace {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        let (obs, info) = self.env.reset(seed);
        (self.env.observation_space().flatten(&obs), info)
    }
    fn step(&mut self, action: Act<E>) -> Result<Step<Vec<f32>>> {
        let step = self.env.step(action)?;
        let obs = self.env.observation_space().flatten(&step.obs);
        Ok(Step {
            obs,
            reward: step.reward,
            terminated: step.terminated,
            truncated: step.truncated,
            info: step.info,
        })
    }
    fn render_ansi(&self) -> Option<String> {
        self.env.render_ansi()
    }
}
