//! The runner of every RL stage from a checkpoint (`lm grpo`, `lm ppo`; `algos::RlStage`):
//! the checkpoint loaded (`--init`: a run's `model/` or a Hugging Face folder), its tokenizer
//! with the chat template when the run uses one, the reward functions, the stage's learner
//! driven by [`crate::run::drive`] with the held-out accuracy measured along the way; and
//! data-parallel GRPO over several devices or machines.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use policy_lab_envs::{Arithmetic, Split};

use super::{check_precision, finish, open_folder, LmRunConfig, LmSummary, Out, RlConfig};
use crate::algos::{FromInit, RlStage};
use crate::core::learner::Learner;
use crate::lm::checkpoint::{load_policy, save_lm, LmTokenizer};
use crate::lm::dataset::{Dataset, DatasetTask};
use crate::lm::dataset_eval::evaluate_dataset;
use crate::lm::generate::SamplingConfig;
use crate::lm::model::Transformer;
use crate::lm::rewards::{Rewards, TextRewards};
use crate::lm::rollout::{LmTask, TextEnv};
use crate::lm::task::{evaluate_accuracy, task_tokenizer, Accuracy};
use crate::lm::tokenizer::Tokenizer;
use crate::run::{drive, resume_from, Budget, Drive, Progress, RunFolder};
use crate::Metrics;
use rand::SeedableRng;

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
    let rl = &config.rl;
    let dataset = match &rl.dataset {
        Some(path) => Some((path, Arc::new(Dataset::read(path)?))),
        None => None,
    };
    if rl.chat_template && dataset.is_none() {
        match &mut tokenizer {
            LmTokenizer::Hf(hf) => hf
                .use_chat_template(rl.system_prompt.clone())
                .with_context(|| format!("rl.chat_template with --init {}", init.display()))?,
            LmTokenizer::Char(_) => bail!(
                "rl.chat_template needs a Hugging Face checkpoint with a chat template; {} is a \
                 character-level model",
                init.display()
            ),
        }
    }
    if dataset.is_some() && rl.system_prompt.is_some() {
        bail!("rl.system_prompt is not read with a dataset: put the system message in its rows");
    }
    let max_len = config.max_completion_length();
    // The prompts: the task's training problems, or the dataset's (as the model reads them:
    // a dataset's conversations through the checkpoint's chat template).
    let template = match &tokenizer {
        LmTokenizer::Hf(hf) => hf.chat_template.clone(),
        LmTokenizer::Char(_) => None,
    };
    let (train_env, held_out) = match &dataset {
        None => (
            LmTask::Arithmetic(Box::new(config.env(Split::Train)?)),
            HeldOut::Task(Box::new(config.env(Split::Test)?)),
        ),
        Some((path, d)) => {
            let task = DatasetTask::new(d, template.as_ref(), rl.chat_template)
                .with_context(|| format!("the dataset {}", path.display()))?;
            let held_out = match &rl.eval_dataset {
                Some(path) => {
                    let e = Arc::new(Dataset::read(path)?);
                    let task = DatasetTask::new(&e, template.as_ref(), rl.chat_template)
                        .with_context(|| format!("the dataset {}", path.display()))?;
                    HeldOut::Dataset(text_rewards(rl, e, task)?)
                }
                None => HeldOut::None,
            };
            (LmTask::Dataset(task), held_out)
        }
    };
    let needed = longest_prompt(config, &train_env, &tokenizer)? + max_len;
    if needed > loaded.config.max_seq_len {
        let prompts = match &rl.dataset {
            Some(path) => format!("the prompts of {}", path.display()),
            None => format!("the task {}:{}", config.task.op, config.task.digits),
        };
        bail!(
            "{prompts} needs sequences of up to {needed} tokens (the longest prompt, and \
             {max_len} for the completion) but the model in {} sees at most {}",
            init.display(),
            loaded.config.max_seq_len
        );
    }
    let (mut folder, config_toml) = open_folder(config, &out)?;
    let name = config.algo.name();
    let n = config.rl.iterations;
    let shape = loaded.config.clone();
    let text = match (&dataset, &train_env) {
        (Some((_, d)), LmTask::Dataset(task)) => Some(text_rewards(rl, d.clone(), task.clone())?),
        _ => None,
    };
    let rewards = reward_funcs::<B::InnerBackend>(rl, &tokenizer, device, text)?;
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
    let start_accuracy = start_accuracy(
        &policy,
        &tokenizer,
        &held_out,
        max_len,
        &mut folder,
        &mut history,
    )?;
    drop(policy);
    if !held_out.is_none() {
        writeln!(
            out.progress,
            "start: held-out accuracy {:.3} on {} problems",
            start_accuracy.accuracy, start_accuracy.problems
        )?;
    }
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
            if (it % config.rl.eval_every == 0 || it == n) && !held_out.is_none() {
                last = held_out.measure(&l.policy().valid(), &tokenizer, max_len)?;
                m.insert("test_accuracy", last.accuracy);
                if held_out.is_dataset() {
                    m.insert("test_format", last.format);
                    m.insert("test_reward", last.mean_reward);
                }
            }
            Ok(())
        })
        .save_policy(|l, dir| save_lm(&dir.join("model"), l.policy(), &shape, &tokenizer)),
        &mut bar,
    )?;
    bar.finish();
    finish(&mut folder, Some(start_accuracy), last, &driven)
}

