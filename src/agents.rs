//! Simple agents: what a learned policy has to beat.
//!
//! * [`RandomAgent`]: uniform over the actions.
//! * [`HeuristicAgent`]: the sensible non-learning choice for each environment:
//!   - CartPole: push toward the side the pole is falling to (`theta + 0.5 * theta_dot`);
//!   - gridworlds: the greedy policy of value iteration on the known model (the optimum,
//!     which a learner can only match);
//!   - bandits: UCB1, which learns the arm means over the pulls (per context for a
//!     contextual bandit).

use policy_lab_envs::{AnyEnv, EnvKind, EnvRng, Info};
use rand::RngExt;

/// Something that picks actions.
pub trait Agent {
    /// The action for flattened observation `obs`.
    fn act(&mut self, obs: &[f32], rng: &mut EnvRng) -> usize;
    /// Learns from the outcome of its last action (only bandit agents use it).
    fn observe(&mut self, _obs: &[f32], _action: usize, _reward: f64, _info: &Info) {}
    /// The greedy action per gridworld cell, where the agent has one (for drawing).
    fn grid_policy(&self) -> Option<(&[f64], &[usize])> {
        None
    }
}

/// Picks uniformly at random.
pub struct RandomAgent {
    pub num_actions: usize,
}

impl Agent for RandomAgent {
    fn act(&mut self, _obs: &[f32], rng: &mut EnvRng) -> usize {
        rng.random_range(0..self.num_actions)
    }
}

/// The heuristic for one environment (see the module docs).
pub enum HeuristicAgent {
    CartPole,
    /// Value iteration's values and greedy policy.
    Grid {
        values: Vec<f64>,
        policy: Vec<usize>,
    },
    /// UCB1 statistics per context: pulls and mean reward of every arm.
    Ucb {
        counts: Vec<Vec<f64>>,
        means: Vec<Vec<f64>>,
        t: f64,
    },
}

impl HeuristicAgent {
    /// The heuristic for `env`.
    pub fn for_env(env: &AnyEnv) -> Self {
        match &env.kind {
            EnvKind::CartPole(_) => HeuristicAgent::CartPole,
            EnvKind::Grid(grid) => {
                let (values, policy) = grid.inner().value_iteration(0.99, 1e-10);
                HeuristicAgent::Grid { values, policy }
            }
            EnvKind::Bandit(_) => {
                let contexts = env.obs_dim();
                let arms = env.num_actions();
                HeuristicAgent::Ucb {
                    counts: vec![vec![0.0; arms]; contexts],
                    means: vec![vec![0.0; arms]; contexts],
                    t: 0.0,
                }
            }
        }
    }
}

/// The index of the `1.0` in a one-hot vector.
fn one_hot_index(obs: &[f32]) -> usize {
    obs.iter().position(|v| *v > 0.5).unwrap_or(0)
}

impl Agent for HeuristicAgent {
    fn act(&mut self, obs: &[f32], _rng: &mut EnvRng) -> usize {
        match self {
            HeuristicAgent::CartPole => usize::from(obs[2] + 0.5 * obs[3] > 0.0),
            HeuristicAgent::Grid { policy, .. } => policy[one_hot_index(obs)],
            HeuristicAgent::Ucb { counts, means, t } => {
                let c = one_hot_index(obs);
                // Pull every arm once, then maximize mean + sqrt(2 ln t / n).
                if let Some(untried) = counts[c].iter().position(|n| *n == 0.0) {
                    return untried;
                }
                let score = |a: usize| means[c][a] + (2.0 * t.max(1.0).ln() / counts[c][a]).sqrt();
                (0..counts[c].len())
                    .fold(0, |best, a| if score(a) > score(best) { a } else { best })
            }
        }
    }
    fn observe(&mut self, obs: &[f32], action: usize, reward: f64, _info: &Info) {
        if let HeuristicAgent::Ucb { counts, means, t } = self {
            let c = one_hot_index(obs);
            counts[c][action] += 1.0;
            means[c][action] += (reward - means[c][action]) / counts[c][action];
            *t += 1.0;
        }
    }
    fn grid_policy(&self) -> Option<(&[f64], &[usize])> {
        match self {
            HeuristicAgent::Grid { values, policy } => Some((values, policy)),
            _ => None,
        }
    }
}
