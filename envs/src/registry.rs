//! `make`: build an environment from its id, as `gymnasium.make` does.
//!
//! ```text
//! CartPole-v1                    CartPole, 500-step limit
//! FrozenLake-v1                  4x4 map, slippery, 100-step limit
//! FrozenLake8x8-v1               8x8 map, slippery, 200-step limit
//! Maze-v0                        a generated maze (8x8, walls, deterministic), 4*rows*cols-step limit
//! BernoulliBandit-v0             10 Bernoulli arms (arms_seed 2: best 0.864, next 0.772), one pull per episode
//! GaussianBandit-v0              10 Gaussian arms (Sutton and Barto's testbed)
//! ContextualBandit-v0            4 contexts, 4 Bernoulli arms
//! ```
//!
//! Options follow the id after a colon, as `key=value` pairs separated by commas, like
//! Gymnasium's keyword arguments: `FrozenLake-v1:is_slippery=false`,
//! `Maze-v0:size=12,seed=3,step_penalty=0.05`, `BernoulliBandit-v0:arms=5,arms_seed=2`.
//!
//! The result is an [`AnyEnv`]: one type for all of them, with flattened `f32` observations
//! (a discrete observation becomes one-hot) and discrete actions, ready for a vector env and
//! a neural network. Each variant keeps its typed environment for the things only it has
//! (a gridworld's map and model, for drawing a policy).

use std::collections::BTreeMap;

use crate::bandit::Bandit;
use crate::cartpole::{self, CartPole};
use crate::env::{Env, Info, Step};
use crate::error::{EnvError, Result};
use crate::gridworld::{GridRules, GridWorld, MazeConfig};
use crate::space::{BoxSpace, Discrete, Space};
use crate::wrappers::TimeLimit;

/// The ids `make` knows, with a one-line description each.
pub const ENV_IDS: [(&str, &str); 7] = [
    ("CartPole-v1", "balance a pole on a cart; 500-step limit; solved at a mean return of 475"),
    ("FrozenLake-v1", "cross a slippery 4x4 frozen lake to the goal without falling into a hole; 100-step limit"),
    ("FrozenLake8x8-v1", "the 8x8 frozen lake; 200-step limit"),
    ("Maze-v0", "a generated maze (options: size, rows, cols, seed, obstacle_prob, holes, is_slippery, goal_reward, step_penalty)"),
    ("BernoulliBandit-v0", "a k-armed bandit with Bernoulli arms (options: arms, arms_seed, pulls)"),
    ("GaussianBandit-v0", "a k-armed bandit with N(mean, 1) rewards (options: arms, arms_seed, pulls)"),
    ("ContextualBandit-v0", "a bandit whose best arm depends on the observed context (options: contexts, arms, arms_seed, pulls)"),
];

/// Any of the registered environments, with flattened observations.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AnyEnv {
    /// The typed environment inside.
    pub kind: EnvKind,
    /// The flattened observation space: the inner space's `flatten_space`.
    space: BoxSpace<Vec<f32>>,
}

/// The typed environments that [`make`] builds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum EnvKind {
    CartPole(TimeLimit<CartPole>),
    Grid(TimeLimit<GridWorld>),
    Bandit(Bandit),
}

/// What `make` knows about an environment besides the environment itself.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSpec {
    pub id: String,
    pub max_episode_steps: Option<usize>,
    /// The mean return at which the task counts as solved, where one is defined.
    pub reward_threshold: Option<f64>,
}

/// Parses `key=value,key=value` options; every key must be used, or it is an error.
struct Options {
    id: String,
    values: BTreeMap<String, String>,
}

impl Options {
    fn parse(id: &str, text: &str) -> Result<Self> {
        let mut values = BTreeMap::new();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                EnvError::config(format!("option '{pair}' of {id} is not key=value"))
            })?;
            values.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(Self {
            id: id.to_string(),
            values,
        })
    }
    fn get<T: std::str::FromStr>(&mut self, key: &str, default: T) -> Result<T> {
        match self.values.remove(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                EnvError::config(format!(
                    "option {key}={v} of {} is not a valid value",
                    self.id
                ))
            }),
        }
    }
    fn finish(self) -> Result<()> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(k) => Err(EnvError::config(format!("{} has no option '{k}'", self.id))),
        }
    }
}

