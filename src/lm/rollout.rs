//! Collecting completions on a text task: the language model's rollout, shared by GRPO and
//! PPO. A prompt is the start state, a completion is an episode, a token is an action, and
//! the environment scores the whole completion in one step.

use burn::tensor::backend::Backend;
use policy_lab_envs::{Arithmetic, Env, Space};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::dataset::DatasetTask;
use super::generate::{generate, SamplingConfig};
use super::model::Transformer;
use super::sft::{LmError, TokenRows};
use super::tokenizer::encode_prompt;
use super::tokenizer::Tokenizer;
use crate::core::advantage::zero_std_groups;

/// A text task as an environment: its observations are prompts and its actions completions,
/// both `String`s. Every language-model learner collects from one: the arithmetic task and a
/// preference task (each an [`Env`] with text spaces), or a dataset's prompts
/// ([`crate::lm::dataset::DatasetTask`], scored by the run's reward functions).
pub trait TextEnv: Clone {
    /// Starts an episode: a prompt drawn with `seed`, and the index of its row when the task
    /// reads its prompts from a dataset (the reward functions read that row's columns).
    fn draw(&mut self, seed: u64) -> (String, Option<usize>);
    /// Ends it: the reward of `completion` (0 for a completion the task refuses).
    fn reward(&mut self, completion: String) -> f32;
    /// The token ids of the prompt drawn last, `prompt`: BOS in front, or the tokenizer's
    /// chat template around it ([`encode_prompt`]).
    fn encode<T: Tokenizer>(&self, tokenizer: &T, prompt: &str) -> Result<Vec<u32>, LmError> {
        Ok(encode_prompt(tokenizer, prompt)?)
    }
}

impl<E> TextEnv for E
where
    E: Env + Clone,
    E::ObsSpace: Space<Item = String>,
    E::ActSpace: Space<Item = String>,
{
    fn draw(&mut self, seed: u64) -> (String, Option<usize>) {
        (self.reset(Some(seed)).0, None)
    }
    fn reward(&mut self, completion: String) -> f32 {
        self.step(completion).map_or(0.0, |s| s.reward as f32)
    }
}

/// A dataset's prompts as a text environment: a row drawn with the seed, uniformly.
impl TextEnv for DatasetTask {
    fn draw(&mut self, seed: u64) -> (String, Option<usize>) {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let row = rng.random_range(0..self.len());
        (self.show(row), Some(row))
    }
    fn reward(&mut self, _completion: String) -> f32 {
        0.0
    }
    /// A prompt the chat template wrote is tokenized as it is (the template wrote the special
    /// tokens; TRL adds none), a raw one with BOS in front.
    fn encode<T: Tokenizer>(&self, tokenizer: &T, prompt: &str) -> Result<Vec<u32>, LmError> {
        Ok(if self.templated() {
            tokenizer.encode(prompt)?
        } else {
            encode_prompt(tokenizer, prompt)?
        })
    }
}

/// The prompts an RL stage learns from: the arithmetic task (its own reward), or a dataset's
/// prompts (`--dataset`, scored by the reward functions).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LmTask {
    Arithmetic(Box<Arithmetic>),
    Dataset(DatasetTask),
}

impl TextEnv for LmTask {
    fn draw(&mut self, seed: u64) -> (String, Option<usize>) {
        match self {
            LmTask::Arithmetic(e) => e.draw(seed),
            LmTask::Dataset(e) => e.draw(seed),
        }
    }
    fn reward(&mut self, completion: String) -> f32 {
        match self {
            LmTask::Arithmetic(e) => e.reward(completion),
            LmTask::Dataset(e) => e.reward(completion),
        }
    }
    fn encode<T: Tokenizer>(&self, tokenizer: &T, prompt: &str) -> Result<Vec<u32>, LmError> {
        match self {
            LmTask::Arithmetic(e) => e.encode(tokenizer, prompt),
            LmTask::Dataset(e) => e.encode(tokenizer, prompt),
        }
    }
}

/// `prompts * group_size` completions and their rewards, prompt-major: rows
/// `g * group_size .. (g + 1) * group_size` share prompt `g`.
#[derive(Clone, Debug, Default)]
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
    /// The dataset row of each completion's prompt (a task that reads no dataset: `None`).
    pub prompt_rows: Vec<Option<usize>>,
}

