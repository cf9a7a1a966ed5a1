//! Assignment (g)'s cases, the language-model rung: per-token log-probabilities picked out of
//! random logits, the scoring batch and completion mask of padded completions, and the GRPO
//! loss aggregation of each `loss_type` (eq. GRPO-4).

use burn::tensor::{Int, Tensor, TensorData};
use policy_lab::algos::grpo::{GrpoUpdate, LossType};
use policy_lab::backend::Inference;
use policy_lab::core::objective::aggregate;
use policy_lab::lm::generate::{completion_batch, selective_log_softmax};
use policy_lab::lm::model::Batch;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{matrix, values};

/// The file that holds assignment (g)'s cases in a case folder.
pub const FILE: &str = "g_lm_loss.json";

/// `[rows, tokens, vocab]` logits (row-major), a target token per position, and its
/// log-probability `log softmax(logits)[target]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogpCase {
    pub rows: usize,
    pub tokens: usize,
    pub vocab: usize,
    pub logits: Vec<f32>,
    pub targets: Vec<i64>,
    pub logp: Vec<f32>,
}

impl LogpCase {
    /// policy-lab's `selective_log_softmax` of this case (the student's, in a handout).
    pub fn logp(&self) -> Vec<f32> {
        let (r, t, v) = (self.rows, self.tokens, self.vocab);
        let device = Default::default();
        let logits = Tensor::<Inference, 3>::from_data(
            TensorData::new(self.logits.clone(), [r, t, v]),
            &device,
        );
        let targets = Tensor::<Inference, 3, Int>::from_data(
            TensorData::new(self.targets.clone(), [r, t, 1]),
            &device,
        );
        values(selective_log_softmax(logits, targets))
    }
}

/// Prompts and completions of several lengths, and the scoring batch policy-lab builds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchCase {
    pub prompts: Vec<Vec<u32>>,
    pub completions: Vec<Vec<u32>>,
    pub pad: u32,
    pub tokens: Vec<Vec<u32>>,
    pub valid: Vec<Vec<bool>>,
    pub targets: Vec<i64>,
    pub mask: Vec<f32>,
}

impl BatchCase {
    /// policy-lab's `completion_batch` of this case: `(tokens, valid, targets, mask)`.
    #[allow(clippy::type_complexity)]
    pub fn batch(&self) -> (Vec<Vec<u32>>, Vec<Vec<bool>>, Vec<i64>, Vec<f32>) {
        let prompts = Batch::left_padded(&self.prompts, self.pad);
        let (batch, targets, mask) = completion_batch(prompts, &self.completions, self.pad);
        (batch.tokens, batch.valid, targets, mask)
    }
}

/// `[rows, tokens]` per-token losses, a completion mask, and the one number each
/// `loss_type` makes of them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AggregateCase {
    pub rows: usize,
    pub tokens: usize,
    pub per_token: Vec<f32>,
    pub mask: Vec<f32>,
    pub loss_type: LossType,
    pub loss: f32,
}

impl AggregateCase {
    /// policy-lab's `aggregate` of this case, as GRPO's `loss_type` asks for it.
    pub fn loss(&self) -> f32 {
        let how = GrpoUpdate {
            loss_type: self.loss_type,
            ..GrpoUpdate::default()
        }
        .aggregation(self.rows, self.tokens);
        let (r, t) = (self.rows, self.tokens);
        values(aggregate(
            matrix(r, t, &self.per_token),
            matrix(r, t, &self.mask),
            how,
        ))[0]
    }
}

/// Assignment (g)'s cases for `seed`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LmCases {
    pub seed: u64,
    pub logp: Vec<LogpCase>,
    pub batch: Vec<BatchCase>,
    pub aggregate: Vec<AggregateCase>,
}

/// A completion mask as padding makes it: each row's first `len` tokens are real (at least
/// one row as long as the batch).
fn mask(rng: &mut StdRng, rows: usize, tokens: usize) -> Vec<f32> {
    let longest = rng.random_range(0..rows);
    (0..rows)
        .flat_map(|r| {
            let len = if r == longest {
                tokens
            } else {
                rng.random_range(0..=tokens)
            };
            (0..tokens).map(move |j| (j < len) as u8 as f32)
        })
        .collect::<Vec<_>>()
}

/// 6 log-probability cases (vocabularies of 3 to 40, logits up to +-30 so that a naive
/// `exp` overflows nothing but a careless one loses precision), 6 batches of 1 to 5 rows,
/// 3 aggregation cases per `loss_type`.
pub fn cases(seed: u64) -> LmCases {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9);
    let logp = (0..6)
        .map(|i| {
            let (rows, tokens, vocab) = (
                rng.random_range(1..=4usize),
                rng.random_range(1..=6usize),
                rng.random_range(3..=40usize),
            );
            let scale = if i % 2 == 0 { 3.0 } else { 30.0 };
            let mut case = LogpCase {
                rows,
                tokens,
                vocab,
                logits: (0..rows * tokens * vocab)
                    .map(|_| rng.random_range(-scale..scale))
                    .collect(),
                targets: (0..rows * tokens)
                    .map(|_| rng.random_range(0..vocab as i64))
                    .collect(),
                logp: vec![],
            };
            case.logp = case.logp();
            case
        })
        .collect();
    let batch = (0..6)
        .map(|_| {
            let rows = rng.random_range(1..=5usize);
            let pad = 0;
            let mut draw = |max: usize, min: usize| -> Vec<Vec<u32>> {
                (0..rows)
                    .map(|_| {
                        let len = rng.random_range(min..=max);
                        (0..len).map(|_| rng.random_range(1..20u32)).collect()
                    })
                    .collect()
            };
            let prompts = draw(6, 1);
            let completions = draw(5, 0);
            let mut case = BatchCase {
                prompts,
                completions,
                pad,
                tokens: vec![],
                valid: vec![],
                targets: vec![],
                mask: vec![],
            };
            (case.tokens, case.valid, case.targets, case.mask) = case.batch();
            case
        })
        .collect();
    let mut aggregates = Vec::new();
    for loss_type in [
        LossType::Grpo,
        LossType::Bnpo,
        LossType::DrGrpo,
        LossType::Dapo,
    ] {
        for _ in 0..3 {
            let (rows, tokens) = (rng.random_range(1..=6usize), rng.random_range(1..=8usize));
            let mut case = AggregateCase {
                rows,
                tokens,
                per_token: (0..rows * tokens)
                    .map(|_| rng.random_range(-2.0..2.0))
                    .collect(),
                mask: mask(&mut rng, rows, tokens),
                loss_type,
                loss: 0.0,
            };
            case.loss = case.loss();
            aggregates.push(case);
        }
    }
    LmCases {
        seed,
        logp,
        batch,
        aggregate: aggregates,
    }
}
