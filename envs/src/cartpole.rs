//! CartPole-v1, with Gymnasium's exact dynamics.
//!
//! A pole is hinged on a cart that moves on a frictionless track. Each step pushes the cart
//! left (action 0) or right (action 1) with a force of 10 N. The reward is +1 for every step,
//! the last one included; the episode terminates when the pole leans more than 12 degrees or
//! the cart leaves the track (|x| > 2.4). [`cartpole_v1`](crate::cartpole_v1) adds the 500-step
//! time limit of CartPole-v1 (reward threshold 475).
//!
//! The state is kept in `f64` and returned as `f32`, as Gymnasium does; the physics are the
//! equations of Barto, Sutton and Anderson (1983) integrated with explicit Euler steps.

use rand::RngExt;

use crate::env::{check_action, seeded_rng, Env, EnvRng, Info, Obs, Phase, Step};
use crate::error::Result;
use crate::space::{BoxSpace, Discrete};

/// Physical constants (Gymnasium's values).
pub const GRAVITY: f64 = 9.8;
pub const MASS_CART: f64 = 1.0;
pub const MASS_POLE: f64 = 0.1;
pub const TOTAL_MASS: f64 = MASS_CART + MASS_POLE;
/// Half the pole's length.
pub const LENGTH: f64 = 0.5;
pub const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
pub const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
pub const TAU: f64 = 0.02;
/// The pole may lean at most 12 degrees.
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
pub const X_THRESHOLD: f64 = 2.4;
/// CartPole-v1's time limit and reward threshold.
pub const MAX_EPISODE_STEPS: usize = 500;
pub const REWARD_THRESHOLD: f64 = 475.0;

/// The cart-pole system. Observation `[x, x_dot, theta, theta_dot]`; actions `0` (push left)
/// and `1` (push right).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CartPole {
    state: [f64; 4],
    rng: EnvRng,
    phase: Phase,
    observation_space: BoxSpace<[f32; 4]>,
    action_space: Discrete,
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new()
    }
}

impl CartPole {
    pub fn new() -> Self {
        // Bounds as Gymnasium sets them: twice the termination thresholds for positions,
        // unbounded velocities.
        let (x, th) = (2.0 * X_THRESHOLD as f32, 2.0 * THETA_THRESHOLD as f32);
        let high = vec![x, f32::MAX, th, f32::MAX];
        let low = high.iter().map(|v| -v).collect();
        Self {
            state: [0.0; 4],
            rng: seeded_rng(None),
            phase: Phase::NotStarted,
            observation_space: BoxSpace::new(low, high, vec![4]).expect("valid CartPole bounds"),
            action_space: Discrete { n: 2 },
        }
    }

    /// The full-precision state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Starts an episode from a given state (used to replay Gymnasium's trajectories).
    pub fn reset_to_state(&mut self, state: [f64; 4]) -> [f32; 4] {
        self.state = state;
        self.phase = Phase::Running;
        self.observation()
    }

    fn observation(&self) -> [f32; 4] {
        self.state.map(|v| v as f32)
    }
}

impl Env for CartPole {
    type ObsSpace = BoxSpace<[f32; 4]>;
    type ActSpace = Discrete;

    fn observation_space(&self) -> &Self::ObsSpace {
        &self.observation_space
    }
    fn action_space(&self) -> &Discrete {
        &self.action_space
    }

    /// Each of the four state values is drawn uniformly from [-0.05, 0.05].
    fn reset(&mut self, seed: Option<u64>) -> ([f32; 4], Info) {
        if seed.is_some() {
            self.rng = seeded_rng(seed);
        }
        let state = std::array::from_fn(|_| self.rng.random_range(-0.05..0.05));
        (self.reset_to_state(state), Info::default())
    }

    // ANCHOR: env_cartpole_step
    fn step(&mut self, action: usize) -> Result<Step<Obs<Self>>> {
        check_action(&self.action_space, &action)?;
        self.phase.check_running()?;

        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
        // The operations are grouped as Gymnasium groups them, so the rounding is the same.
        let (cos, sin) = (theta.cos(), theta.sin());
        let temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sin) / TOTAL_MASS;
        let theta_acc = (GRAVITY * sin - cos * temp)
            / (LENGTH * (4.0 / 3.0 - MASS_POLE * (cos * cos) / TOTAL_MASS));
        let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS;

        // Explicit Euler: positions move with the old velocities.
        self.state = [
            x + TAU * x_dot,
            x_dot + TAU * x_acc,
            theta + TAU * theta_dot,
            theta_dot + TAU * theta_acc,
        ];

        let [x, _, theta, _] = self.state;
        let terminated = !(-X_THRESHOLD..=X_THRESHOLD).contains(&x)
            || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
        self.phase = Phase::after(terminated);
        Ok(Step {
            obs: self.observation(),
            reward: 1.0,
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }
    // ANCHOR_END: env_cartpole_step

    /// One line: a track with the cart's position and the pole's lean.
    fn render_ansi(&self) -> Option<String> {
        let [x, _, theta, _] = self.state;
        let width = 49usize;
        let col = (((x + X_THRESHOLD) / (2.0 * X_THRESHOLD)) * (width - 1) as f64)
            .round()
            .clamp(0.0, (width - 1) as f64) as usize;
        let mut track: Vec<char> = vec!['-'; width];
        track[col] = if theta < -0.02 {
            '\\'
        } else if theta > 0.02 {
            '/'
        } else {
            '|'
        };
        Some(format!(
            "[{}]  x={x:+.3} theta={:+.1} deg",
            track.into_iter().collect::<String>(),
            theta.to_degrees()
        ))
    }
}
