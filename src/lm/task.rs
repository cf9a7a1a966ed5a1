//! The arithmetic task seen from the language model: its tokenizer, its name on the command
//! line (`add:3`, `mul:2`), and the accuracy evaluation over the held-out test split.

use burn::tensor::backend::Backend;
use policy_lab_envs::arithmetic::COMPLETION_CHARSET;
use policy_lab_envs::{Arithmetic, ArithmeticConfig, Env, EnvRng, Op};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::error::LmError;
use super::generate::{complete, SamplingConfig};
use super::model::Transformer;

use super::tokenizer::{encode_prompt, CharTokenizer, Tokenizer};
use crate::ConfigError;

/// The tasks `--task` accepts: an operation, then optionally `:DIGITS`.
pub const TASKS: [(&str, &str); 2] = [
    ("add", "addition, e.g. add:3 is 123+456= -> 579"),
    ("mul", "multiplication, e.g. mul:2 is 12*34= -> 408"),
];

/// The task `task` on one split of its problems (`Split::Train` to learn from, `Split::Test`
/// for the held-out measures).
pub fn task_env(
    task: &ArithmeticConfig,
    split: policy_lab_envs::Split,
) -> Result<Arithmetic, policy_lab_envs::EnvError> {
    Arithmetic::new(ArithmeticConfig {
        split,
        ..task.clone()
    })
}

/// One tokenizer for every arithmetic task: a token per character of prompts and answers.
pub fn task_tokenizer() -> CharTokenizer {
    CharTokenizer::new(COMPLETION_CHARSET)
}

/// Reads a task name such as `add:3` into `base` (which keeps its other settings, except
/// that `test_size` is lowered to what the digits allow: one-digit problems hold 49 at most).
pub fn parse_task(spec: &str, base: &ArithmeticConfig) -> Result<ArithmeticConfig, ConfigError> {
    let (name, digits) = match spec.split_once(':') {
        Some((name, digits)) => (name, Some(digits)),
        None => (spec, None),
    };
    let op = match name.trim() {
        "add" => Op::Add,
        "mul" => Op::Mul,
        other => {
            let known: Vec<&str> = TASKS.iter().map(|(n, _)| *n).collect();
            return Err(ConfigError(format!(
                "unknown task {other:?}: the tasks are {} (with optional digits, e.g. add:3)",
                known.join(", ")
            )));
        }
    };
    let mut config = ArithmeticConfig { op, ..base.clone() };
    if let Some(d) = digits {
        config.digits = d
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("task {spec:?}: {d:?} is not a number of digits")))?;
    }
    if config.digits <= 4 {
        let most = (10usize.pow(2 * config.digits) - 1) / 2;
        config.test_size = config.test_size.min(most);
    }
    Arithmetic::new(config.clone()).map_err(|e| ConfigError(format!("task {spec:?}: {e}")))?;
    Ok(config)
}

/// Greedy accuracy on held-out problems.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Problems scored.
    pub problems: usize,
    /// Share of right answers.
    pub accuracy: f64,
    /// Share of well-formed answers (digits only).
    pub format: f64,
    /// Mean reward.
    pub mean_reward: f64,
}

/// Answers the first `limit` (or all) test problems of `env`'s task greedily, in batches,
/// and scores them with the environment's own reward.
pub fn evaluate_accuracy<B: Backend>(
    model: &Transformer<B>,
    tokenizer: &impl Tokenizer,
    env: &Arithmetic,
    limit: Option<usize>,
) -> Result<Accuracy, LmError> {
    evaluate_accuracy_with_progress(model, tokenizer, env, limit, &mut |_, _| {})
}

/// [`evaluate_accuracy`], calling `after_chunk(problems done, problems in all)` after each
/// batch of problems (for a progress bar).
pub fn evaluate_accuracy_with_progress<B: Backend>(
    model: &Transformer<B>,
    tokenizer: &impl Tokenizer,
    env: &Arithmetic,
    limit: Option<usize>,
    after_chunk: &mut dyn FnMut(usize, usize),
) -> Result<Accuracy, LmError> {
    let problems = env.test_problems();
    let problems = &problems[..limit.unwrap_or(problems.len()).min(problems.len())];
    // Room for the longest answer and its EOS.
    let sampling = SamplingConfig::greedy(env.config().completion_limit() + 1);
    let mut rng = EnvRng::seed_from_u64(0);
    let mut acc = Accuracy {
        problems: problems.len(),
        ..Accuracy::default()
    };
    let mut done = 0;
    for chunk in problems.chunks(256) {
        let mut prompts = Vec::with_capacity(chunk.len());
        for &(a, b) in chunk {
            prompts.push(encode_prompt(tokenizer, &env.prompt_of(a, b))?);
        }
        let out = complete(model, tokenizer, &prompts, &sampling, &mut rng)?;
        for (&(a, b), tokens) in chunk.iter().zip(&out.tokens) {
            let mut e = env.clone();
            e.reset_to_problem(a, b)
                .expect("a test problem of this task");
            if let Ok(step) = e.step(tokenizer.decode(tokens)) {
                acc.accuracy += step.info.get("correct").unwrap_or(0.0);
                acc.format += step.info.get("format").unwrap_or(0.0);
                acc.mean_reward += step.reward;
            }
        }
        done += chunk.len();
        after_chunk(done, problems.len());
    }
    let n = problems.len().max(1) as f64;
    acc.accuracy /= n;
    acc.format /= n;
    acc.mean_reward /= n;
    Ok(acc)
}
