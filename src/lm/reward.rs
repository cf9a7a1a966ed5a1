//! A learned reward model, the RLHF rung: where the reward of a completion comes from when no
//! program can check it, only people's preferences between two completions.
//!
//! The model is a transformer with a scalar head: the score of a completion is a linear
//! function of the last hidden state, read at its last token (TRL's `RewardTrainer` on an
//! `AutoModelForSequenceClassification` with one label). It is trained on preference pairs
//! `(prompt, chosen, rejected)` with the Bradley-Terry loss (Christiano et al. 2017;
//! Ouyang et al. 2022), with TRL's optional margin:
//!
//! ```text
//! P(chosen > rejected) = sigmoid(r(x, y_c) - r(x, y_r))                  (RM-1)
//! loss = -mean log sigmoid(r(x, y_c) - r(x, y_r) - margin)                (RM-2)
//! ```
//!
//! and reports TRL's `accuracy` (how often the chosen completion scores higher) and `margin`
//! (the mean score difference).
//!
//! [`PreferenceTask`] makes such pairs without people: arithmetic prompts, completions of
//! random digits, and a hidden rater who prefers completions with more even digits than
//! odd ones ([`hidden_score`]). The policy never sees the rule; the reward model has to
//! learn it from the pairs, and a policy trained against the reward model has to discover it.

use burn::module::AutodiffModule;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::log_sigmoid;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use policy_lab_envs::{Arithmetic, EnvRng, Split};
use rand::{Rng, RngExt, SeedableRng};

use super::checkpoint::LmTokenizer;
use super::error::LmError;
use super::model::{Batch, ModelError, Transformer, TransformerConfig};
use super::rewards::TextRewards;
use super::stage::{check_training, Evaluator, Fresh, FreshStage, Stage};
use super::task::task_tokenizer;
use super::tokenizer::{encode_prompt, CharTokenizer, Tokenizer};
use super::trainer::{Lesson, Trainer};

/// A transformer that scores a completion with one number.
#[derive(Module, Debug)]
pub struct RewardModel<B: Backend> {
    pub backbone: Transformer<B>,
    /// `[d_model, 1]`: the score from the last token's hidden state.
    pub head: Linear<B>,
}

impl<B: Backend> RewardModel<B> {
    /// A fresh reward model of the shape `config`.
    pub fn new(config: &TransformerConfig, device: &B::Device) -> Self {
        Self {
            backbone: config.init(device),
            head: LinearConfig::new(config.d_model, 1).init(device),
        }
    }

    // ANCHOR: rm_scores
    /// The scores `[rows]` of each prompt followed by its completion (token ids), read at the
    /// last token (the rows are left-padded, so it is the last position of every row).
    pub fn scores(
        &self,
        prompts: &[Vec<u32>],
        completions: &[Vec<u32>],
        pad: u32,
    ) -> Result<Tensor<B, 1>, ModelError> {
        let rows: Vec<Vec<u32>> = prompts
            .iter()
            .zip(completions)
            .map(|(p, c)| [p.as_slice(), c.as_slice()].concat())
            .collect();
        let batch = Batch::left_padded(&rows, pad);
        let hidden = self.backbone.hidden(&batch)?;
        let [n, len, d] = hidden.dims();
        let last = hidden.narrow(1, len - 1, 1).reshape([n, d]);
        Ok(self.head.forward(last).reshape([n]))
    }
    // ANCHOR_END: rm_scores
}

/// One preference: the prompt, the completion the rater preferred, the other one.
#[derive(Clone, Debug, PartialEq)]
pub struct Preference {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
}

// ANCHOR: rm_loss
/// The Bradley-Terry loss of eq. (RM-2) of scores `[pairs]`, with an optional margin per pair
/// (TRL's `margin` column).
pub fn bradley_terry_loss<B: Backend>(
    chosen: Tensor<B, 1>,
    rejected: Tensor<B, 1>,
    margin: Option<Tensor<B, 1>>,
) -> Tensor<B, 1> {
    let diff = chosen - rejected;
    let diff = match margin {
        Some(m) => diff - m,
        None => diff,
    };
    -log_sigmoid(diff).mean()
}
// ANCHOR_END: rm_loss

