//! Bandits: the smallest reinforcement-learning problems.
//!
//! A [`Bandit`] has a table of expected rewards `means[context][arm]`. Each episode draws a
//! context uniformly and shows it as the observation (a `Discrete(n_contexts)` space); the
//! agent pulls an arm and gets a Bernoulli or Gaussian reward around that mean.
//!
//! * a `k`-armed bandit ([`Bandit::k_armed`], [`Bandit::bernoulli`], [`Bandit::gaussian`])
//!   has a single context, so its observation is always `0`;
//! * a contextual bandit ([`Bandit::contextual`], [`Bandit::contextual_random`]) has
//!   several, and which arm is best depends on the context.
//!
//! An episode is `pulls_per_episode` pulls (1 by default: every pull terminates). Each step
//! reports in `info`:
//! * `regret`: the expected reward of the best arm minus that of the pulled arm;
//! * `cumulative_regret`: the sum of `regret` since the last seeded `reset(Some(seed))` (a
//!   seeded reset starts a new experiment);
//! * `best_arm`: the optimal arm (for the current context).
//!
//! The arms' parameters are fixed when the bandit is built (from its `arms_seed`); the seed
//! given to `reset` drives only the reward noise and the contexts.

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Bernoulli, Distribution, Normal};

use crate::env::{check_action, seeded_rng, Env, EnvRng, Info, Phase, Step};
use crate::error::{EnvError, Result};
use crate::space::{Discrete, Space};

/// How an arm pays out.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ArmKind {
    /// Reward 1 with probability `p`, else 0.
    Bernoulli,
    /// Reward drawn from a normal distribution with this standard deviation around the mean.
    Gaussian { std: f64 },
}

impl ArmKind {
    fn pull<R: Rng + ?Sized>(&self, mean: f64, rng: &mut R) -> f64 {
        match self {
            ArmKind::Bernoulli => f64::from(u8::from(
                Bernoulli::new(mean)
                    .expect("mean checked in [0, 1]")
                    .sample(rng),
            )),
            ArmKind::Gaussian { std } => Normal::new(mean, *std)
                .expect("std checked finite")
                .sample(rng),
        }
    }
    fn validate(&self, means: &[f64]) -> Result<()> {
        match self {
            ArmKind::Bernoulli => match means.iter().find(|p| !(0.0..=1.0).contains(*p)) {
                Some(p) => Err(EnvError::config(format!(
                    "a Bernoulli arm needs p in [0, 1], got {p}"
                ))),
                None => Ok(()),
            },
            ArmKind::Gaussian { std } if !(std.is_finite() && *std >= 0.0) => Err(
                EnvError::config(format!("a Gaussian arm needs a finite std >= 0, got {std}")),
            ),
            ArmKind::Gaussian { .. } => match means.iter().find(|m| !m.is_finite()) {
                Some(m) => Err(EnvError::config(format!(
                    "arm means must be finite, got {m}"
                ))),
                None => Ok(()),
            },
        }
    }
}

/// The index of the largest value (the first, on ties).
pub fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
}

/// A (contextual) bandit; see the module docs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Bandit {
    /// `means[context][arm]`: the expected reward.
    means: Vec<Vec<f64>>,
    kind: ArmKind,
    pulls_per_episode: usize,
    pulls: usize,
    context: usize,
    cumulative_regret: f64,
    rng: EnvRng,
    phase: Phase,
    observation_space: Discrete,
    action_space: Discrete,
}

impl Bandit {
    /// A bandit from a table of expected rewards, one row per context (for Bernoulli arms,
    /// the success probabilities).
    pub fn contextual(means: Vec<Vec<f64>>, kind: ArmKind) -> Result<Self> {
        let k = means.first().map_or(0, Vec::len);
        if k == 0 {
            return Err(EnvError::config(
                "a bandit needs at least one context and at least one arm",
            ));
        }
        if let Some(row) = means.iter().position(|r| r.len() != k) {
            return Err(EnvError::config(format!(
                "context {row} has {} arms, context 0 has {k}",
                means[row].len()
            )));
        }
        for row in &means {
            kind.validate(row)?;
        }
        let n = means.len();
        Ok(Self {
            means,
            kind,
            pulls_per_episode: 1,
            pulls: 0,
            context: 0,
            cumulative_regret: 0.0,
            rng: seeded_rng(None),
            phase: Phase::NotStarted,
            observation_space: Discrete { n },
            action_space: Discrete { n: k },
        })
    }

    /// A `k`-armed bandit (one context) with the given arm means.
    pub fn k_armed(means: Vec<f64>, kind: ArmKind) -> Result<Self> {
        Self::contextual(vec![means], kind)
    }

