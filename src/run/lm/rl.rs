//! The runner of every RL stage from a checkpoint (`lm grpo`, `lm ppo`; `algos::RlStage`):
//! the checkpoint loaded (`--init`: a run's `model/` or a Hugging Face folder), its tokenizer
//! with the chat template when the run uses one, the reward functions, the stage's learner
//! driven by [`crate::run::drive`] with the held-out accuracy measured along the way; and
//! data-parallel GRPO over several devices or machines.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use policy_lab_envs::{Arithmetic, Split};

use super::{check_precision, finish, open_folder, LmRunConfig, LmSummary, Out, RlConfig};
use crate::algos::{FromInit, RlStage};
use crate::core::learner::Learner;
use crate::lm::checkpoint::{load_policy, save_lm, LmTokenizer};
use crate::lm::model::Transformer;
use crate::lm::task::{evaluate_accuracy, task_tokenizer, Accuracy};
use crate::lm::tokenizer::Tokenizer;
use crate::run::{drive, resume_from, Budget, Drive, Progress, RunFolder};
use crate::Metrics;

/// The RL stage `stage` (the settings of `config.algo`'s table) from the checkpoint in
/// `init`, with the held-out accuracy measured along the way, into `out`, on `devices` (more
/// than one: data-parallel GRPO, one peer per device).
pub fn run_stage<B: AutodiffBackend, S: RlStage>(
    config: &LmRunConfig,
    stage: &S,
    (init, devices): (&Path, &[B::Device]),
    out: Out,
) -> Result<LmSummary> {
    let device = devices.first().context("run_rl needs a device")?;
    config.validate()?;
    let tokenizer = task_tokenizer();
    check_precision::<B>(config.precision, device)?;
    let mut loaded = load_policy::<B>(init, Some(&tokenizer), device)?;
    loaded.model = loaded.model.with_precision(config.precision);
    let mut tokenizer = loaded.tokenizer.clone();
    if config.rl.chat_template {
        match &mut tokenizer {
            LmTokenizer::Hf(hf) => hf
                .use_chat_template(config.rl.system_prompt.clone())
                .with_context(|| format!("rl.chat_template with --init {}", init.display()))?,
            LmTokenizer::Char(_) => bail!(
                "rl.chat_template needs a Hugging Face checkpoint with a chat template; {} is a \
                 character-level model",
                init.display()
            ),
        }
    }
    // The longest prompt as the model will read it: BOS or the chat template's text around
    // it (what an empty prompt takes), and at most one token per character of `a+b=`.
    let nines = "9".repeat(config.task.digits as usize);
    let longest = format!("{nines}{}{nines}=", config.task.op.symbol());
    let around = crate::lm::sft::encode_prompt(&tokenizer, "")?.len();
    let needed = (around + longest.len())
        .max(crate::lm::sft::encode_prompt(&tokenizer, &longest)?.len())
        + config.max_completion_length();
    if needed > loaded.config.max_seq_len {
        bail!(
            "the task {}:{} needs sequences of up to {needed} tokens (prompt and completion) but \
             the model in {} sees at most {}",
            config.task.op,
            config.task.digits,
            init.display(),
            loaded.config.max_seq_len
        );
    }
    let (mut folder, config_toml) = open_folder(config, &out)?;
    let name = config.algo.name();
    let train_env = config.env(Split::Train)?;
    let test_env = config.env(Split::Test)?;
    let max_len = config.max_completion_length();
    let n = config.rl.iterations;
    let shape = loaded.config.clone();
    let rewards = reward_funcs::<B::InnerBackend>(&config.rl, &tokenizer, device)?;
    let resumable = config.algo.resumable();
    let resumable: Vec<&str> = resumable.iter().map(String::as_str).collect();
    let mut learner = stage.learner(FromInit {
        model: loaded.model,
        env: train_env,
        tokenizer: tokenizer.clone(),
        max_completion_length: max_len,
        seed: config.seed,
        rewards,
        devices: devices.to_vec(),
        nodes: config.rl.nodes.clone(),
    })?;
    let (state, history) = resume_from(
        &mut folder,
        learner.as_mut(),
        &config_toml,
        &resumable,
        out.start,
    )?;
    let mut history = history;
    let policy = learner.policy().valid();
    let start_accuracy = start_accuracy(&policy, &tokenizer, &test_env, &mut folder, &mut history)?;
    drop(policy);
    writeln!(
        out.progress,
        "start: held-out accuracy {:.3} on {} problems",
        start_accuracy.accuracy, start_accuracy.problems
    )?;
    let mut last = start_accuracy.clone();
    let mut bar = Progress::new(name, n, "iterations", 20, n, out.progress);
    let every = config.checkpoint_every;
    let driven = drive(
        learner.as_mut(),
        &mut folder,
        (state, history),
        Drive::<dyn Learner<Policy = Transformer<B>>>::new(
            &config_toml,
            every,
            Budget::Iterations(n),
        )
        .after(|it, m, l| {
            // The task is one step per completion: environment steps are completions.
            m.insert("global_step", m["completions_seen"]);
            if it % config.rl.eval_every == 0 || it == n {
                last = evaluate_accuracy(&l.policy().valid(), &tokenizer, &test_env, None)?;
                m.insert("test_accuracy", last.accuracy);
            }
            Ok(())
        })
        .save_policy(|l, dir| save_lm(&dir.join("model"), l.policy(), &shape, &tokenizer)),
        &mut bar,
    )?;
    bar.finish();
    finish(&mut folder, Some(start_accuracy), last, &driven)
}

