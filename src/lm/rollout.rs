//! Collecting completions on a text task: the language model's rollout, shared by GRPO and
//! PPO. A prompt is the start state, a completion is an episode, a token is an action, and
//! the environment scores the whole completion in one step.

use burn::tensor::backend::Backend;
use policy_lab_envs::{Env, Space};
use rand::{Rng, RngExt};

use super::generate::{generate, SamplingConfig};
use super::model::Transformer;
use super::sft::{LmError, TokenRows};
use super::tokenizer::Tokenizer;

/// `prompts * group_size` completions and their rewards, prompt-major: rows
/// `g * group_size .. (g + 1) * group_size` share prompt `g`.
pub struct LmRollout {
    /// Token ids of each row's prompt (BOS first).
    pub prompts: TokenRows,
    /// The sampled completion tokens (EOS included where one came).
    pub tokens: TokenRows,
    /// `log pi_old` of each sampled token.
    pub logp: Vec<Vec<f32>>,
    /// Whether a row ended with EOS (otherwise it was cut at the length limit).
    pub finished: Vec<bool>,
    /// The environment's reward of each completion.
    pub rewards: Vec<f32>,
}

impl LmRollout {
    pub fn len(&self) -> usize {
        self.prompts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
    /// The longest completion in the batch.
    pub fn max_len(&self) -> usize {
        self.tokens.iter().map(Vec::len).max().unwrap_or(1).max(1)
    }
    /// A `[rows, max_len]` row-major matrix of `values[row][token]`, zero-padded.
    pub fn padded(&self, values: &[Vec<f32>]) -> Vec<f32> {
        let t = self.max_len();
        let mut out = vec![0.0; values.len() * t];
        for (i, v) in values.iter().enumerate() {
            out[i * t..i * t + v.len()].copy_from_slice(v);
        }
        out
    }
}

/// Draws `prompts` start states from `env` (`reset` with seeds from `rng`), samples
/// `group_size` completions of each, and scores each completion with the environment. A
/// completion the task refuses (outside its action space) earns 0.
pub fn collect_completions<B, E, T>(
    model: &Transformer<B>,
    env: &E,
    tokenizer: &T,
    prompts: usize,
    group_size: usize,
    sampling: &SamplingConfig,
    rng: &mut impl Rng,
) -> Result<LmRollout, LmError>
where
    B: Backend,
    E: Env + Clone,
    E::ObsSpace: Space<Item = String>,
    E::ActSpace: Space<Item = String>,
    T: Tokenizer,
{
    let mut prompt_ids: TokenRows = Vec::with_capacity(prompts * group_size);
    let mut envs: Vec<E> = Vec::with_capacity(prompts);
    for _ in 0..prompts {
        let mut e = env.clone();
        let (prompt, _) = e.reset(Some(rng.random()));
        let mut ids = vec![tokenizer.bos_id()];
        ids.extend(tokenizer.encode(&prompt)?);
        prompt_ids.extend(std::iter::repeat_n(ids, group_size));
        envs.push(e);
    }
    let out = generate(
        model,
        &prompt_ids,
        tokenizer.pad_id(),
        tokenizer.eos_id(),
        sampling,
        rng,
    )?;
    let rewards = out
        .tokens
        .iter()
        .enumerate()
        .map(|(i, tokens)| {
            let mut e = envs[i / group_size].clone();
            e.step(tokenizer.decode(tokens))
                .map_or(0.0, |s| s.reward as f32)
        })
        .collect();
    Ok(LmRollout {
        prompts: prompt_ids,
        tokens: out.tokens,
        logp: out.logp,
        finished: out.finished,
        rewards,
    })
}