/// TRL's metrics of a batch of pairs: the loss, `accuracy` (the share of pairs whose chosen
/// completion scores higher) and `margin` (the mean of chosen minus rejected).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairStats {
    pub loss: f64,
    pub accuracy: f64,
    pub margin: f64,
}

/// Scores of every pair's chosen and rejected completion, `([pairs], [pairs])`.
pub fn pair_scores<B: Backend>(
    model: &RewardModel<B>,
    tokenizer: &impl Tokenizer,
    pairs: &[Preference],
) -> Result<(Tensor<B, 1>, Tensor<B, 1>), LmError> {
    let mut prompts = Vec::with_capacity(pairs.len());
    let (mut chosen, mut rejected) = (Vec::new(), Vec::new());
    for p in pairs {
        prompts.push(encode_prompt(tokenizer, &p.prompt)?);
        chosen.push(tokenizer.encode(&p.chosen)?);
        rejected.push(tokenizer.encode(&p.rejected)?);
    }
    let pad = tokenizer.pad_id();
    Ok((
        model.scores(&prompts, &chosen, pad)?,
        model.scores(&prompts, &rejected, pad)?,
    ))
}

/// The loss, accuracy and margin of `pairs` under `model`.
pub fn evaluate_pairs<B: Backend>(
    model: &RewardModel<B>,
    tokenizer: &impl Tokenizer,
    pairs: &[Preference],
) -> Result<PairStats, LmError> {
    let (chosen, rejected) = pair_scores(model, tokenizer, pairs)?;
    Ok(stats(chosen, rejected))
}

fn stats<B: Backend>(chosen: Tensor<B, 1>, rejected: Tensor<B, 1>) -> PairStats {
    let loss = crate::scalar(&bradley_terry_loss(chosen.clone(), rejected.clone(), None));
    let c: Vec<f32> = chosen.into_data().convert::<f32>().to_vec().expect("f32");
    let r: Vec<f32> = rejected.into_data().convert::<f32>().to_vec().expect("f32");
    let n = c.len().max(1) as f64;
    PairStats {
        loss,
        accuracy: c.iter().zip(&r).filter(|(c, r)| c > r).count() as f64 / n,
        margin: c.iter().zip(&r).map(|(c, r)| f64::from(c - r)).sum::<f64>() / n,
    }
}

/// The hidden rater's score of a completion: +1 for each even digit, -1 for each odd one
/// (anything else counts nothing).
pub fn hidden_score(completion: &str) -> i32 {
    completion
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| if d % 2 == 0 { 1 } else { -1 })
        .sum()
}

/// Preference pairs over an arithmetic task's prompts, ranked by [`hidden_score`].
pub struct PreferenceTask {
    pub env: Arithmetic,
    /// The longest completion drawn (the task's completion limit).
    pub max_len: usize,
}

impl PreferenceTask {
    pub fn new(env: Arithmetic) -> Self {
        let max_len = env.config().completion_limit();
        Self { env, max_len }
    }

    /// A pair: one of the task's prompts, and two completions of 1 to `max_len` random digits
    /// whose hidden scores differ, the higher one chosen.
    pub fn pair<R: Rng + ?Sized>(&self, rng: &mut R) -> Preference {
        let (prompt, _) = self.env.demonstration(rng);
        let draw = |rng: &mut R| -> String {
            let len = rng.random_range(1..=self.max_len);
            (0..len)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect()
        };
        loop {
            let (a, b) = (draw(rng), draw(rng));
            let (sa, sb) = (hidden_score(&a), hidden_score(&b));
            if sa != sb {
                let (chosen, rejected) = if sa > sb { (a, b) } else { (b, a) };
                return Preference {
                    prompt: prompt.clone(),
                    chosen,
                    rejected,
                };
            }
        }
    }