/// The held-out accuracy an RL run started from: read back from the first row of a resumed
/// run, or measured now and logged as row 0 (iteration 0, global step 0).
fn start_accuracy<B: burn::tensor::backend::Backend, T: Tokenizer>(
    model: &Transformer<B>,
    tokenizer: &T,
    test_env: &Arithmetic,
    folder: &mut RunFolder,
    history: &mut Vec<crate::run::MetricsRow>,
) -> Result<Accuracy> {
    if let Some(row) = history.first() {
        return Ok(Accuracy {
            accuracy: row.get("test_accuracy").copied().unwrap_or(f64::NAN),
            ..Accuracy::default()
        });
    }
    let accuracy = evaluate_accuracy(model, tokenizer, test_env, None)?;
    let mut m = Metrics::new();
    m.insert("iteration", 0.0);
    m.insert("global_step", 0.0);
    m.insert("test_accuracy", accuracy.accuracy);
    folder.log(0, &m)?;
    history.push(m.iter().map(|(k, v)| (k.to_string(), *v)).collect());
    Ok(accuracy)
}

/// The reward functions `rl.reward_funcs` names, loaded, with `rl.reward_weights`. A reward
/// model must share the policy's tokenizer (it reads the policy's token ids).
fn reward_funcs<B: burn::tensor::backend::Backend>(
    rl: &RlConfig,
    tokenizer: &LmTokenizer,
    device: &B::Device,
) -> Result<crate::lm::reward::RewardFuncs<B>> {
    let mut funcs = crate::lm::reward::RewardFuncs {
        task_weight: 0.0,
        models: Vec::new(),
    };
    for (i, name) in rl.reward_funcs.iter().enumerate() {
        let weight = rl.reward_weights.as_ref().map_or(1.0, |w| w[i]);
        if name == "task" {
            funcs.task_weight += weight;
            continue;
        }
        let dir = model_dir(Path::new(name));
        let (model, rm_tokenizer) = crate::lm::reward::load_reward_model::<B>(&dir, device)?;
        if rm_tokenizer.fingerprint() != tokenizer.fingerprint() {
            bail!(
                "the reward model in {} reads another tokenizer ({}) than the policy ({})",
                dir.display(),
                rm_tokenizer.fingerprint(),
                tokenizer.fingerprint()
            );
        }
        funcs.models.push((name.clone(), model, weight));
    }
    Ok(funcs)
}

/// A run folder's `model/`, or the folder itself.
fn model_dir(path: &Path) -> PathBuf {
    if path.join("model").join("head.mpk").exists() {
        path.join("model")
    } else {
        path.to_path_buf()
    }
}
