//! Gridworlds: FrozenLake-v1 and generated mazes.
//!
//! A map is a list of rows of tiles:
//!
//! | tile | meaning |
//! |---|---|
//! | `S` | the start |
//! | `F` | free (frozen) floor |
//! | `H` | a hole: the episode terminates |
//! | `G` | the goal: the episode terminates with the goal reward |
//! | `#` | a wall: moving into it leaves the agent where it is |
//!
//! Actions are Gymnasium's: `LEFT 0, DOWN 1, RIGHT 2, UP 3`. The observation is the index of
//! the agent's cell, `row * ncol + col` (a `Discrete(nrow * ncol)` space); wrap the env in
//! [`OneHotObservation`](crate::wrappers::OneHotObservation) for a one-hot vector. Moving
//! off the map also leaves the agent where it is.
//!
//! On slippery ice (FrozenLake's default) the move actually taken is `a` with probability
//! `success_rate` (1/3) and each of the two perpendicular moves `(a - 1) mod 4` and
//! `(a + 1) mod 4` with probability `(1 - success_rate) / 2`, exactly as Gymnasium does it.
//! The whole model is available as [`GridWorld::transitions`], so it can be solved by
//! [`GridWorld::value_iteration`].

use std::collections::VecDeque;
use std::fmt;

use rand::{RngExt, SeedableRng};

use crate::env::{check_action, seeded_rng, Env, EnvRng, Info, Phase, Step};
use crate::error::{EnvError, Result};
use crate::space::Discrete;

pub const LEFT: usize = 0;
pub const DOWN: usize = 1;
pub const RIGHT: usize = 2;
pub const UP: usize = 3;
/// Action names, indexed by action.
pub const ACTION_NAMES: [&str; 4] = ["Left", "Down", "Right", "Up"];

/// Gymnasium's FrozenLake 4x4 map.
pub const MAP_4X4: [&str; 4] = ["SFFF", "FHFH", "FFFH", "HFFG"];
/// Gymnasium's FrozenLake 8x8 map.
pub const MAP_8X8: [&str; 8] = [
    "SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG",
];

/// One cell of the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tile {
    Start,
    Free,
    Hole,
    Goal,
    Wall,
}

impl Tile {
    fn parse(c: char) -> Option<Tile> {
        Some(match c {
            'S' => Tile::Start,
            'F' | '.' => Tile::Free,
            'H' => Tile::Hole,
            'G' => Tile::Goal,
            '#' | 'W' => Tile::Wall,
            _ => return None,
        })
    }
    /// The map letter of this tile.
    pub fn letter(self) -> char {
        match self {
            Tile::Start => 'S',
            Tile::Free => 'F',
            Tile::Hole => 'H',
            Tile::Goal => 'G',
            Tile::Wall => '#',
        }
    }
    /// Whether entering this tile ends the episode.
    pub fn is_terminal(self) -> bool {
        matches!(self, Tile::Hole | Tile::Goal)
    }
}

/// The rules of a gridworld: slipperiness and rewards.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GridRules {
    /// Whether the ice is slippery (the intended move happens with `success_rate` only).
    pub is_slippery: bool,
    /// The probability of the intended move on slippery ice (Gymnasium: 1/3).
    pub success_rate: f64,
    /// Reward for entering the goal.
    pub goal_reward: f64,
    /// Reward for falling into a hole.
    pub hole_reward: f64,
    /// Subtracted from the reward of every move that does not reach the goal or a hole.
    pub step_penalty: f64,
}

impl Default for GridRules {
    /// FrozenLake-v1's rules: slippery, reward 1 at the goal and 0 elsewhere.
    fn default() -> Self {
        Self {
            is_slippery: true,
            success_rate: 1.0 / 3.0,
            goal_reward: 1.0,
            hole_reward: 0.0,
            step_penalty: 0.0,
        }
    }
}

