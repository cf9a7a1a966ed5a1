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
//! [`ENV_IDS`] lists each id's options. An unknown option, an option given twice and a value
//! out of range are errors that name the option:
//!
//! * mazes: `size` 2 to [`MAX_MAZE_SIDE`] (64), `rows` and `cols` 1 to 64 (at least 2 cells),
//!   `obstacle_prob` 0 to 0.75, `goal_reward` and `step_penalty` finite; a maze with no
//!   path after [`MAZE_DRAW_BUDGET`](crate::gridworld::MAZE_DRAW_BUDGET) cells drawn is an
//!   error, not an endless loop;
//! * bandits: `arms` 1 to [`MAX_ARMS`] (2 to [`MAX_ARMS`] for the contextual bandit),
//!   `contexts` 1 to [`MAX_CONTEXTS`], `pulls` at least 1.
//!
//! The result is an [`AnyEnv`]: one type for all of them, with flattened `f32` observations
//! (a discrete observation becomes one-hot) and discrete actions, ready for a vector env and
//! a neural network. Each variant keeps its typed environment for the things only it has
//! (a gridworld's map and model, for drawing a policy).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use crate::bandit::Bandit;
use crate::cartpole::{self, CartPole};
use crate::env::{Env, Info, Step};
use crate::error::{EnvError, Result};
use crate::gridworld::{GridRules, GridWorld, MazeConfig, MAX_MAZE_SIDE};
use crate::space::{BoxSpace, Discrete, Space};
use crate::wrappers::TimeLimit;

/// The most arms a bandit from [`make`] may have.
pub const MAX_ARMS: usize = 1000;
/// The most contexts a contextual bandit from [`make`] may have.
pub const MAX_CONTEXTS: usize = 1000;

/// The ids `make` knows, with a one-line description each, ending in the options it reads.
pub const ENV_IDS: [(&str, &str); 7] = [
    ("CartPole-v1", "balance a pole on a cart; 500-step limit; solved at a mean return of 475 (no options)"),
    ("FrozenLake-v1", "cross a slippery 4x4 frozen lake to the goal without falling into a hole; 100-step limit (options: map_name 4x4 or 8x8, is_slippery)"),
    ("FrozenLake8x8-v1", "the 8x8 frozen lake; 200-step limit (options: map_name 8x8 or 4x4, is_slippery)"),
    ("Maze-v0", "a generated maze with a path to the goal (options: size 2-64, rows 1-64, cols 1-64, seed, obstacle_prob 0-0.75, holes, is_slippery, goal_reward, step_penalty)"),
    ("BernoulliBandit-v0", "a k-armed bandit with Bernoulli arms (options: arms 1-1000, arms_seed, pulls)"),
    ("GaussianBandit-v0", "a k-armed bandit with N(mean, 1) rewards (options: arms 1-1000, arms_seed, pulls)"),
    ("ContextualBandit-v0", "a bandit whose best arm depends on the observed context (options: contexts 1-1000, arms 2-1000, arms_seed, pulls)"),
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
    /// Splits `text` into `key=value` pairs; a key given twice is an error.
    fn parse(id: &str, text: &str) -> Result<Self> {
        let mut values = BTreeMap::new();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                EnvError::config(format!("option '{pair}' of {id} is not key=value"))
            })?;
            let key = k.trim().to_string();
            if values.insert(key.clone(), v.trim().to_string()).is_some() {
                return Err(EnvError::config(format!(
                    "option '{key}' of {id} is given twice"
                )));
            }
        }
        Ok(Self {
            id: id.to_string(),
            values,
        })
    }

    /// The value of option `key`, or `default` if it is not given.
    fn get<T: FromStr>(&mut self, key: &str, default: T) -> Result<T> {
        self.get_checked(key, default, |_| true, "")
    }

    /// Like [`Options::get`], but the value must pass `ok`; otherwise the error names the
    /// key, the value and `allowed`. A number that does not fit `T` (`-1` for a count) is
    /// out of range too.
    fn get_checked<T: FromStr>(
        &mut self,
        key: &str,
        default: T,
        ok: impl Fn(&T) -> bool,
        allowed: &str,
    ) -> Result<T> {
        let Some(v) = self.values.remove(key) else {
            return Ok(default);
        };
        match v.parse::<T>() {
            Ok(value) if ok(&value) => Ok(value),
            Ok(_) => Err(self.out_of_range(key, &v, allowed)),
            Err(_) if v.parse::<f64>().is_ok() && !allowed.is_empty() => {
                Err(self.out_of_range(key, &v, allowed))
            }
            Err(_) => Err(EnvError::config(format!(
                "option {key}={v} of {} is not a valid value",
                self.id
            ))),
        }
    }

    /// A whole-number option that must lie in `min..=max`; `allowed` says so in words.
    fn get_count(
        &mut self,
        key: &str,
        default: usize,
        (min, max): (usize, usize),
        allowed: &str,
    ) -> Result<usize> {
        self.get_checked(key, default, |n| (min..=max).contains(n), allowed)
    }

    /// A number option that must be finite (not `inf` or `NaN`).
    fn get_finite(&mut self, key: &str, default: f64) -> Result<f64> {
        let allowed = format!("{key} must be a finite number");
        self.get_checked(key, default, |x: &f64| x.is_finite(), &allowed)
    }

    fn out_of_range(&self, key: &str, value: &str, allowed: impl Display) -> EnvError {
        EnvError::config(format!(
            "option {key}={value} of {} is out of range: {allowed}",
            self.id
        ))
    }

    /// Errors if an option was given that the environment does not read.
    fn finish(self) -> Result<()> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(k) => Err(EnvError::config(format!("{} has no option '{k}'", self.id))),
        }
    }
}