    /// `k` Bernoulli arms with probabilities drawn uniformly from [0, 1] using `arms_seed`.
    pub fn bernoulli(k: usize, arms_seed: u64) -> Result<Self> {
        let mut rng = EnvRng::seed_from_u64(arms_seed);
        Self::k_armed(
            (0..k).map(|_| rng.random::<f64>()).collect(),
            ArmKind::Bernoulli,
        )
    }

    /// Sutton and Barto's testbed: `k` arms with means drawn from N(0, 1) using `arms_seed`,
    /// rewards N(mean, 1).
    pub fn gaussian(k: usize, arms_seed: u64) -> Result<Self> {
        let mut rng = EnvRng::seed_from_u64(arms_seed);
        let means = (0..k)
            .map(|_| Normal::new(0.0, 1.0).expect("unit normal").sample(&mut rng))
            .collect();
        Self::k_armed(means, ArmKind::Gaussian { std: 1.0 })
    }

    /// `n_contexts` contexts and `k` Bernoulli arms: in context `c` the best arm is `c mod k`
    /// with success probability 0.9; the other arms pay with probabilities drawn from
    /// [0.1, 0.5] using `arms_seed`. No single arm is best in every context (when
    /// `n_contexts >= 2`).
    pub fn contextual_random(n_contexts: usize, k: usize, arms_seed: u64) -> Result<Self> {
        if k < 2 {
            return Err(EnvError::config(
                "a contextual bandit needs at least two arms",
            ));
        }
        let mut rng = EnvRng::seed_from_u64(arms_seed);
        let means = (0..n_contexts)
            .map(|c| {
                (0..k)
                    .map(|a| {
                        if a == c % k {
                            0.9
                        } else {
                            rng.random_range(0.1..0.5)
                        }
                    })
                    .collect()
            })
            .collect();
        Self::contextual(means, ArmKind::Bernoulli)
    }

    /// Sets how many pulls (all in the same context) make an episode (1 by default).
    pub fn with_pulls_per_episode(mut self, pulls: usize) -> Result<Self> {
        if pulls == 0 {
            return Err(EnvError::config("pulls_per_episode must be at least 1"));
        }
        self.pulls_per_episode = pulls;
        Ok(self)
    }

    /// The expected rewards, `[context][arm]`.
    pub fn means(&self) -> &[Vec<f64>] {
        &self.means
    }

    /// The best arm in context `c`.
    pub fn best_arm(&self, c: usize) -> usize {
        argmax(&self.means[c])
    }

    /// Starts an episode in a chosen context (GRPO's groups share one context).
    pub fn reset_to_context(&mut self, context: usize) -> Result<(usize, Info)> {
        if !self.observation_space.contains(&context) {
            return Err(EnvError::config(format!(
                "context {context} is not in {}",
                self.observation_space
            )));
        }
        self.context = context;
        self.pulls = 0;
        self.phase = Phase::Running;
        Ok((context, Info::default()))
    }
}

impl Env for Bandit {
    type ObsSpace = Discrete;
    type ActSpace = Discrete;

    fn observation_space(&self) -> &Discrete {
        &self.observation_space
    }
    fn action_space(&self) -> &Discrete {
        &self.action_space
    }
    /// A seeded reset also starts a new experiment: `cumulative_regret` goes back to 0.
    fn reset(&mut self, seed: Option<u64>) -> (usize, Info) {
        if seed.is_some() {
            self.rng = seeded_rng(seed);
            self.cumulative_regret = 0.0;
        }
        let context = if self.means.len() == 1 {
            0
        } else {
            self.rng.random_range(0..self.means.len())
        };
        self.reset_to_context(context)
            .expect("a sampled context is valid")
    }
    // ANCHOR: env_bandit_step
    fn step(&mut self, arm: usize) -> Result<Step<usize>> {
        check_action(&self.action_space, &arm)?;
        self.phase.check_running()?;
        let means = &self.means[self.context];
        let reward = self.kind.pull(means[arm], &mut self.rng);
        self.pulls += 1;
        let terminated = self.pulls >= self.pulls_per_episode;
        self.phase = Phase::after(terminated);
        let best = argmax(means);
        let regret = means[best] - means[arm];
        self.cumulative_regret += regret;
        let mut info = Info::with("regret", regret);
        info.insert("cumulative_regret", self.cumulative_regret);
        info.insert("best_arm", best as f64);
        Ok(Step {
            obs: self.context,
            reward,
            terminated,
            truncated: false,
            info,
        })
    }
    // ANCHOR_END: env_bandit_step
    fn render_ansi(&self) -> Option<String> {
        let arms: Vec<String> = self.means[self.context]
            .iter()
            .map(|m| format!("{m:.2}"))
            .collect();
        Some(format!(
            "context {} of {}, arm means [{}], pulls {}",
            self.context,
            self.means.len(),
            arms.join(" "),
            self.pulls
        ))
    }
}