/// Builds an environment from an id with optional `:key=value,...` options.
pub fn make(spec: &str) -> Result<(AnyEnv, EnvSpec)> {
    let (id, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let mut o = Options::parse(id, opts)?;
    let (env, max_steps, threshold) = match id {
        "CartPole-v1" => {
            let env = TimeLimit::new(CartPole::new(), cartpole::MAX_EPISODE_STEPS)?;
            (
                EnvKind::CartPole(env),
                Some(cartpole::MAX_EPISODE_STEPS),
                Some(cartpole::REWARD_THRESHOLD),
            )
        }
        "FrozenLake-v1" | "FrozenLake8x8-v1" => {
            let (map, steps, threshold) = if id == "FrozenLake-v1" {
                ("4x4", 100, 0.70)
            } else {
                ("8x8", 200, 0.85)
            };
            let map: String = o.get("map_name", map.to_string())?;
            let slippery = o.get("is_slippery", true)?;
            let env = TimeLimit::new(GridWorld::frozen_lake(&map, slippery)?, steps)?;
            (EnvKind::Grid(env), Some(steps), Some(threshold))
        }
        "Maze-v0" => {
            let d = MazeConfig::default();
            let size = o.get("size", d.rows)?;
            let rules = GridRules {
                is_slippery: o.get("is_slippery", d.rules.is_slippery)?,
                goal_reward: o.get("goal_reward", d.rules.goal_reward)?,
                step_penalty: o.get("step_penalty", d.rules.step_penalty)?,
                ..d.rules
            };
            let config = MazeConfig {
                rows: o.get("rows", size)?,
                cols: o.get("cols", size)?,
                seed: o.get("seed", d.seed)?,
                obstacle_prob: o.get("obstacle_prob", d.obstacle_prob)?,
                holes: o.get("holes", d.holes)?,
                rules,
            };
            let steps = 4 * config.rows * config.cols;
            (
                EnvKind::Grid(TimeLimit::new(GridWorld::maze(&config)?, steps)?),
                Some(steps),
                None,
            )
        }
        "BernoulliBandit-v0" | "GaussianBandit-v0" => {
            // The default arms_seed 2 gives the Bernoulli bandit a gap of 0.09 between its
            // best arm (0.864) and the next (0.772): learnable in a few thousand pulls.
            let (arms, pulls) = (o.get("arms", 10)?, o.get("pulls", 1)?);
            let seed = o.get("arms_seed", if id == "BernoulliBandit-v0" { 2 } else { 0 })?;
            let env = if id == "BernoulliBandit-v0" {
                Bandit::bernoulli(arms, seed)?
            } else {
                Bandit::gaussian(arms, seed)?
            };
            (
                EnvKind::Bandit(env.with_pulls_per_episode(pulls)?),
                None,
                None,
            )
        }
        "ContextualBandit-v0" => {
            let (contexts, arms) = (o.get("contexts", 4)?, o.get("arms", 4)?);
            let (seed, pulls) = (o.get("arms_seed", 0)?, o.get("pulls", 1)?);
            let env =
                Bandit::contextual_random(contexts, arms, seed)?.with_pulls_per_episode(pulls)?;
            (EnvKind::Bandit(env), None, None)
        }
        _ => {
            let known = ENV_IDS
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(EnvError::UnknownEnv {
                id: id.to_string(),
                known,
            });
        }
    };
    o.finish()?;
    let env = AnyEnv::new(env);
    let spec = EnvSpec {
        id: id.to_string(),
        max_episode_steps: max_steps,
        reward_threshold: threshold,
    };
    Ok((env, spec))
}

/// Calls `$body` with `$e` bound to the typed environment inside an [`AnyEnv`].
macro_rules! dispatch {
    ($kind:expr, $e:ident => $body:expr) => {
        match $kind {
            EnvKind::CartPole($e) => $body,
            EnvKind::Grid($e) => $body,
            EnvKind::Bandit($e) => $body,
        }
    };
}

impl AnyEnv {
    /// Wraps a typed environment.
    pub fn new(kind: EnvKind) -> Self {
        let space = dispatch!(&kind, e => e.observation_space().flatten_space());
        Self { kind, space }
    }

    /// Starts an episode from the same start as every other member of a group (GRPO's G
    /// rollouts of one "prompt"): the start state comes from `group_seed`, the episode's own
    /// randomness (slippery ice, reward noise) from `member_seed`.
    ///
    /// CartPole: the reset seeded with `group_seed` (its dynamics are deterministic).
    /// Gridworlds: the start is fixed; `member_seed` seeds the ice. Bandits: the context
    /// drawn with `group_seed`, rewards seeded with `member_seed`.
    pub fn reset_group_member(&mut self, group_seed: u64, member_seed: u64) -> (Vec<f32>, Info) {
        match &mut self.kind {
            EnvKind::CartPole(_) => self.reset(Some(group_seed)),
            EnvKind::Grid(_) => self.reset(Some(member_seed)),
            EnvKind::Bandit(b) => {
                let (context, _) = b.reset(Some(group_seed));
                b.reset(Some(member_seed));
                let (obs, info) = b
                    .reset_to_context(context)
                    .expect("a context the bandit drew itself");
                (b.observation_space().flatten(&obs), info)
            }
        }
    }

    /// The gridworld inside, if this is one (for drawing policies and values on its map).
    pub fn grid(&self) -> Option<&GridWorld> {
        match &self.kind {
            EnvKind::Grid(env) => Some(env.inner()),
            _ => None,
        }
    }
    /// The number of discrete actions.
    pub fn num_actions(&self) -> usize {
        self.action_space().n
    }
    /// The length of a flattened observation.
    pub fn obs_dim(&self) -> usize {
        self.space.len()
    }
    /// The typed observation space of the inner environment, described in words.
    pub fn describe_observation_space(&self) -> String {
        dispatch!(&self.kind, e => e.observation_space().to_string())
    }
}

fn flat_step<E: Env>(env: &E, step: Step<<E::ObsSpace as Space>::Item>) -> Step<Vec<f32>> {
    let obs = env.observation_space().flatten(&step.obs);
    Step {
        obs,
        reward: step.reward,
        terminated: step.terminated,
        truncated: step.truncated,
        info: step.info,
    }
}

impl Env for AnyEnv {
    type ObsSpace = BoxSpace<Vec<f32>>;
    type ActSpace = Discrete;

    /// The box of the flattened features (see [`Space::flatten_space`]).
    fn observation_space(&self) -> &BoxSpace<Vec<f32>> {
        &self.space
    }
    fn action_space(&self) -> &Discrete {
        dispatch!(&self.kind, e => e.action_space())
    }
    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        dispatch!(&mut self.kind, e => {
            let (obs, info) = e.reset(seed);
            (e.observation_space().flatten(&obs), info)
        })
    }
    fn step(&mut self, action: usize) -> Result<Step<Vec<f32>>> {
        dispatch!(&mut self.kind, e => {
            let step = e.step(action)?;
            Ok(flat_step(e, step))
        })
    }
    fn render_ansi(&self) -> Option<String> {
        dispatch!(&self.kind, e => e.render_ansi())
    }
}