/// What each builder returns: the environment, its time limit and its solved threshold.
type Built = (EnvKind, Option<usize>, Option<f64>);

/// Builds an environment from an id with optional `:key=value,...` options.
pub fn make(spec: &str) -> Result<(AnyEnv, EnvSpec)> {
    let (id, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !ENV_IDS.iter().any(|(known, _)| *known == id) {
        return Err(unknown_env(id));
    }
    let o = Options::parse(id, opts)?;
    let (env, max_steps, threshold) = match id {
        "CartPole-v1" => make_cartpole(o)?,
        "FrozenLake-v1" | "FrozenLake8x8-v1" => make_frozen_lake(id, o)?,
        "Maze-v0" => make_maze(o)?,
        "BernoulliBandit-v0" | "GaussianBandit-v0" => make_bandit(id, o)?,
        "ContextualBandit-v0" => make_contextual_bandit(o)?,
        _ => return Err(unknown_env(id)),
    };
    let env = AnyEnv::new(env);
    let spec = EnvSpec {
        id: id.to_string(),
        max_episode_steps: max_steps,
        reward_threshold: threshold,
    };
    Ok((env, spec))
}

/// The error for an id `make` does not know, listing the ones it does.
fn unknown_env(id: &str) -> EnvError {
    let known = ENV_IDS
        .iter()
        .map(|(id, _)| *id)
        .collect::<Vec<_>>()
        .join(", ");
    EnvError::UnknownEnv {
        id: id.to_string(),
        known,
    }
}

/// `CartPole-v1`: no options.
fn make_cartpole(o: Options) -> Result<Built> {
    o.finish()?;
    let env = TimeLimit::new(CartPole::new(), cartpole::MAX_EPISODE_STEPS)?;
    Ok((
        EnvKind::CartPole(env),
        Some(cartpole::MAX_EPISODE_STEPS),
        Some(cartpole::REWARD_THRESHOLD),
    ))
}

/// `FrozenLake-v1` and `FrozenLake8x8-v1`: `map_name`, `is_slippery`.
fn make_frozen_lake(id: &str, mut o: Options) -> Result<Built> {
    let (map, steps, threshold) = if id == "FrozenLake-v1" {
        ("4x4", 100, 0.70)
    } else {
        ("8x8", 200, 0.85)
    };
    let map: String = o.get("map_name", map.to_string())?;
    let slippery = o.get("is_slippery", true)?;
    o.finish()?;
    let env = TimeLimit::new(GridWorld::frozen_lake(&map, slippery)?, steps)?;
    Ok((EnvKind::Grid(env), Some(steps), Some(threshold)))
}

/// `Maze-v0`: `size` (or `rows` and `cols`), `seed`, `obstacle_prob`, `holes`,
/// `is_slippery`, `goal_reward`, `step_penalty`.
fn make_maze(mut o: Options) -> Result<Built> {
    let d = MazeConfig::default();
    let size = o.get_count(
        "size",
        d.rows,
        (2, MAX_MAZE_SIDE),
        &format!("a size x size maze needs a whole number from 2 to {MAX_MAZE_SIDE}"),
    )?;
    let rows = get_maze_side(&mut o, "rows", size)?;
    let cols = get_maze_side(&mut o, "cols", size)?;
    if rows * cols < 2 {
        return Err(EnvError::config(format!(
            "options rows={rows} and cols={cols} of Maze-v0 make a 1x1 maze; a maze needs at least 2 cells"
        )));
    }
    let rules = GridRules {
        is_slippery: o.get("is_slippery", d.rules.is_slippery)?,
        goal_reward: o.get_finite("goal_reward", d.rules.goal_reward)?,
        step_penalty: o.get_finite("step_penalty", d.rules.step_penalty)?,
        ..d.rules
    };
    let obstacle_prob = o.get_checked(
        "obstacle_prob",
        d.obstacle_prob,
        |p| (0.0..=0.75).contains(p),
        "obstacle_prob must be in [0, 0.75]",
    )?;
    let config = MazeConfig {
        rows,
        cols,
        seed: o.get("seed", d.seed)?,
        obstacle_prob,
        holes: o.get("holes", d.holes)?,
        rules,
    };
    o.finish()?;
    let steps = 4 * rows * cols;
    let env = TimeLimit::new(GridWorld::maze(&config)?, steps)?;
    Ok((EnvKind::Grid(env), Some(steps), None))
}

/// A maze's `rows` or `cols`: 1 to [`MAX_MAZE_SIDE`].
fn get_maze_side(o: &mut Options, key: &str, default: usize) -> Result<usize> {
    let allowed = format!("{key} must be a whole number from 1 to {MAX_MAZE_SIDE}");
    o.get_count(key, default, (1, MAX_MAZE_SIDE), &allowed)
}

/// The number of pulls per episode: at least 1.
fn get_pulls(o: &mut Options) -> Result<usize> {
    o.get_count(
        "pulls",
        1,
        (1, usize::MAX),
        "pulls_per_episode must be at least 1",
    )
}

/// `BernoulliBandit-v0` and `GaussianBandit-v0`: `arms`, `arms_seed`, `pulls`.
fn make_bandit(id: &str, mut o: Options) -> Result<Built> {
    let arms = o.get_count(
        "arms",
        10,
        (1, MAX_ARMS),
        &format!("a bandit needs at least one arm and at most {MAX_ARMS}"),
    )?;
    // The default arms_seed 2 gives the Bernoulli bandit a gap of 0.09 between its
    // best arm (0.864) and the next (0.772): learnable in a few thousand pulls.
    let bernoulli = id == "BernoulliBandit-v0";
    let seed = o.get("arms_seed", if bernoulli { 2 } else { 0 })?;
    let pulls = get_pulls(&mut o)?;
    o.finish()?;
    let env = if bernoulli {
        Bandit::bernoulli(arms, seed)?
    } else {
        Bandit::gaussian(arms, seed)?
    };
    Ok((
        EnvKind::Bandit(env.with_pulls_per_episode(pulls)?),
        None,
        None,
    ))
}

/// `ContextualBandit-v0`: `contexts`, `arms`, `arms_seed`, `pulls`.
fn make_contextual_bandit(mut o: Options) -> Result<Built> {
    let contexts = o.get_count(
        "contexts",
        4,
        (1, MAX_CONTEXTS),
        &format!("a contextual bandit needs at least one context and at most {MAX_CONTEXTS}"),
    )?;
    let arms = o.get_count(
        "arms",
        4,
        (2, MAX_ARMS),
        &format!("a contextual bandit needs at least 2 arms and at most {MAX_ARMS}"),
    )?;
    let seed = o.get("arms_seed", 0)?;
    let pulls = get_pulls(&mut o)?;
    o.finish()?;
    let env = Bandit::contextual_random(contexts, arms, seed)?.with_pulls_per_episode(pulls)?;
    Ok((EnvKind::Bandit(env), None, None))
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