impl GridRules {
    /// Deterministic moves, the given goal reward and step penalty, no reward for holes.
    pub fn deterministic(goal_reward: f64, step_penalty: f64) -> Self {
        Self {
            is_slippery: false,
            goal_reward,
            step_penalty,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.success_rate) {
            return Err(EnvError::config(format!(
                "success_rate must be in [0, 1], got {}",
                self.success_rate
            )));
        }
        for (name, v) in [
            ("goal_reward", self.goal_reward),
            ("hole_reward", self.hole_reward),
            ("step_penalty", self.step_penalty),
        ] {
            if !v.is_finite() {
                return Err(EnvError::config(format!("{name} must be finite, got {v}")));
            }
        }
        Ok(())
    }
}

/// One possible outcome of an action: Gymnasium's `(prob, next_state, reward, terminated)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Transition {
    pub prob: f64,
    pub next: usize,
    pub reward: f64,
    pub terminated: bool,
}

/// A gridworld with FrozenLake-v1 semantics.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GridWorld {
    tiles: Vec<Tile>,
    nrow: usize,
    ncol: usize,
    start: usize,
    rules: GridRules,
    /// `model[s * 4 + a]`: the outcomes of action `a` in state `s`.
    model: Vec<Vec<Transition>>,
    state: usize,
    last_action: Option<usize>,
    rng: EnvRng,
    phase: Phase,
    observation_space: Discrete,
    action_space: Discrete,
}

impl GridWorld {
    /// A gridworld from a map (rows of `S F H G #`, exactly one `S`, at least one `G`).
    pub fn new<S: AsRef<str>>(map: &[S], rules: GridRules) -> Result<Self> {
        rules.validate()?;
        let nrow = map.len();
        let ncol = map.first().map_or(0, |r| r.as_ref().chars().count());
        if nrow == 0 || ncol == 0 {
            return Err(EnvError::config("the map is empty"));
        }
        let mut tiles = Vec::with_capacity(nrow * ncol);
        for (r, row) in map.iter().enumerate() {
            let row = row.as_ref();
            if row.chars().count() != ncol {
                return Err(EnvError::config(format!(
                    "map row {r} has {} tiles, row 0 has {ncol}",
                    row.chars().count()
                )));
            }
            for (c, ch) in row.chars().enumerate() {
                let tile = Tile::parse(ch).ok_or_else(|| {
                    EnvError::config(format!(
                        "map row {r} column {c}: unknown tile '{ch}' (use S, F, H, G or #)"
                    ))
                })?;
                tiles.push(tile);
            }
        }
        let starts: Vec<usize> = (0..tiles.len())
            .filter(|&s| tiles[s] == Tile::Start)
            .collect();
        if starts.len() != 1 {
            return Err(EnvError::config(format!(
                "the map needs exactly one start 'S', found {}",
                starts.len()
            )));
        }
        if !tiles.contains(&Tile::Goal) {
            return Err(EnvError::config("the map has no goal 'G'"));
        }
        let mut world = Self {
            tiles,
            nrow,
            ncol,
            start: starts[0],
            rules,
            model: Vec::new(),
            state: starts[0],
            last_action: None,
            rng: seeded_rng(None),
            phase: Phase::NotStarted,
            observation_space: Discrete { n: nrow * ncol },
            action_space: Discrete { n: 4 },
        };
        world.model = (0..nrow * ncol * 4)
            .map(|i| world.outcomes(i / 4, i % 4))
            .collect();
        Ok(world)
    }

    /// FrozenLake-v1 with Gymnasium's `"4x4"` or `"8x8"` map.
    pub fn frozen_lake(map_name: &str, is_slippery: bool) -> Result<Self> {
        let rules = GridRules {
            is_slippery,
            ..GridRules::default()
        };
        match map_name {
            "4x4" => Self::new(&MAP_4X4, rules),
            "8x8" => Self::new(&MAP_8X8, rules),
            other => Err(EnvError::config(format!(
                "unknown FrozenLake map '{other}': map_name must be \"4x4\" or \"8x8\""
            ))),
        }
    }

