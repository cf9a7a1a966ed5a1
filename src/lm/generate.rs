//! Sampling completions from a [`Transformer`], and scoring given completions token by token.
//!
//! A language model is a policy whose actions are tokens. [`generate`] plays the rollout:
//! all prompts at once (left-padded), one token per step with the KV cache (through
//! [`super::infer::Decoder`], the forward pass without autodiff), each row stopping at its
//! EOS; it records `log pi_old(token)` of every sampled token. Like Hugging
//! Face TRL, log-probabilities are those of `logits / temperature` (before top-k and top-p
//! filtering, which only change what is sampled). [`completion_log_probs`] recomputes them
//! with gradients, as `[sequences, tokens]` plus a mask: the batch the objective functions
//! take.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::infer::Decoder;
use super::model::{Batch, KvCache, ModelError, Transformer};
use crate::kernels;

/// How completions are sampled (names as in Hugging Face `generate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Logits are divided by this before the softmax; must be > 0.
    pub temperature: f32,
    /// Sample only among the `k` most likely tokens (`Some(1)` is greedy decoding).
    pub top_k: Option<usize>,
    /// Sample only among the most likely tokens whose probabilities add up to `p`.
    pub top_p: Option<f32>,
    pub max_new_tokens: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: None,
            top_p: None,
            max_new_tokens: 8,
        }
    }
}

impl SamplingConfig {
    /// Greedy decoding: always the most likely token.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            top_k: Some(1),
            max_new_tokens,
            ..Self::default()
        }
    }
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let bad = |m: &str| Err(crate::ConfigError(format!("sampling: {m}")));
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad("temperature must be > 0");
        }
        if self.top_k == Some(0) {
            return bad("top_k must be at least 1");
        }
        if self.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            return bad("top_p must be in (0, 1]");
        }
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1");
        }
        Ok(())
    }
}

/// What [`generate`] returns, one entry per prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Completions {
    /// The sampled tokens, the EOS included where one came.
    pub tokens: Vec<Vec<u32>>,
    /// `log pi_old` of each sampled token, from `logits / temperature`.
    pub logp: Vec<Vec<f32>>,
    /// Whether the row ended with EOS (otherwise it ran out of `max_new_tokens`).
    pub finished: Vec<bool>,
}

/// Samples one completion per prompt; see the module docs. With `on_token`, calls
/// `on_token(row, token)` as each token is sampled (to print a completion as it comes, as
/// transformers' `streamer`).
pub fn generate<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    pad: u32,
    eos: u32,
    config: &SamplingConfig,
    rng: &mut impl Rng,
    mut on_token: Option<&mut dyn FnMut(usize, u32)>,
) -> Result<Completions, ModelError> {
    let rows = prompts.len();
    let vocab = model.vocab_size();
    let mut batch = Batch::left_padded(prompts, pad);
    // The forward pass without autodiff: on the CPU a fused one with a preallocated cache.
    let mut decoder = Decoder::new(model, rows, batch.len() + config.max_new_tokens);
    let mut out = Completions {
        tokens: vec![Vec::new(); rows],
        logp: vec![Vec::new(); rows],
        finished: vec![false; rows],
    };
    // ANCHOR: lm_generate_loop
    for _ in 0..config.max_new_tokens {
        let mut last = decoder.last_logits(&batch)?;
        last.iter_mut().for_each(|l| *l /= config.temperature);
        let mut next = Batch {
            tokens: vec![vec![pad]; rows],
            valid: vec![vec![false]; rows],
        };
        for r in 0..rows {
            if out.finished[r] {
                continue;
            }
            let (token, logp) = sample_token(&last[r * vocab..(r + 1) * vocab], config, rng);
            out.tokens[r].push(token);
            out.logp[r].push(logp);
            if let Some(f) = on_token.as_mut() {
                f(r, token);
            }
            out.finished[r] = token == eos;
            next.tokens[r][0] = token;
            next.valid[r][0] = true;
        }
        if out.finished.iter().all(|f| *f) {
            break;
        }
        batch = next;
    }
    // ANCHOR_END: lm_generate_loop
    Ok(out)
}

/// [`generate`] with the tokenizer's padding and EOS, and no callback: the call of every
/// evaluation (`lm eval`, the held-out accuracy).
pub fn complete<B: Backend>(
    model: &Transformer<B>,
    tokenizer: &impl super::tokenizer::Tokenizer,
    prompts: &[Vec<u32>],
    config: &SamplingConfig,
    rng: &mut impl Rng,
) -> Result<Completions, ModelError> {
    let (pad, eos) = (tokenizer.pad_id(), tokenizer.eos_id());
    generate(model, prompts, pad, eos, config, rng, None)
}

