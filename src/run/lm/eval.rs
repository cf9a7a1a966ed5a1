//! `policy-lab lm eval`: a checkpoint's greedy accuracy on a task's held-out problems, or its
//! completions of a dataset's prompts scored by reward functions (pass@k with `--k`).

use std::path::Path;

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use policy_lab_envs::{ArithmeticConfig, Split};
use rand::SeedableRng;

use crate::lm::checkpoint::{load_policy, LmTokenizer};
use crate::lm::dataset::{Dataset, DatasetTask};
use crate::lm::dataset_eval::{evaluate_dataset, DatasetScores};
use crate::lm::generate::SamplingConfig;
use crate::lm::rewards::{RewardSettings, Rewards, TextRewards};
use crate::lm::task::{task_env, task_tokenizer, Accuracy};
use crate::run::Progress;
use crate::Metrics;

/// The held-out accuracy of the checkpoint in `model_dir` on `task`. With `chat`, each
/// prompt is written with the model's chat template, after the system message `chat` holds
/// (if any), as `lm grpo --chat-template` trains it.
pub fn run_eval<B: burn::tensor::backend::Backend>(
    model_dir: &Path,
    task: &ArithmeticConfig,
    chat: Option<Option<String>>,
    device: &B::Device,
) -> Result<Accuracy> {
    let mut loaded = load_policy::<B>(model_dir, Some(&task_tokenizer()), device)?;
    if let Some(system) = chat {
        match &mut loaded.tokenizer {
            LmTokenizer::Hf(t) => t.use_chat_template(system)?,
            LmTokenizer::Char(_) => bail!(
                "{} has the task's character tokenizer and no chat template",
                model_dir.display()
            ),
        }
    }
    let env = task_env(task, Split::Test)?;
    // Progress on standard error: a bar on a terminal, a line per batch elsewhere.
    let mut err = std::io::stderr();
    let total = env.test_problems().len();
    let mut bar = Progress::new("eval", total, "problems", 10, total.div_ceil(256), &mut err);
    let accuracy = crate::lm::task::evaluate_accuracy_with_progress(
        &loaded.model,
        &loaded.tokenizer,
        &env,
        None,
        &mut |done, _| {
            let _ = bar.update(done, &Metrics::new());
        },
    )?;
    bar.finish();
    Ok(accuracy)
}

/// How `lm eval --dataset` samples: `k` completions of each prompt at `temperature` (one
/// greedy completion when `k` is 1), at most `max_new_tokens` each.
#[derive(Clone, Copy, Debug)]
pub struct Sampling {
    pub k: usize,
    pub temperature: f32,
    pub max_new_tokens: usize,
    pub seed: u64,
}

/// Completions of every prompt of the dataset in `file` by the model at `model_dir`, scored by
/// the reward functions `names` (as `settings` sets them up). A conversational prompt is
/// written with the model's chat template; a standard one raw, or with the template when
/// `chat_template` is set (as `lm generate` writes a prompt unless `--raw`).
pub fn run_eval_dataset<B: burn::tensor::backend::Backend>(
    model_dir: &Path,
    file: &Path,
    (names, settings): (&[String], &RewardSettings),
    chat_template: bool,
    sampling: Sampling,
    device: &B::Device,
) -> Result<DatasetScores> {
    let dataset = Arc::new(Dataset::read(file)?);
    let functions = Rewards::from_names(names, None, settings)?;
    let loaded = load_policy::<B>(model_dir, None, device)?;
    let template = match &loaded.tokenizer {
        LmTokenizer::Hf(t) => t.chat_template.clone(),
        LmTokenizer::Char(_) => None,
    };
    let task = DatasetTask::new(&dataset, template.as_ref(), chat_template).with_context(|| {
        format!(
            "{} with the model in {}",
            file.display(),
            model_dir.display()
        )
    })?;
    let rewards = TextRewards {
        functions,
        dataset,
        task,
    };
    let config = match sampling.k {
        1 => SamplingConfig::greedy(sampling.max_new_tokens),
        _ => SamplingConfig {
            temperature: sampling.temperature,
            max_new_tokens: sampling.max_new_tokens,
            ..SamplingConfig::default()
        },
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(sampling.seed);
    let mut err = std::io::stderr();
    let total = rewards.task.len();
    let mut bar = Progress::new("eval", total, "prompts", 10, total.div_ceil(32), &mut err);
    let scores = evaluate_dataset(
        &loaded.model,
        &loaded.tokenizer,
        &rewards,
        (&config, sampling.k),
        None,
        &mut rng,
        &mut |done, _| {
            let _ = bar.update(done, &Metrics::new());
        },
    )?;
    bar.finish();
    Ok(scores)
}