    /// A generated maze (see [`MazeConfig`]).
    pub fn maze(config: &MazeConfig) -> Result<Self> {
        Self::new(&generate_maze(config)?, config.rules.clone())
    }

    // ANCHOR: env_grid_model
    /// The cell reached by moving from `s` in direction `a` (walls and edges stop the move).
    fn moved(&self, s: usize, a: usize) -> usize {
        let (r, c) = (s / self.ncol, s % self.ncol);
        let (r, c) = match a {
            LEFT => (r, c.saturating_sub(1)),
            DOWN => ((r + 1).min(self.nrow - 1), c),
            RIGHT => (r, (c + 1).min(self.ncol - 1)),
            _ => (r.saturating_sub(1), c),
        };
        let next = r * self.ncol + c;
        if self.tiles[next] == Tile::Wall {
            s
        } else {
            next
        }
    }

    /// Gymnasium's `P[s][a]`, built once.
    fn outcomes(&self, s: usize, a: usize) -> Vec<Transition> {
        if self.tiles[s].is_terminal() || self.tiles[s] == Tile::Wall {
            return vec![Transition {
                prob: 1.0,
                next: s,
                reward: 0.0,
                terminated: true,
            }];
        }
        let outcome = |b: usize, prob: f64| {
            let next = self.moved(s, b);
            let (reward, terminated) = match self.tiles[next] {
                Tile::Goal => (self.rules.goal_reward, true),
                Tile::Hole => (self.rules.hole_reward, true),
                _ => (-self.rules.step_penalty, false),
            };
            Transition {
                prob,
                next,
                reward,
                terminated,
            }
        };
        if self.rules.is_slippery {
            let fail = (1.0 - self.rules.success_rate) / 2.0;
            [
                ((a + 3) % 4, fail),
                (a, self.rules.success_rate),
                ((a + 1) % 4, fail),
            ]
            .into_iter()
            .map(|(b, p)| outcome(b, p))
            .collect()
        } else {
            vec![outcome(a, 1.0)]
        }
    }
    // ANCHOR_END: env_grid_model

    /// The possible outcomes of action `a` in state `s`.
    pub fn transitions(&self, s: usize, a: usize) -> &[Transition] {
        &self.model[s * 4 + a]
    }
    pub fn nrow(&self) -> usize {
        self.nrow
    }
    pub fn ncol(&self) -> usize {
        self.ncol
    }
    pub fn rules(&self) -> &GridRules {
        &self.rules
    }
    /// The tile of state `s`.
    pub fn tile(&self, s: usize) -> Tile {
        self.tiles[s]
    }
    /// The start state.
    pub fn start(&self) -> usize {
        self.start
    }
    /// The agent's current state.
    pub fn state(&self) -> usize {
        self.state
    }
    /// The map as rows of letters.
    pub fn map(&self) -> Vec<String> {
        self.tiles
            .chunks(self.ncol)
            .map(|row| row.iter().map(|t| t.letter()).collect())
            .collect()
    }

    // ANCHOR: env_value_iteration
    /// Solves the gridworld by value iteration with discount `gamma`, until no value changes
    /// by more than `tol`. Returns the optimal state values and a greedy policy.
    pub fn value_iteration(&self, gamma: f64, tol: f64) -> (Vec<f64>, Vec<usize>) {
        let n = self.tiles.len();
        let mut v = vec![0.0; n];
        let q = |v: &[f64], s: usize, a: usize| -> f64 {
            self.transitions(s, a)
                .iter()
                .map(|t| t.prob * (t.reward + if t.terminated { 0.0 } else { gamma * v[t.next] }))
                .sum()
        };
        for _ in 0..100_000 {
            let mut delta: f64 = 0.0;
            for s in 0..n {
                let best = (0..4)
                    .map(|a| q(&v, s, a))
                    .fold(f64::NEG_INFINITY, f64::max);
                delta = delta.max((best - v[s]).abs());
                v[s] = best;
            }
            if delta < tol {
                break;
            }
        }
        let policy = (0..n)
            .map(|s| {
                (0..4).fold(0, |best, a| {
                    if q(&v, s, a) > q(&v, s, best) + 1e-12 {
                        a
                    } else {
                        best
                    }
                })
            })
            .collect();
        (v, policy)
    }
    // ANCHOR_END: env_value_iteration
}

