//! A model's completions of a dataset's prompts, scored by reward functions: `lm eval
//! --dataset` (greedy, or pass@k with `k` samples) and the held-out measure of `lm grpo
//! --dataset`.

use burn::tensor::backend::Backend;

use super::error::LmError;
use super::generate::{complete, SamplingConfig};
use super::model::Transformer;
use super::rewards::TextRewards;
use super::rollout::TextEnv;
use super::task::Accuracy;
use super::tokenizer::Tokenizer;

/// What a model's completions of a dataset's prompts scored (`lm eval --dataset`, and the
/// held-out measure of `lm grpo --dataset`): `k` completions of each prompt, greedy when
/// `k` is 1.
#[derive(Clone, Debug, Default)]
pub struct DatasetScores {
    /// `(name, mean)` of each reward function over every completion, in order.
    pub means: Vec<(String, f64)>,
    /// The mean weighted reward.
    pub mean_reward: f64,
    /// The completions' mean length in tokens (EOS included where one came).
    pub mean_tokens: f64,
    /// The share of prompts with at least one right completion among their `k` (pass@k;
    /// with `n = k` samples the unbiased estimator is this share), and the mean share of
    /// right completions (mean@k). Right: the accuracy (or equation) reward is 1, or the
    /// first function's when neither is used.
    pub pass_at_k: f64,
    pub mean_at_k: f64,
    pub k: usize,
    /// `(prompt as the model read it, completion)`, the `k` of each prompt together, in
    /// the dataset's order.
    pub completions: Vec<(String, String)>,
    /// Each completion's rewards, as `means` orders the functions.
    pub rewards: Vec<Vec<f32>>,
}

impl DatasetScores {
    /// The run's held-out measure: the share of right completions, the format reward's
    /// mean (0 without one), the mean reward.
    pub fn accuracy(&self) -> Accuracy {
        let format = self.means.iter().find(|(n, _)| n == "format");
        Accuracy {
            problems: self.completions.len() / self.k.max(1),
            accuracy: self.mean_at_k,
            format: format.map_or(0.0, |(_, m)| *m),
            mean_reward: self.mean_reward,
        }
    }
}

/// `k` completions of each of the first `limit` (or all) prompts of `rewards.task`, sampled
/// with `sampling` (greedy: `SamplingConfig::greedy`, with `k` = 1), in batches of 32 prompts,
/// scored by `rewards`; `after_chunk(prompts done, prompts in all)` after each batch.
pub fn evaluate_dataset<B: Backend>(
    model: &Transformer<B>,
    tokenizer: &impl Tokenizer,
    rewards: &TextRewards,
    (sampling, k): (&SamplingConfig, usize),
    limit: Option<usize>,
    rng: &mut impl rand::Rng,
    after_chunk: &mut dyn FnMut(usize, usize),
) -> Result<DatasetScores, LmError> {
    let task = &rewards.task;
    let k = k.max(1);
    let n = task.len().min(limit.unwrap_or(usize::MAX));
    let mut rows = Vec::with_capacity(n * k);
    let mut ids = Vec::with_capacity(n * k);
    let mut prompts = Vec::with_capacity(n * k);
    for row in 0..n {
        let mut t = task.clone();
        let prompt = t.show(row);
        let encoded = t.encode(tokenizer, &prompt)?;
        for _ in 0..k {
            rows.push(Some(row));
            ids.push(encoded.clone());
            prompts.push(prompt.clone());
        }
    }
    let eos = tokenizer.eos_id();
    let (mut texts, mut lengths) = (Vec::with_capacity(n * k), Vec::with_capacity(n * k));
    for (i, chunk) in ids.chunks(32 * k).enumerate() {
        for tokens in complete(model, tokenizer, chunk, sampling, rng)?.tokens {
            lengths.push(tokens.len());
            let text: Vec<u32> = tokens.into_iter().filter(|&t| t != eos).collect();
            texts.push(tokenizer.decode(&text));
        }
        after_chunk(((i + 1) * 32).min(n), n);
    }
    let scores = rewards.score(&rows, &texts)?;
    let (total, per_function) = (scores.total, scores.per_function);
    let count = texts.len().max(1) as f64;
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / count;
    // Which function says a completion is right.
    let judge = per_function
        .iter()
        .position(|(name, _)| name == "accuracy" || name == "equation")
        .unwrap_or(0);
    let right: Vec<bool> = match per_function.get(judge) {
        Some((_, r)) => r.iter().map(|&x| x >= 1.0).collect(),
        None => vec![false; texts.len()],
    };
    let groups = right.chunks(k);
    let prompts_n = groups.len().max(1) as f64;
    let pass_at_k = right.chunks(k).filter(|g| g.iter().any(|&r| r)).count() as f64 / prompts_n;
    let mean_at_k = right.iter().filter(|&&r| r).count() as f64 / count;
    Ok(DatasetScores {
        means: per_function
            .iter()
            .map(|(name, r)| (name.clone(), mean(r)))
            .collect(),
        mean_reward: mean(&total),
        mean_tokens: lengths.iter().sum::<usize>() as f64 / count,
        pass_at_k,
        mean_at_k,
        k,
        rewards: (0..texts.len())
            .map(|i| per_function.iter().map(|(_, r)| r[i]).collect())
            .collect(),
        completions: prompts.into_iter().zip(texts).collect(),
    })
}