/// Where an RL run measures its held-out accuracy: the task's test problems, a held-out
/// dataset scored by the run's reward functions (`rl.eval_dataset`), or nowhere.
enum HeldOut {
    Task(Box<Arithmetic>),
    Dataset(TextRewards),
    None,
}

impl HeldOut {
    fn is_none(&self) -> bool {
        matches!(self, HeldOut::None)
    }
    fn is_dataset(&self) -> bool {
        matches!(self, HeldOut::Dataset(_))
    }
    /// Greedy accuracy (and the format reward's mean and the mean reward, on a dataset).
    fn measure<B: burn::tensor::backend::Backend>(
        &self,
        model: &Transformer<B>,
        tokenizer: &impl Tokenizer,
        max_len: usize,
    ) -> Result<Accuracy> {
        Ok(match self {
            HeldOut::Task(env) => evaluate_accuracy(model, tokenizer, env, None)?,
            HeldOut::Dataset(rewards) => {
                let greedy = SamplingConfig::greedy(max_len);
                let mut rng = rand::rngs::StdRng::seed_from_u64(0);
                evaluate_dataset(
                    model,
                    tokenizer,
                    rewards,
                    (&greedy, 1),
                    None,
                    &mut rng,
                    &mut |_, _| {},
                )?
                .accuracy()
            }
            HeldOut::None => Accuracy::default(),
        })
    }
}

/// The held-out accuracy an RL run started from: read back from the first row of a resumed
/// run, or measured now and logged as row 0 (iteration 0, global step 0).
fn start_accuracy<B: burn::tensor::backend::Backend, T: Tokenizer>(
    model: &Transformer<B>,
    tokenizer: &T,
    held_out: &HeldOut,
    max_len: usize,
    folder: &mut RunFolder,
    history: &mut Vec<crate::run::MetricsRow>,
) -> Result<Accuracy> {
    if let Some(row) = history.first() {
        return Ok(Accuracy {
            accuracy: row.get("test_accuracy").copied().unwrap_or(f64::NAN),
            ..Accuracy::default()
        });
    }
    let accuracy = held_out.measure(model, tokenizer, max_len)?;
    let mut m = Metrics::new();
    m.insert("iteration", 0.0);
    m.insert("global_step", 0.0);
    if !held_out.is_none() {
        m.insert("test_accuracy", accuracy.accuracy);
    }
    if held_out.is_dataset() {
        m.insert("test_format", accuracy.format);
        m.insert("test_reward", accuracy.mean_reward);
    }
    folder.log(0, &m)?;
    history.push(m.iter().map(|(k, v)| (k.to_string(), *v)).collect());
    Ok(accuracy)
}

/// The text's reward functions of `rl.reward_funcs` (the built-in ones and commands), with
/// their weights, over `dataset`'s rows and `task`'s prompts.
fn text_rewards(rl: &RlConfig, dataset: Arc<Dataset>, task: DatasetTask) -> Result<TextRewards> {
    let mut functions = Rewards::default();
    for (i, name) in rl.reward_funcs.iter().enumerate() {
        if let Some(f) = rl.rewards.function(name)? {
            let weight = rl.reward_weights.as_ref().map_or(1.0, |w| w[i]);
            functions.functions.push((f, weight));
        }
    }
    Ok(TextRewards {
        functions,
        dataset,
        task,
    })
}

/// The most tokens a prompt of `task` takes as the model reads it: the arithmetic task's
/// longest (BOS or the chat template's text around it, and at most one token per character
/// of `a+b=`), or a dataset's longest prompt.
fn longest_prompt(config: &LmRunConfig, task: &LmTask, tokenizer: &LmTokenizer) -> Result<usize> {
    Ok(match task {
        LmTask::Arithmetic(_) => {
            let nines = "9".repeat(config.task.digits as usize);
            let longest = format!("{nines}{}{nines}=", config.task.op.symbol());
            let around = crate::lm::sft::encode_prompt(tokenizer, "")?.len();
            (around + longest.len()).max(crate::lm::sft::encode_prompt(tokenizer, &longest)?.len())
        }
        LmTask::Dataset(d) => {
            let mut d = d.clone();
            let mut most = 0;
            for row in 0..d.len() {
                let prompt = d.show(row);
                most = most.max(d.encode(tokenizer, &prompt)?.len());
            }
            most
        }
    })
}

/// The reward functions `rl.reward_funcs` names, loaded, with `rl.reward_weights`: the task's
/// reward, reward models, and `text` (the functions of the text, with a dataset). A reward
/// model must share the policy's tokenizer (it reads the policy's token ids).
fn reward_funcs<B: burn::tensor::backend::Backend>(
    rl: &RlConfig,
    tokenizer: &LmTokenizer,
    device: &B::Device,
    text: Option<TextRewards>,
) -> Result<crate::lm::reward::RewardFuncs<B>> {
    let mut funcs = crate::lm::reward::RewardFuncs {
        task_weight: 0.0,
        models: Vec::new(),
        text,
    };
    for (i, name) in rl.reward_funcs.iter().enumerate() {
        let weight = rl.reward_weights.as_ref().map_or(1.0, |w| w[i]);
        if name == "task" {
            funcs.task_weight += weight;
            continue;
        }
        if crate::lm::rewards::is_text_function(name) {
            continue; // a function of the text, in `text`
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