    /// `n` pairs drawn with `seed` (a held-out set: a seed the training draws never use).
    pub fn pairs(&self, n: usize, seed: u64) -> Vec<Preference> {
        let mut rng = EnvRng::seed_from_u64(seed);
        (0..n).map(|_| self.pair(&mut rng)).collect()
    }
}

/// The reward model's [`Lesson`]: fresh pairs of a [`PreferenceTask`], their loss eq. (RM-2);
/// its metrics are the batch's [`PairStats`] (before the step). `policy-lab lm reward` trains
/// on it with a [`Trainer`].
pub struct Preferences<T> {
    pub tokenizer: T,
    pub task: PreferenceTask,
}

impl<B: AutodiffBackend, T: Tokenizer> Lesson<B> for Preferences<T> {
    type Model = RewardModel<B>;
    fn loss(
        &self,
        model: &RewardModel<B>,
        n: usize,
        rng: &mut EnvRng,
    ) -> Result<(Tensor<B, 1>, crate::Metrics), LmError> {
        let pairs: Vec<Preference> = (0..n).map(|_| self.task.pair(rng)).collect();
        let (chosen, rejected) = pair_scores(model, &self.tokenizer, &pairs)?;
        let s = stats(chosen.clone().detach(), rejected.clone().detach());
        let loss = bradley_terry_loss(chosen, rejected, None);
        let metrics = [
            ("loss", s.loss),
            ("accuracy", s.accuracy),
            ("margin", s.margin),
        ];
        Ok((loss, crate::Metrics::from(metrics)))
    }
}

/// What the reward functions log for a batch: `(metric, value)`, TRL's names
/// (`rewards/<name>/mean`, `rewards/<name>/std`).
pub type RewardMeans = Vec<(String, f64)>;

/// What scores a completion in RL: TRL's `reward_funcs` with its `reward_weights`. The
/// task's own (verifiable) reward, any number of reward models, and reward functions of the
/// completion's text and its dataset row, each weighted; the reward of a completion is the
/// weighted sum.
pub struct RewardFuncs<B: Backend> {
    /// The weight of the task's reward (0 to leave it out).
    pub task_weight: f32,
    /// `(name, model, weight)`.
    pub models: Vec<(String, RewardModel<B>, f32)>,
    /// Functions of the text (`accuracy`, `format`, a command, a closure: [`Rewards`], with
    /// their weights) and the dataset whose rows they read (`lm grpo --dataset`).
    pub text: Option<TextRewards>,
}

impl<B: Backend> Default for RewardFuncs<B> {
    /// The task's reward alone.
    fn default() -> Self {
        Self {
            task_weight: 1.0,
            models: Vec::new(),
            text: None,
        }
    }
}

impl<B: Backend> RewardFuncs<B> {
    /// The text's reward functions alone, over a dataset's prompts (`lm grpo --dataset`;
    /// a notebook cell's closures).
    pub fn text(text: TextRewards) -> Self {
        Self {
            task_weight: 0.0,
            models: Vec::new(),
            text: Some(text),
        }
    }

    /// Whether the task's reward alone is used (nothing to rescore).
    pub fn task_only(&self) -> bool {
        self.models.is_empty() && self.text.is_none() && self.task_weight == 1.0
    }

