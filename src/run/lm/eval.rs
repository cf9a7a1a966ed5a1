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