impl Env for GridWorld {
    type ObsSpace = Discrete;
    type ActSpace = Discrete;

    fn observation_space(&self) -> &Discrete {
        &self.observation_space
    }
    fn action_space(&self) -> &Discrete {
        &self.action_space
    }
    fn reset(&mut self, seed: Option<u64>) -> (usize, Info) {
        if seed.is_some() {
            self.rng = seeded_rng(seed);
        }
        self.state = self.start;
        self.last_action = None;
        self.phase = Phase::Running;
        (self.state, Info::with("prob", 1.0))
    }
    fn step(&mut self, action: usize) -> Result<Step<usize>> {
        check_action(&self.action_space, &action)?;
        self.phase.check_running()?;
        let outcomes = &self.model[self.state * 4 + action];
        // Gymnasium's categorical_sample: the first outcome whose cumulative probability
        // exceeds a uniform draw.
        let t = if outcomes.len() == 1 {
            outcomes[0]
        } else {
            let u: f64 = self.rng.random();
            let mut acc = 0.0;
            *outcomes
                .iter()
                .find(|t| {
                    acc += t.prob;
                    acc > u
                })
                .unwrap_or(&outcomes[outcomes.len() - 1])
        };
        self.state = t.next;
        self.last_action = Some(action);
        self.phase = Phase::after(t.terminated);
        Ok(Step {
            obs: t.next,
            reward: t.reward,
            terminated: t.terminated,
            truncated: false,
            info: Info::with("prob", t.prob),
        })
    }
    /// Gymnasium's text rendering: the last action, then the map with the agent's cell
    /// highlighted in red.
    fn render_ansi(&self) -> Option<String> {
        let mut out = match self.last_action {
            Some(a) => format!("  ({})\n", ACTION_NAMES[a]),
            None => "\n".to_string(),
        };
        for r in 0..self.nrow {
            for c in 0..self.ncol {
                let s = r * self.ncol + c;
                let letter = self.tiles[s].letter();
                if s == self.state {
                    out.push_str(&format!("\x1b[41m{letter}\x1b[0m"));
                } else {
                    out.push(letter);
                }
            }
            out.push('\n');
        }
        Some(out)
    }
}

impl fmt::Display for GridWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.map().join("\n"))
    }
}

/// The largest number of rows or columns of a generated maze.
pub const MAX_MAZE_SIDE: usize = 64;

/// How many cells [`generate_maze`] may draw, over all its attempts, before it gives up:
/// `MAZE_DRAW_BUDGET / (rows * cols)` attempts (312,500 for an 8x8 maze, 4,882 for 64x64),
/// a fraction of a second in a release build.
pub const MAZE_DRAW_BUDGET: usize = 20_000_000;

/// How to generate a maze: a `rows x cols` grid (each side 1 to [`MAX_MAZE_SIDE`], at least
/// 2 cells), start at the top-left, goal at the bottom-right, each other cell an obstacle
/// with probability `obstacle_prob`; regenerated (with the same seed stream) until a path
/// from start to goal exists, or an error once [`MAZE_DRAW_BUDGET`] cells have been drawn.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MazeConfig {
    pub rows: usize,
    pub cols: usize,
    pub seed: u64,
    /// The probability that a cell is an obstacle (at most 0.75).
    pub obstacle_prob: f64,
    /// Obstacles are holes (`H`, falling in ends the episode) instead of walls (`#`).
    pub holes: bool,
    /// Slipperiness and rewards.
    pub rules: GridRules,
}

impl Default for MazeConfig {
    /// An 8x8 deterministic walled maze, goal reward 1, step penalty 0.01.
    fn default() -> Self {
        Self {
            rows: 8,
            cols: 8,
            seed: 0,
            obstacle_prob: 0.3,
            holes: false,
            rules: GridRules::deterministic(1.0, 0.01),
        }
    }
}

