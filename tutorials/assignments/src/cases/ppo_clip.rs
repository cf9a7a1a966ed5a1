//! Assignment (b)'s cases: random minibatches of log-probabilities and advantages, with
//! symmetric and asymmetric (clip-higher) clip ranges, and the ratios and per-token losses
//! of eqs. (PPO-1, PPO-2).

use policy_lab::core::objective::{clipped_surrogate, ratio};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{matrix, values};

/// The file that holds assignment (b)'s cases in a case folder.
pub const FILE: &str = "b_ppo_clip.json";

/// One minibatch, `[rows, cols]` row-major, and what policy-lab computes for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClipCase {
    pub rows: usize,
    pub cols: usize,
    pub logp: Vec<f32>,
    pub old_logp: Vec<f32>,
    pub advantages: Vec<f32>,
    pub eps_low: f32,
    pub eps_high: f32,
    /// Eq. (PPO-1).
    pub ratio: Vec<f32>,
    /// Eq. (PPO-2), per token.
    pub loss: Vec<f32>,
}

impl ClipCase {
    /// policy-lab's `ratio` of this case (the student's, in a handout).
    pub fn ratio(&self) -> Vec<f32> {
        let (r, c) = (self.rows, self.cols);
        values(ratio(
            matrix(r, c, &self.logp),
            matrix(r, c, &self.old_logp),
        ))
    }

    /// policy-lab's `clipped_surrogate` of this case, from its `ratio`.
    pub fn loss(&self) -> Vec<f32> {
        let (r, c) = (self.rows, self.cols);
        let ratio = ratio(matrix(r, c, &self.logp), matrix(r, c, &self.old_logp));
        values(clipped_surrogate(
            ratio,
            matrix(r, c, &self.advantages),
            self.eps_low,
            self.eps_high,
        ))
    }
}

/// Assignment (b)'s cases for `seed`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClipCases {
    pub seed: u64,
    pub cases: Vec<ClipCase>,
}

/// 12 minibatches of 1 to 8 rows and 1 to 16 columns; the new log-probabilities within 0.5
/// of the old ones, so that a good share of ratios lands on each side of the clip range.
/// The first half clip symmetrically (0.1 or 0.2), the second half with a higher upper
/// range (DAPO's 0.28).
pub fn cases(seed: u64) -> ClipCases {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xb);
    let cases = (0..12)
        .map(|i| {
            let (rows, cols) = (rng.random_range(1..=8usize), rng.random_range(1..=16usize));
            let n = rows * cols;
            let old_logp: Vec<f32> = (0..n).map(|_| rng.random_range(-3.0..-0.05)).collect();
            let logp = old_logp
                .iter()
                .map(|o| o + rng.random_range(-0.5..0.5))
                .collect();
            let advantages = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
            let eps_low = [0.1, 0.2][rng.random_range(0..2)];
            let eps_high = if i < 6 { eps_low } else { 0.28 };
            let mut case = ClipCase {
                rows,
                cols,
                logp,
                old_logp,
                advantages,
                eps_low,
                eps_high,
                ratio: vec![],
                loss: vec![],
            };
            case.ratio = case.ratio();
            case.loss = case.loss();
            case
        })
        .collect();
    ClipCases { seed, cases }
}
