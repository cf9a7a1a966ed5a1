//! Assignment (d)'s cases: groups of rewards with each baseline and each scaling (eq.
//! GRPO-1), and per-token log-probabilities with their three KL estimates (eq. GRPO-3).

use policy_lab::core::advantage::{group_advantages, GroupBaseline, ScaleRewards};
use policy_lab::core::objective::{kl, KlEstimator};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{matrix, values};

/// The file that holds assignment (d)'s cases in a case folder.
pub const FILE: &str = "d_grpo_k3.json";

/// Consecutive groups of `group_size` rewards and their advantages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupCase {
    pub rewards: Vec<f32>,
    pub group_size: usize,
    pub baseline: GroupBaseline,
    pub scale: ScaleRewards,
    pub advantages: Vec<f32>,
}

impl GroupCase {
    /// policy-lab's `group_advantages` of this case (the student's, in a handout).
    pub fn advantages(&self) -> Vec<f32> {
        group_advantages(&self.rewards, self.group_size, self.baseline, self.scale)
    }
}

/// `[rows, cols]` log-probabilities of the policy and the reference, and the estimates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KlCase {
    pub rows: usize,
    pub cols: usize,
    pub logp: Vec<f32>,
    pub ref_logp: Vec<f32>,
    pub estimator: KlEstimator,
    pub kl: Vec<f32>,
}

impl KlCase {
    /// policy-lab's `kl` of this case.
    pub fn kl(&self) -> Vec<f32> {
        let (r, c) = (self.rows, self.cols);
        values(kl(
            matrix(r, c, &self.logp),
            matrix(r, c, &self.ref_logp),
            self.estimator,
        ))
    }
}

/// Assignment (d)'s cases for `seed`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GrpoCases {
    pub seed: u64,
    pub groups: Vec<GroupCase>,
    pub kl: Vec<KlCase>,
}

/// Every baseline and scaling twice (groups of 2 to 8, rewards 0/1 as a verifier gives them
/// or continuous, one group in three all equal); 3 KL cases per estimator.
pub fn cases(seed: u64) -> GrpoCases {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xd);
    let mut groups = Vec::new();
    for baseline in [GroupBaseline::Mean, GroupBaseline::LeaveOneOut] {
        for scale in [ScaleRewards::Group, ScaleRewards::Batch, ScaleRewards::None] {
            for _ in 0..2 {
                let group_size = rng.random_range(2..=8usize);
                let n_groups = rng.random_range(1..=4usize);
                let binary = rng.random_range(0..2) == 0;
                let mut rewards = Vec::new();
                for _ in 0..n_groups {
                    let flat = rng.random_range(0..3) == 0;
                    let first: f32 = rng.random_range(0.0..1.0);
                    for _ in 0..group_size {
                        let r: f32 = if flat {
                            first
                        } else {
                            rng.random_range(0.0..1.0)
                        };
                        rewards.push(if binary { (r > 0.5) as u8 as f32 } else { r });
                    }
                }
                let mut case = GroupCase {
                    rewards,
                    group_size,
                    baseline,
                    scale,
                    advantages: vec![],
                };
                case.advantages = case.advantages();
                groups.push(case);
            }
        }
    }
    let mut kls = Vec::new();
    for estimator in [KlEstimator::K1, KlEstimator::K2, KlEstimator::K3] {
        for _ in 0..3 {
            let (rows, cols) = (rng.random_range(1..=6usize), rng.random_range(1..=12usize));
            let logp: Vec<f32> = (0..rows * cols)
                .map(|_| rng.random_range(-4.0..-0.01))
                .collect();
            let ref_logp = logp
                .iter()
                .map(|l| (l + rng.random_range(-1.0..1.0f32)).min(0.0))
                .collect();
            let mut case = KlCase {
                rows,
                cols,
                logp,
                ref_logp,
                estimator,
                kl: vec![],
            };
            case.kl = case.kl();
            kls.push(case);
        }
    }
    GrpoCases {
        seed,
        groups,
        kl: kls,
    }
}