impl LmRollout {
    /// How many completions (rows) the batch holds.
    pub fn completions(&self) -> usize {
        self.prompts.len()
    }
    /// The longest completion in the batch.
    pub fn max_len(&self) -> usize {
        self.tokens.iter().map(Vec::len).max().unwrap_or(1).max(1)
    }
    /// The groups of `self` and then of `more` whose rewards differ, first, up to `want`
    /// groups of `group_size` rows (groups with equal rewards fill the rest): dynamic
    /// sampling's refill (DAPO).
    pub fn merge_informative(self, more: LmRollout, group_size: usize, want: usize) -> LmRollout {
        let mut groups: Vec<(bool, &LmRollout, usize)> = Vec::new();
        for r in [&self, &more] {
            for (gi, z) in zero_std_groups(&r.rewards, group_size)
                .into_iter()
                .enumerate()
            {
                groups.push((z, r, gi));
            }
        }
        groups.sort_by_key(|(z, _, _)| *z); // informative groups first, stable otherwise
        groups.truncate(want);
        let mut out = LmRollout::default();
        for (_, r, gi) in groups {
            out.extend(r.rows(gi * group_size..(gi + 1) * group_size));
        }
        out
    }

    /// A copy of the rows in `range` (a data-parallel peer's share is whole groups).
    pub fn rows(&self, range: std::ops::Range<usize>) -> LmRollout {
        LmRollout {
            prompts: self.prompts[range.clone()].to_vec(),
            tokens: self.tokens[range.clone()].to_vec(),
            logp: self.logp[range.clone()].to_vec(),
            finished: self.finished[range.clone()].to_vec(),
            rewards: self.rewards[range.clone()].to_vec(),
            prompt_rows: self.prompt_rows[range].to_vec(),
        }
    }

    /// Appends the rows of `other`.
    pub fn extend(&mut self, other: LmRollout) {
        self.prompts.extend(other.prompts);
        self.tokens.extend(other.tokens);
        self.logp.extend(other.logp);
        self.finished.extend(other.finished);
        self.rewards.extend(other.rewards);
        self.prompt_rows.extend(other.prompt_rows);
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

/// Draws `prompts` start states from `env` (with seeds from `rng`), samples `group_size`
/// completions of each, and scores each completion with the environment. A completion the
/// task refuses (outside its action space) earns 0.
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
    E: TextEnv,
    T: Tokenizer,
{
    // ANCHOR: grpolm_collect_completions
    let mut prompt_ids: TokenRows = Vec::with_capacity(prompts * group_size);
    let mut prompt_rows = Vec::with_capacity(prompts * group_size);
    let mut envs: Vec<E> = Vec::with_capacity(prompts);
    for _ in 0..prompts {
        let mut e = env.clone();
        let (prompt, row) = e.draw(rng.random());
        let ids = e.encode(tokenizer, &prompt)?;
        prompt_ids.extend(std::iter::repeat_n(ids, group_size));
        prompt_rows.extend(std::iter::repeat_n(row, group_size));
        envs.push(e);
    }
    let out = generate(
        model,
        &prompt_ids,
        tokenizer.pad_id(),
        tokenizer.eos_id(),
        sampling,
        rng,
        None,
    )?;
    let rewards = out
        .tokens
        .iter()
        .enumerate()
        .map(|(i, tokens)| {
            envs[i / group_size]
                .clone()
                .reward(tokenizer.decode(tokens))
        })
        .collect();
    // ANCHOR_END: grpolm_collect_completions
    Ok(LmRollout {
        prompts: prompt_ids,
        tokens: out.tokens,
        logp: out.logp,
        finished: out.finished,
        rewards,
        prompt_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(rewards: &[f32], tag: u32) -> LmRollout {
        let n = rewards.len();
        LmRollout {
            prompts: (0..n as u32).map(|i| vec![tag, i]).collect(),
            tokens: vec![vec![tag]; n],
            logp: vec![vec![0.0]; n],
            finished: vec![true; n],
            rewards: rewards.to_vec(),
            prompt_rows: vec![None; n],
        }
    }

    #[test]
    fn merge_informative_keeps_groups_whose_rewards_differ_first() {
        // Groups of 2: a = [same, differ], b = [differ, same].
        let a = rollout(&[1.0, 1.0, 0.0, 1.0], 7);
        let b = rollout(&[0.0, 1.1, 0.0, 0.0], 8);
        let m = a.merge_informative(b, 2, 2);
        assert_eq!(m.rewards, vec![0.0, 1.0, 0.0, 1.1]);
        assert_eq!(
            m.prompts,
            vec![vec![7, 2], vec![7, 3], vec![8, 0], vec![8, 1]]
        );
        // Asking for more than there are informative groups fills with the others, in order.
        let a = rollout(&[1.0, 1.0, 0.0, 1.0], 7);
        let b = rollout(&[0.0, 0.0], 8);
        let m = a.merge_informative(b, 2, 3);
        assert_eq!(m.rewards, vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(m.completions(), 6);
    }
}
