//! # policy-lab-envs: gym-style environments
//!
//! The environments of policy-lab, with Gymnasium's semantics and no deep-learning
//! dependency:
//!
//! * [`Env`]: `reset(seed) -> (obs, info)` and `step(action) -> Result<Step>`, with
//!   `terminated` and `truncated` kept apart ([`env`]);
//! * spaces [`Discrete`], [`BoxSpace`] and [`Text`] ([`space`]);
//! * bandits ([`bandit`]), gridworlds: FrozenLake-v1 and generated mazes ([`gridworld`]),
//!   CartPole-v1 ([`cartpole`]), and a verifiable text task for language models:
//!   [`Arithmetic`] ([`arithmetic`]);
//! * wrappers ([`wrappers`]), a vector env with same-step autoreset ([`vector`]),
//!   [`check_env`] ([`check`]), pictures of gridworlds ([`render`]), and [`make`] from an id
//!   ([`registry`]).
//!
//! ```
//! use policy_lab_envs::{make, Env};
//! let (mut env, _spec) = make("CartPole-v1").unwrap();
//! let (mut obs, _info) = env.reset(Some(42));
//! let mut ret = 0.0;
//! loop {
//!     let action = if obs[2] + obs[3] > 0.0 { 1 } else { 0 }; // push toward the lean
//!     let step = env.step(action).unwrap();
//!     ret += step.reward;
//!     obs = step.obs;
//!     if step.terminated || step.truncated { break; }
//! }
//! assert!(ret > 100.0);
//! ```

pub mod arithmetic;
pub mod bandit;
pub mod cartpole;
pub mod check;
pub mod env;
pub mod error;
pub mod gridworld;
pub mod registry;
pub mod render;
pub mod space;
pub mod vector;
pub mod wrappers;

pub use arithmetic::{Arithmetic, ArithmeticConfig, Op, Split};
pub use bandit::{ArmKind, Bandit};
pub use cartpole::CartPole;
pub use check::check_env;
pub use env::{seeded_rng, Act, Env, EnvRng, EpisodeStats, Info, Obs, Step};
pub use error::{EnvError, Result};
pub use gridworld::{
    generate_maze, GridRules, GridWorld, MazeConfig, Tile, MAX_MAZE_SIDE, MAZE_DRAW_BUDGET,
};
pub use registry::{make, AnyEnv, EnvKind, EnvSpec, ENV_IDS, MAX_ARMS, MAX_CONTEXTS};
pub use space::{BoxSpace, Discrete, FloatObs, Space, Text};
pub use vector::{SyncVectorEnv, VecStep};
pub use wrappers::{
    NormalizeObservation, NormalizeReward, OneHotObservation, RecordEpisodeStatistics, TimeLimit,
};

/// CartPole-v1 as `gymnasium.make("CartPole-v1")` builds it: with its 500-step time limit.
pub fn cartpole_v1() -> TimeLimit<CartPole> {
    TimeLimit::new(CartPole::new(), cartpole::MAX_EPISODE_STEPS).expect("500 is a valid limit")
}

/// FrozenLake-v1 (`"4x4"`, 100-step limit, or `"8x8"`, 200-step limit).
pub fn frozen_lake_v1(map_name: &str, is_slippery: bool) -> Result<TimeLimit<GridWorld>> {
    let steps = if map_name == "8x8" { 200 } else { 100 };
    TimeLimit::new(GridWorld::frozen_lake(map_name, is_slippery)?, steps)
}
