//! `policy-lab lm eval`: a checkpoint's greedy accuracy on a task's held-out problems.

use std::path::Path;

use anyhow::{bail, Result};
use policy_lab_envs::{ArithmeticConfig, Split};

use crate::lm::checkpoint::{load_policy, LmTokenizer};
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

/// What `lm eval --dataset` measured: each reward function's mean over the rows (greedy, one
/// completion per prompt), the mean completion length in tokens, and every completion.
#[derive(Clone, Debug)]
pub struct DatasetEvaluation {
    /// `(name, mean)` of each reward function, in order (`accuracy` first where given).
    pub means: Vec<(String, f64)>,
    pub mean_tokens: f64,
    /// `(prompt as the model read it, completion)` of each row, in the dataset's order.
    pub completions: Vec<(String, String)>,
    /// The rewards of each row, as `means` orders the functions.
    pub rewards: Vec<Vec<f32>>,
}

/// Greedy completions of every prompt of `dataset` by the model at `model_dir`, scored by
/// `rewards`. A conversational prompt is written with the model's chat template; a standard one
/// raw, or with the template when `chat_template` is set (as `lm generate` writes a prompt
/// unless `--raw`).
pub fn run_eval_dataset<B: burn::tensor::backend::Backend>(
    model_dir: &Path,
    dataset: &crate::lm::dataset::Dataset,
    rewards: &crate::lm::rewards::Rewards,
    chat_template: bool,
    max_new_tokens: usize,
    device: &B::Device,
) -> Result<DatasetEvaluation> {
    use crate::lm::dataset::Prompt;
    use crate::lm::generate::{complete, SamplingConfig};
    use crate::lm::rewards::Sample;
    use crate::lm::tokenizer::{encode_prompt, Tokenizer};
    use rand::SeedableRng;

    let loaded = load_policy::<B>(model_dir, None, device)?;
    let template = match &loaded.tokenizer {
        LmTokenizer::Hf(t) => t.chat_template.clone(),
        LmTokenizer::Char(_) => None,
    };
    let tokenizer = &loaded.tokenizer;
    let mut texts = Vec::new();
    let mut ids = Vec::new();
    for (i, row) in dataset.rows.iter().enumerate() {
        let templated = chat_template || matches!(row.prompt, Prompt::Conversation(_));
        let (text, tokens) = match (templated, &template) {
            (false, _) => {
                let Prompt::Text(text) = &row.prompt else {
                    unreachable!("a conversation is templated")
                };
                (text.clone(), encode_prompt(tokenizer, text)?)
            }
            (true, Some(t)) => {
                let text = row.prompt.render(Some(t))?;
                let tokens = tokenizer.encode(&text)?;
                (text, tokens)
            }
            (true, None) => bail!(
                "row {}: {} has no chat template, which a conversational prompt (or --chat-template) needs",
                i + 1,
                model_dir.display()
            ),
        };
        texts.push(text);
        ids.push(tokens);
    }
    let sampling = SamplingConfig::greedy(max_new_tokens);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut err = std::io::stderr();
    let total = ids.len();
    let mut bar = Progress::new("eval", total, "prompts", 10, total.div_ceil(32), &mut err);
    let mut answers: Vec<Vec<u32>> = Vec::new();
    for chunk in ids.chunks(32) {
        answers.extend(complete(&loaded.model, tokenizer, chunk, &sampling, &mut rng)?.tokens);
        let _ = bar.update(answers.len(), &Metrics::new());
    }
    bar.finish();
    let eos = tokenizer.eos_id();
    let decoded: Vec<String> = answers
        .iter()
        .map(|t| {
            let t: Vec<u32> = t.iter().copied().filter(|&x| x != eos).collect();
            tokenizer.decode(&t)
        })
        .collect();
    let batch: Vec<Sample> = dataset
        .rows
        .iter()
        .zip(&texts)
        .zip(&decoded)
        .map(|((row, prompt), completion)| Sample {
            prompt,
            completion,
            row,
        })
        .collect();
    let scores = rewards.score(&batch)?;
    let means = scores
        .per_function
        .iter()
        .map(|(name, r)| {
            let mean = r.iter().map(|&x| x as f64).sum::<f64>() / r.len().max(1) as f64;
            (name.clone(), mean)
        })
        .collect();
    let rewards_per_row = (0..batch.len())
        .map(|i| scores.per_function.iter().map(|(_, r)| r[i]).collect())
        .collect();
    let mean_tokens =
        answers.iter().map(Vec::len).sum::<usize>() as f64 / answers.len().max(1) as f64;
    Ok(DatasetEvaluation {
        means,
        mean_tokens,
        completions: texts.into_iter().zip(decoded).collect(),
        rewards: rewards_per_row,
    })
}