/// Samples a token from one row of `logits / temperature`; returns it and its
/// log-probability under the unfiltered softmax.
// ANCHOR: lm_sample_token
pub fn sample_token(scaled: &[f32], config: &SamplingConfig, rng: &mut impl Rng) -> (u32, f32) {
    let max = scaled.iter().fold(f32::NEG_INFINITY, |m, x| m.max(*x));
    let log_z = max + scaled.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
    // Candidates, most likely first (ties: the lower id first); top-k and top-p cut the list.
    // With top-k, only the k best are sorted, after a selection puts them in front.
    let most_likely_first = |a: &usize, b: &usize| scaled[*b].total_cmp(&scaled[*a]).then(a.cmp(b));
    let mut order: Vec<usize> = (0..scaled.len()).collect();
    if let Some(k) = config.top_k.map(|k| k.max(1)).filter(|&k| k < order.len()) {
        order.select_nth_unstable_by(k - 1, most_likely_first);
        order.truncate(k);
    }
    order.sort_unstable_by(most_likely_first);
    if let Some(p) = config.top_p {
        let mut mass = 0.0;
        let keep = order
            .iter()
            .position(|&i| {
                mass += (scaled[i] - log_z).exp();
                mass >= p
            })
            .map_or(order.len(), |i| i + 1);
        order.truncate(keep);
    }
    let weights: Vec<f32> = order.iter().map(|&i| (scaled[i] - max).exp()).collect();
    let mut u = rng.random::<f32>() * weights.iter().sum::<f32>();
    let mut pick = order[order.len() - 1];
    for (&i, w) in order.iter().zip(&weights) {
        if u < *w {
            pick = i;
            break;
        }
        u -= w;
    }
    (pick as u32, scaled[pick] - log_z)
}
// ANCHOR_END: lm_sample_token

/// How many positions' full-vocabulary logits [`completion_log_probs`] makes at once.
pub const LOGIT_CHUNK_POSITIONS: usize = 256;

/// `log softmax(logits)[target]` without the full `log_softmax` tensor: the target's logit
/// minus the log-sum-exp of its row (the max subtracted first, for stability, and held
/// constant: it cancels in the gradient). `logits: [n, t, vocab]`, `targets: [n, t, 1]` →
/// `[n, t, 1]`. (TRL's `selective_log_softmax`.)
// ANCHOR: grpolm_selective_log_softmax
pub fn selective_log_softmax<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 3, Int>,
) -> Tensor<B, 3> {
    // Assignment (g) begins: each target's log-probability, without forming log_softmax.
    let max = logits.clone().detach().max_dim(2);
    let log_z = (logits.clone() - max.clone()).exp().sum_dim(2).log() + max;
    logits.gather(2, targets) - log_z
    // Assignment (g) ends.
}
// ANCHOR_END: grpolm_selective_log_softmax

// ANCHOR: lm_completion_batch
/// The model's input for scoring completions: each row is its left-padded prompt (from
/// `prompts`, all of one length `p`), then its completion, right-padded with `pad` to the
/// longest completion `c`. Returns that batch (tokens and `valid`, `p + c` per row, `valid`
/// false on every pad), the targets (`rows * c`, row-major: completion token `j` of each row,
/// `pad` past its end) and the completion mask of the same layout (`1` on real completion
/// tokens, `0` on padding).
pub fn completion_batch(
    prompts: Batch,
    completions: &[Vec<u32>],
    pad: u32,
) -> (Batch, Vec<i64>, Vec<f32>) {
    // Assignment (g) begins: append each completion and its padding; targets and mask.
    let c_len = completions.iter().map(Vec::len).max().unwrap_or(0);
    let mut batch = prompts;
    let mut targets = Vec::with_capacity(completions.len() * c_len);
    let mut mask = Vec::with_capacity(completions.len() * c_len);
    for (r, completion) in completions.iter().enumerate() {
        for j in 0..c_len {
            let real = j < completion.len();
            let token = if real { completion[j] } else { pad };
            batch.tokens[r].push(token);
            batch.valid[r].push(real);
            targets.push(token as i64);
            mask.push(if real { 1.0f32 } else { 0.0 });
        }
    }
    (batch, targets, mask)
    // Assignment (g) ends.
}
// ANCHOR_END: lm_completion_batch

