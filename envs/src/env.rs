//! The environment interface, with Gymnasium's semantics.
//!
//! ```text
//! let (obs, info) = env.reset(Some(seed));          // start an episode
//! let step = env.step(action)?;                       // one transition
//! step.obs, step.reward, step.terminated, step.truncated, step.info
//! ```
//!
//! * `terminated`: the episode reached a terminal state of the MDP (the goal, a hole, the pole
//!   fell). The value of what follows is zero.
//! * `truncated`: the episode was cut from outside (a time limit). The state is not terminal;
//!   a learner should bootstrap from the value of `obs`.
//!
//! After either flag is set, the next call must be `reset`; `step` returns
//! [`EnvError::NeedsReset`](crate::EnvError::NeedsReset) until then.
//!
//! Seeding follows Gymnasium: `reset(Some(seed))` re-seeds the environment's random number
//! generator, so the same seed and the same actions give the same episode, bit for bit;
//! `reset(None)` keeps drawing from the current generator (seeded from the operating system
//! if the environment was never seeded).

use rand::SeedableRng;

use crate::error::Result;
use crate::space::Space;

/// The random number generator every environment uses: fast, small and seedable.
pub type EnvRng = rand::rngs::Xoshiro256PlusPlus;

/// A generator seeded from `seed`, or from the operating system when `seed` is `None`.
pub fn seeded_rng(seed: Option<u64>) -> EnvRng {
    match seed {
        Some(s) => EnvRng::seed_from_u64(s),
        None => rand::make_rng(),
    }
}

/// Statistics of a finished episode (Gymnasium's `info["episode"] = {r, l, t}`), added by
/// [`RecordEpisodeStatistics`](crate::wrappers::RecordEpisodeStatistics).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpisodeStats {
    /// The undiscounted return: the sum of the episode's rewards.
    pub r: f64,
    /// The episode length in steps.
    pub l: usize,
    /// Seconds of wall time since the episode started.
    pub t: f64,
}

/// Extra information about a step (Gymnasium's `info` dict).
///
/// Numbers under string keys (`info.get("regret")`), plus the episode statistics that
/// [`RecordEpisodeStatistics`](crate::wrappers::RecordEpisodeStatistics) adds at the end of an
/// episode. An empty `Info` costs no allocation, which keeps fast environments fast.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info {
    /// Set on the last step of an episode by `RecordEpisodeStatistics`.
    pub episode: Option<EpisodeStats>,
    values: Vec<(&'static str, f64)>,
}

impl Info {
    /// An `Info` with one entry.
    pub fn with(key: &'static str, value: f64) -> Self {
        let mut info = Self::default();
        info.insert(key, value);
        info
    }
    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: &'static str, value: f64) {
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.values.push((key, value)),
        }
    }
    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
    /// All `(key, value)` entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.values.iter().copied()
    }
    /// Whether there are no entries and no episode statistics.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.episode.is_none()
    }
}

// ANCHOR: env_step
/// What `step` returns: Gymnasium's `(obs, reward, terminated, truncated, info)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step<O> {
    pub obs: O,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub info: Info,
}

impl<O> Step<O> {
    /// Whether the episode is over, for either reason.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}
// ANCHOR_END: env_step

// ANCHOR: env_trait
/// The element type of an environment's observation space.
pub type Obs<E> = <<E as Env>::ObsSpace as Space>::Item;
/// The element type of an environment's action space.
pub type Act<E> = <<E as Env>::ActSpace as Space>::Item;

/// A reinforcement-learning environment (Gymnasium's `gymnasium.Env`).
pub trait Env {
    /// Where observations live.
    type ObsSpace: Space;
    /// Where actions live.
    type ActSpace: Space;

    /// The observation space.
    fn observation_space(&self) -> &Self::ObsSpace;
    /// The action space.
    fn action_space(&self) -> &Self::ActSpace;

    /// Starts a new episode; `Some(seed)` re-seeds the environment first.
    fn reset(&mut self, seed: Option<u64>) -> (Obs<Self>, Info);

    /// Takes one action. Errors on an action outside the action space, or when the episode
    /// has ended (or never started) and `reset` is due.
    fn step(&mut self, action: Act<Self>) -> Result<Step<Obs<Self>>>;

    /// A text picture of the current state (Gymnasium's `render_mode="ansi"`), where the
    /// environment has one.
    fn render_ansi(&self) -> Option<String> {
        None
    }
}
// ANCHOR_END: env_trait

/// Checks `action` against the action space, returning the typed error if it is outside.
pub(crate) fn check_action<S: Space>(space: &S, action: &S::Item) -> Result<()> {
    if space.contains(action) {
        Ok(())
    } else {
        Err(crate::EnvError::invalid_action(action, space))
    }
}

/// Where an environment is in its episode, to refuse a `step` that needs a `reset` first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Phase {
    #[default]
    NotStarted,
    Running,
    Done,
}

impl Phase {
    /// `Ok` while an episode is running.
    pub(crate) fn check_running(self) -> Result<()> {
        match self {
            Phase::Running => Ok(()),
            Phase::NotStarted => Err(crate::EnvError::BEFORE_RESET),
            Phase::Done => Err(crate::EnvError::AFTER_DONE),
        }
    }
    /// The phase after a step with these flags.
    pub(crate) fn after(done: bool) -> Self {
        if done {
            Phase::Done
        } else {
            Phase::Running
        }
    }
}