    /// The rewards of completions `tokens` (EOS at the end where one came) of `prompts`
    /// (from the dataset rows `rows`, where the task has them), whose task rewards are
    /// `task`: the weighted sum, and each function's log entries.
    pub fn score(
        &self,
        prompts: &[Vec<u32>],
        tokens: &[Vec<u32>],
        rows: &[Option<usize>],
        task: &[f32],
        tokenizer: &impl Tokenizer,
    ) -> Result<(Vec<f32>, RewardMeans), LmError> {
        // ANCHOR: rm_reward_funcs
        let n = task.len().max(1) as f64;
        let mut total: Vec<f32> = task.iter().map(|r| r * self.task_weight).collect();
        let mut means = Vec::new();
        // A dataset's task scores nothing itself (its reward functions do).
        if self.text.is_none() || self.task_weight != 0.0 {
            let mean = task.iter().map(|r| f64::from(*r)).sum::<f64>() / n;
            means.push(("rewards/task/mean".to_string(), mean));
        }
        // A reward model reads the completion's text tokens, without EOS (as it was trained).
        let eos = tokenizer.eos_id();
        let completions: Vec<Vec<u32>> = tokens
            .iter()
            .map(|t| t.iter().copied().filter(|&id| id != eos).collect())
            .collect();
        for (_name, model, weight) in &self.models {
            let scores: Vec<f32> = model
                .scores(prompts, &completions, tokenizer.pad_id())?
                .into_data()
                .convert::<f32>()
                .to_vec()
                .expect("f32");
            for (t, s) in total.iter_mut().zip(&scores) {
                *t += weight * s;
            }
            // One name for every reward model (a run has one in practice; several add up).
            means.push((
                "rewards/model/mean".to_string(),
                scores.iter().map(|s| f64::from(*s)).sum::<f64>() / n,
            ));
        }
        // Functions of the text read what a reader would: the decoded completion.
        if let Some(text) = &self.text {
            let decoded: Vec<String> = completions.iter().map(|t| tokenizer.decode(t)).collect();
            let scores = text.score(rows, &decoded)?;
            for (t, s) in total.iter_mut().zip(&scores.total) {
                *t += s;
            }
            // TRL's `rewards/<name>/mean` and `/std`; the weighted sum is the learner's own
            // `reward` and `reward_std`.
            let entries = scores.log_entries().into_iter();
            means.extend(entries.filter(|(name, _)| name.starts_with("rewards/")));
        }
        // ANCHOR_END: rm_reward_funcs
        Ok((total, means))
    }
}

impl<B: Backend> RewardFuncs<B> {
    /// Rescores `rollout` in place with these functions (nothing to do for the task's reward
    /// alone); returns each function's log entries and, with a reward model, the preference
    /// task's hidden rater's mean score (`hidden_score`): what a reward model is meant to
    /// stand for, logged so that a run shows whether the policy learns the rule or fools the
    /// model.
    pub fn rescore(
        &self,
        rollout: &mut super::rollout::LmRollout,
        tokenizer: &impl Tokenizer,
    ) -> Result<RewardMeans, LmError> {
        if self.task_only() {
            return Ok(Vec::new());
        }
        let (total, mut means) = self.score(
            &rollout.prompts,
            &rollout.tokens,
            &rollout.prompt_rows,
            &rollout.rewards,
            tokenizer,
        )?;
        if !self.models.is_empty() {
            let n = rollout.tokens.len().max(1) as f64;
            let hidden: f64 = rollout
                .tokens
                .iter()
                .map(|t| f64::from(hidden_score(&tokenizer.decode(t))))
                .sum();
            means.push(("hidden_score".into(), hidden / n));
        }
        rollout.rewards = total;
        Ok(means)
    }
}

/// `name` as a key of [`crate::Metrics`] (keyed by `&'static str`): reward functions are
/// named at run time (a command, a closure), so each distinct name is kept once for the
/// life of the process.
pub fn metric_key(name: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(key) = names.get(name) {
        return key;
    }
    let key: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(key);
    key
}

/// Saves a reward model into the folder `dir`: its backbone as a language-model checkpoint
/// (`model.json`, `shape.json`, `tokenizer.json`, [`crate::lm::checkpoint::save_lm`]) and its
/// head (`head.mpk`).
pub fn save_reward_model<B: Backend>(
    dir: &std::path::Path,
    model: &RewardModel<B>,
    config: &TransformerConfig,
    tokenizer: &super::checkpoint::LmTokenizer,
) -> anyhow::Result<()> {
    super::checkpoint::save_lm(dir, &model.backbone, config, tokenizer)?;
    crate::core::checkpoint::save_module(&model.head, &dir.join("head"))
}