/// The hidden states that predict the completion tokens, `[rows, c_len, d_model]`: the one at
/// position `p_len - 1 + j` of `batch` (prompts of `p_len`, then completions of `c_len`)
/// predicts completion token `j`, as `model.hidden(&batch)` narrowed to those positions, but
/// with each distinct prompt run once: GRPO's G completions of a prompt share its positions'
/// keys and values (copied per row from a [`KvCache`]), so the prompt's positions are computed
/// (and, under autodiff, kept for the backward pass) once per prompt instead of once per
/// completion. The same numbers up to rounding; the gradients of a prompt's copies add up.
fn shared_prompt_hidden<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    batch: &Batch,
    (p_len, c_len): (usize, usize),
    pad: u32,
) -> Result<Tensor<B, 3>, ModelError> {
    // ANCHOR: lm_shared_prompt
    // Each row's prompt among the distinct ones (in order of first appearance).
    let mut distinct: Vec<&Vec<u32>> = Vec::new();
    let mut of_row = Vec::with_capacity(prompts.len());
    for prompt in prompts {
        let i = match distinct.iter().position(|d| *d == prompt) {
            Some(i) => i,
            None => {
                distinct.push(prompt);
                distinct.len() - 1
            }
        };
        of_row.push(i);
    }
    if distinct.len() == prompts.len() {
        // Nothing to share (PPO's one completion per prompt): one pass over the whole batch.
        return Ok(model.hidden(batch)?.narrow(1, p_len - 1, c_len));
    }
    let distinct: Vec<Vec<u32>> = distinct.into_iter().cloned().collect();
    let mut cache = KvCache::new(model.n_layers(), distinct.len());
    let prompt_hidden = model.hidden_cached(&Batch::left_padded(&distinct, pad), &mut cache)?;
    let index = Tensor::<B, 1, Int>::from_data(
        TensorData::new(of_row.iter().map(|&i| i as i64).collect(), [of_row.len()]),
        &prompt_hidden.device(),
    );
    // The prompt's last position predicts completion token 0 ...
    let last = prompt_hidden.narrow(1, p_len - 1, 1).select(0, index);
    if c_len <= 1 {
        return Ok(last.narrow(1, 0, c_len));
    }
    // ... and completion tokens 0..c_len - 1, read after the prompt's cached positions,
    // predict tokens 1..c_len.
    let mut cache = cache.select_rows(&of_row);
    let rest = model.hidden_cached(&batch.columns(p_len, p_len + c_len - 1), &mut cache)?;
    Ok(Tensor::cat(vec![last, rest], 1))
    // ANCHOR_END: lm_shared_prompt
}

/// `log pi(token)` of every completion token under `model` (with gradients when `B` is an
/// autodiff backend), from `logits / temperature`: `[rows, max_completion_len]`, and the mask
/// (`1` on real completion tokens, `0` on padding) of the same shape.
pub fn completion_log_probs<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    completions: &[Vec<u32>],
    pad: u32,
    temperature: f32,
) -> Result<(Tensor<B, 2>, Tensor<B, 2>), ModelError> {
    let rows = prompts.len();
    let prompt_batch = Batch::left_padded(prompts, pad);
    let (p_len, c_len) = (
        prompt_batch.len(),
        completions.iter().map(Vec::len).max().unwrap_or(0),
    );
    let (batch, targets, mask) = completion_batch(prompt_batch, completions, pad);
    // ANCHOR: grpolm_completion_log_probs
    let hidden = shared_prompt_hidden(model, prompts, &batch, (p_len, c_len), pad)?;
    let device = hidden.device();
    let targets =
        Tensor::<B, 3, Int>::from_data(TensorData::new(targets, [rows, c_len, 1]), &device);
    // Full-vocabulary logits `[rows, c_len, vocab]` are the largest tensors of a step (with
    // a 150k vocabulary, the usual cause of running out of memory): make them a few rows at
    // a time and keep only each token's log-probability.
    let rows_per_chunk = (LOGIT_CHUNK_POSITIONS / c_len.max(1)).max(1);
    let mut parts = Vec::new();
    for start in (0..rows).step_by(rows_per_chunk) {
        let n = rows_per_chunk.min(rows - start);
        let logits = model.logits(hidden.clone().narrow(0, start, n));
        let targets = targets.clone().narrow(0, start, n);
        // One fused pass where the backend has the kernel (`kernels`), else the definition.
        parts.push(
            kernels::selective_log_softmax(&logits, &targets, 1.0 / temperature)
                .unwrap_or_else(|| selective_log_softmax(logits / temperature, targets)),
        );
    }
    let logp = Tensor::cat(parts, 0).reshape([rows, c_len]);
    let mask = Tensor::from_data(TensorData::new(mask, [rows, c_len]), &device);
    // ANCHOR_END: grpolm_completion_log_probs
    Ok((logp, mask))
}