impl MazeConfig {
    /// A `size x size` maze from `seed`, with the default rules.
    pub fn new(size: usize, seed: u64) -> Self {
        Self {
            rows: size,
            cols: size,
            seed,
            ..Self::default()
        }
    }

    /// Checks the size and the obstacle probability.
    fn validate(&self) -> Result<()> {
        let (rows, cols) = (self.rows, self.cols);
        if rows == 0 || cols == 0 || rows > MAX_MAZE_SIDE || cols > MAX_MAZE_SIDE {
            return Err(EnvError::config(format!(
                "a maze needs rows and cols from 1 to {MAX_MAZE_SIDE}, got {rows}x{cols}"
            )));
        }
        if rows * cols < 2 {
            return Err(EnvError::config(format!(
                "a maze needs at least 2 cells (a start and a goal), got {rows}x{cols}"
            )));
        }
        if !(0.0..=0.75).contains(&self.obstacle_prob) {
            return Err(EnvError::config(format!(
                "obstacle_prob must be in [0, 0.75], got {}",
                self.obstacle_prob
            )));
        }
        Ok(())
    }

    /// The error when no attempt had a path: what was tried and what to change.
    fn no_path_error(&self, attempts: usize) -> EnvError {
        let advice = if self.obstacle_prob > 0.4 {
            "try obstacle_prob <= 0.4 (above it, a path across a large maze is rare) or a smaller maze"
        } else {
            "try a lower obstacle_prob or a smaller maze"
        };
        EnvError::config(format!(
            "no path from S to G in {attempts} random {}x{} mazes with obstacle_prob={}; {advice}",
            self.rows, self.cols, self.obstacle_prob
        ))
    }
}

// ANCHOR: env_generate_maze
/// Generates a maze map that always has a path from `S` to `G`, or an error if
/// `MAZE_DRAW_BUDGET / (rows * cols)` attempts found none.
pub fn generate_maze(config: &MazeConfig) -> Result<Vec<String>> {
    config.validate()?;
    let (rows, cols) = (config.rows, config.cols);
    let obstacle = if config.holes { 'H' } else { '#' };
    let mut rng = EnvRng::seed_from_u64(config.seed);
    let attempts = MAZE_DRAW_BUDGET / (rows * cols);
    for _ in 0..attempts {
        let mut grid: Vec<Vec<char>> = (0..rows)
            .map(|_| {
                (0..cols)
                    .map(|_| {
                        if rng.random_bool(config.obstacle_prob) {
                            obstacle
                        } else {
                            'F'
                        }
                    })
                    .collect()
            })
            .collect();
        grid[0][0] = 'S';
        grid[rows - 1][cols - 1] = 'G';
        if has_path(&grid) {
            return Ok(grid.into_iter().map(String::from_iter).collect());
        }
    }
    Err(config.no_path_error(attempts))
}
// ANCHOR_END: env_generate_maze

/// Breadth-first search from the top-left cell to a `G` through non-obstacle cells.
fn has_path(grid: &[Vec<char>]) -> bool {
    let (rows, cols) = (grid.len(), grid[0].len());
    let mut seen = vec![vec![false; cols]; rows];
    let mut queue = VecDeque::from([(0usize, 0usize)]);
    seen[0][0] = true;
    while let Some((r, c)) = queue.pop_front() {
        if grid[r][c] == 'G' {
            return true;
        }
        let neighbours = [
            (r.wrapping_sub(1), c),
            (r + 1, c),
            (r, c.wrapping_sub(1)),
            (r, c + 1),
        ];
        for (nr, nc) in neighbours {
            if nr < rows && nc < cols && !seen[nr][nc] && !matches!(grid[nr][nc], '#' | 'H') {
                seen[nr][nc] = true;
                queue.push_back((nr, nc));
            }
        }
    }
    false
}