/// A reward model saved by [`save_reward_model`], with its tokenizer.
pub fn load_reward_model<B: Backend>(
    dir: &std::path::Path,
    device: &B::Device,
) -> anyhow::Result<(RewardModel<B>, super::checkpoint::LmTokenizer)> {
    use anyhow::Context;
    if !dir.join("head.mpk").exists() {
        anyhow::bail!(
            "{} is not a reward model (no head.mpk): `policy-lab lm reward` writes one",
            dir.display()
        );
    }
    let loaded = super::checkpoint::load_lm::<B>(dir, None, device)
        .with_context(|| format!("loading the reward model in {}", dir.display()))?;
    let head = LinearConfig::new(loaded.config.d_model, 1).init(device);
    let head = crate::core::checkpoint::load_module(head, &dir.join("head"), device)?;
    Ok((
        RewardModel {
            backbone: loaded.model,
            head,
        },
        loaded.tokenizer,
    ))
}

/// The reward model's training (`lm reward`, the `[reward]` table): Bradley-Terry steps on
/// fresh preference pairs of the task's prompts ([`PreferenceTask`]), a fresh model of
/// `[model]`'s shape.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Preference pairs per step.
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Measure the held-out pair accuracy every this many steps.
    pub eval_every: usize,
    /// Held-out pairs (drawn from a seed the training never uses).
    pub held_out_pairs: usize,
}

impl RewardConfig {
    /// Checks the settings; a message names the key and what is allowed.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let counts = [
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("eval_every", self.eval_every),
            ("held_out_pairs", self.held_out_pairs),
        ];
        check_training("reward", &counts, self.learning_rate)
    }
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            steps: 300,
            batch_size: 32,
            learning_rate: 1e-3,
            eval_every: 50,
            held_out_pairs: 256,
        }
    }
}

// How `policy-lab lm reward` reads the settings and makes the learner (registered in
// `src/run/lm/mod.rs`): a fresh reward model, fresh preference pairs, the held-out pairs'
// accuracy.
impl Stage for RewardConfig {
    const ABOUT: &'static str = "Train a reward model on the task's preference pairs (a hidden rater prefers even digits) with the Bradley-Terry loss: the RLHF rung.";
    const MEASURE: &'static str = "held_out_accuracy";
}

impl FreshStage for RewardConfig {
    type Learner<B: AutodiffBackend> = Trainer<B, Preferences<CharTokenizer>>;

    fn steps(&self) -> usize {
        self.steps
    }
    fn set_steps(&mut self, steps: usize) {
        self.steps = steps;
    }
    fn eval_every(&self) -> usize {
        self.eval_every
    }
    fn learner<B: AutodiffBackend>(
        &self,
        start: &Fresh<'_, B>,
    ) -> anyhow::Result<Self::Learner<B>> {
        let device = start.device;
        let mut model: RewardModel<B> = crate::backend::seeded::<B, _>(device, start.seed, || {
            RewardModel::new(start.shape, device)
        });
        model.backbone = model.backbone.with_precision(start.precision);
        let lesson = Preferences {
            tokenizer: task_tokenizer(),
            task: PreferenceTask::new(start.env(Split::Train)?),
        };
        let (batch, lr) = (self.batch_size, self.learning_rate);
        Ok(Trainer::new(model, lesson, batch, lr, start.seed))
    }
    fn evaluator<B: AutodiffBackend>(
        &self,
        start: &Fresh<'_, B>,
    ) -> anyhow::Result<Evaluator<Self::Learner<B>>> {
        // Held-out pairs from another seed than any training draw (the trainer's is `seed`).
        let held_out = PreferenceTask::new(start.env(Split::Test)?)
            .pairs(self.held_out_pairs, start.seed.wrapping_add(0x5eed));
        Ok(Box::new(
            move |learner: &Self::Learner<B>, m: &mut crate::Metrics| {
                let model = learner.model.valid();
                let stats = evaluate_pairs(&model, &learner.lesson.tokenizer, &held_out)?;
                m.insert(Self::MEASURE, stats.accuracy);
                m.insert("held_out_margin", stats.margin);
                Ok(crate::lm::task::Accuracy {
                    accuracy: stats.accuracy,
                    ..Default::default()
                })
            },
        ))
    }
    fn save<B: AutodiffBackend>(
        learner: &Self::Learner<B>,
        shape: &TransformerConfig,
        tokenizer: &LmTokenizer,
        dir: &std::path::Path,
    ) -> anyhow::Result<()> {
        save_reward_model(dir, &learner.model, shape, tokenizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    type B = burn::backend::NdArray;

    #[test]
    fn the_loss_is_trls_and_the_margin_shifts_it() {
        let t = |v: &[f32]| Tensor::<B, 1>::from_floats(v, &Default::default());
        // -log sigmoid(d) for d = 2 and d = -1: softplus(-d).
        let loss = bradley_terry_loss(t(&[3.0, 0.0]), t(&[1.0, 1.0]), None).into_scalar();
        let want = ((1.0f32 + (-2.0f32).exp()).ln() + (1.0f32 + 1.0f32.exp()).ln()) / 2.0;
        assert!((loss - want).abs() < 1e-6, "{loss} {want}");
        // A margin of 2 on the first pair: as if it were a tie.
        let loss = bradley_terry_loss(t(&[3.0]), t(&[1.0]), Some(t(&[2.0]))).into_scalar();
        assert!((loss - 2f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn the_hidden_rater_prefers_even_digits_and_pairs_follow_it() {
        assert_eq!(hidden_score("2468"), 4);
        assert_eq!(hidden_score("1357"), -4);
        assert_eq!(hidden_score("12"), 0);
        let env = Arithmetic::new(Default::default()).unwrap();
        let task = PreferenceTask::new(env);
        for p in task.pairs(50, 3) {
            assert!(hidden_score(&p.chosen) > hidden_score(&p.rejected));
            assert!(p.prompt.ends_with('='));
        }
        assert_ne!(task.pairs(5, 3), task.pairs(5, 4));
    }

    #[test]
    fn a_reward_model_learns_the_hidden_rule_to_90_percent_on_held_out_pairs() {
        // Bounded by steps: 300 steps of 32 pairs on add:2 prompts; the held-out pairs come
        // from a seed the training never draws with.
        let tokenizer = crate::lm::task::task_tokenizer();
        let config = TransformerConfig::new(tokenizer.vocab_size())
            .with_max_seq_len(16)
            .with_d_model(64)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(128);
        let device = Default::default();
        let model =
            crate::backend::seeded::<Cpu, _>(&device, 0, || RewardModel::new(&config, &device));
        let env_config = policy_lab_envs::ArithmeticConfig {
            digits: 2,
            ..Default::default()
        };
        let task = PreferenceTask::new(Arithmetic::new(env_config.clone()).unwrap());
        let held_out = PreferenceTask::new(Arithmetic::new(env_config).unwrap()).pairs(256, 999);
        let lesson = Preferences {
            tokenizer: tokenizer.clone(),
            task,
        };
        let mut trainer = Trainer::new(model, lesson, 32, 1e-3, 1);
        let before = evaluate_pairs(&trainer.model, &tokenizer, &held_out).unwrap();
        for _ in 0..300 {
            trainer.step().unwrap();
        }
        let after = evaluate_pairs(&trainer.model, &tokenizer, &held_out).unwrap();
        println!("held-out pairs: before {before:?}, after 300 steps {after:?}");
        assert!(
            after.accuracy >= 0.9,
            "held-out accuracy {} after 300 steps (before: {})",
            after.accuracy,
            before.accuracy
        );
        assert!(after.margin > before.margin && after.loss < before.loss);
    }
}
