//! Language-model runs, as `policy-lab lm ...` starts them: an SFT warm start, then RL (GRPO,
//! or PPO with a value head) from its checkpoint, and the accuracy evaluation.
//!
//! Each run is a folder, as for the toy environments:
//!
//! ```text
//! config.toml     the resolved settings (LmRunConfig)
//! metrics.jsonl   one line per step (SFT) or iteration (RL, after a line for the start);
//!                 `test_accuracy` at evaluations,
//!                 `global_step` = demonstrations (SFT) or completions (RL) so far
//! model/          the model (weights, shape, tokenizer; see `lm::checkpoint`), written at
//!                 every checkpoint and at the end
//! resume/         everything `--resume` needs to go on exactly (see `run::folder`)
//! summary.json    the held-out accuracy at the start and the end, and the wall time
//! ```
//!
//! The folder is the run layer's ([`crate::run`]), as for the toy runs: locked while
//! written, refused if it already holds a run (unless `--resume` or `--overwrite`),
//! checkpointed every `checkpoint_every` iterations and on Ctrl-C, and resumed exactly.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use policy_lab_envs::{Arithmetic, ArithmeticConfig, Split};
use serde::{Deserialize, Serialize};

use crate::algos::grpo_lm::{GrpoLm, GrpoLmConfig};
use crate::algos::ppo_lm::{PpoLm, PpoLmConfig};
use crate::backend::Device;
use crate::core::learner::Learner;
use crate::lm::checkpoint::{load_policy, save_lm, LmTokenizer};
use crate::lm::model::{Precision, Transformer, TransformerConfig};
use crate::lm::sft::Sft;
use crate::lm::task::{evaluate_accuracy, task_tokenizer, Accuracy};
use crate::lm::tokenizer::Tokenizer;
use crate::run::{drive, resume_from, Drive, Progress, RunFolder, RunState, Start};
use crate::{ConfigError, Metrics};

/// The shape of a new model (the vocabulary comes from the task's tokenizer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelShape {
    pub max_seq_len: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_ff: usize,
}

impl Default for ModelShape {
    fn default() -> Self {
        Self {
            max_seq_len: 32,
            d_model: 128,
            n_layers: 4,
            n_heads: 4,
            d_ff: 512,
        }
    }
}

/// The SFT warm start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// The most optimizer steps.
    pub steps: usize,
    /// Demonstrations per step.
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Measure the held-out accuracy every this many steps.
    pub eval_every: usize,
    /// Stop (and save) as soon as the held-out accuracy reaches this: a *partial* warm
    /// start, which RL is then asked to improve. Above 1 (e.g. 2.0), all `steps` run.
    pub stop_at_accuracy: f64,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            steps: 5000,
            batch_size: 64,
            learning_rate: 1e-3,
            eval_every: 50,
            stop_at_accuracy: 0.5,
        }
    }
}

/// What RL runs share, whichever the algorithm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlConfig {
    pub iterations: usize,
    /// Measure the held-out accuracy every this many iterations (and at the start and end).
    pub eval_every: usize,
    /// Data-parallel GRPO over this many devices (`run::parallel`): `cuda` devices 0, 1, ...;
    /// on `cpu`, peers that share the cores (for testing). 1 is one device.
    pub devices: usize,
    /// Write each prompt as a conversation with the checkpoint's chat template (TRL's
    /// conversational prompts, `apply_chat_template(..., add_generation_prompt=True)`): for
    /// an instruct model started with `--init`. Off: the task's raw text.
    pub chat_template: bool,
    /// With `chat_template`, a system message before each prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// TRL's `reward_funcs` (GRPO and PPO): `"task"`, the task's verifiable reward, and/or the
    /// folders of reward models (`lm reward`'s `model/`).
    pub reward_funcs: Vec<String>,
    /// TRL's `reward_weights`, one per entry of `reward_funcs`; unset: 1 each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_weights: Option<Vec<f32>>,
    /// Data-parallel GRPO over several machines: this process's place among them
    /// (`[rl.nodes]`, [`crate::run::parallel::Nodes`]); each node uses its `devices`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<crate::run::parallel::Nodes>,
}

impl Default for RlConfig {
    fn default() -> Self {
        Self {
            iterations: 1000,
            eval_every: 50,
            devices: 1,
            chat_template: false,
            system_prompt: None,
            reward_funcs: vec!["task".into()],
            reward_weights: None,
            nodes: None,
        }
    }
}

/// The reward model's training (`lm reward`): Bradley-Terry steps on fresh preference pairs
/// of the task's prompts (`lm::reward::PreferenceTask`), the model of `[model]`'s shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// Everything an `lm` run needs; read from TOML (unknown keys are refused).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmRunConfig {
    /// `sft`, `grpo` or `ppo` (the command sets it).
    pub algo: LmAlgo,
    pub seed: u64,
    pub device: Device,
    /// The forward passes' number type: `f32`, or `bf16` / `f16` with the weights, gradients
    /// and optimizer state kept in f32 (mixed precision, [`Precision`]). bf16 and f16 need a
    /// backend that stores them (`cuda`; burn's NdArray, `cpu`, stores only f32 and f64).
    pub precision: Precision,
    /// Write a checkpoint (`resume/` and `model/`) every this many SFT steps or RL
    /// iterations, and at the end.
    pub checkpoint_every: usize,
    /// The model RL starts from (`--init`, recorded so that `--resume` starts from the same
    /// one); none for SFT.
    pub init: Option<PathBuf>,
    pub task: ArithmeticConfig,
    pub model: ModelShape,
    pub sft: SftConfig,
    /// The reward model (`lm reward`).
    pub reward: RewardConfig,
    pub rl: RlConfig,
    pub grpo: GrpoLmConfig,
    /// PPO with a value head, one completion per prompt.
    pub ppo: PpoLmConfig,
}

impl Default for LmRunConfig {
    fn default() -> Self {
        Self {
            algo: LmAlgo::Sft,
            seed: 1,
            device: Device::Cpu,
            precision: Precision::F32,
            checkpoint_every: 50,
            init: None,
            task: ArithmeticConfig::default(),
            model: ModelShape::default(),
            sft: SftConfig::default(),
            reward: RewardConfig::default(),
            rl: RlConfig::default(),
            grpo: GrpoLmConfig::default(),
            ppo: PpoLmConfig::default(),
        }
    }
}

impl LmRunConfig {
    /// Reads a TOML file's text; unknown keys, invalid values and settings the run's stage
    /// does not read are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::from_toml_as(text, None)
    }
    /// [`LmRunConfig::from_toml`] for the stage `algo` when given (the command's, over the
    /// file's `algo`): an `lm sft` file holds `[model]` and `[sft]`, an `lm grpo` one `[rl]`
    /// and `[grpo]`, an `lm ppo` one `[rl]` and `[ppo]`, each with `[task]`.
    pub fn from_toml_as(text: &str, algo: Option<LmAlgo>) -> Result<Self> {
        // The file's values go over these defaults, key by key: a `[grpo]` table that sets
        // only `temperature` keeps the language-model defaults of the other GRPO settings
        // (`GrpoLmConfig::default()`, not the toy environments' `GrpoUpdate::default()`).
        // Unknown keys and values of the wrong type, reported at the file's own lines.
        crate::core::config::parse_toml::<Self>(text)?;
        let file: toml::Value = crate::core::config::parse_toml(text)?;
        let mut merged = toml::Value::try_from(Self::default())?;
        crate::core::config::merge(&mut merged, file);
        let mut config: Self = merged.try_into().context("reading the lm config")?;
        if let Some(algo) = algo {
            config.algo = algo;
        }
        let stage = config.algo;
        crate::core::config::refuse_unused(text, stage.unused(), |name| {
            let why = match name {
                "model" => "the model and its shape come from `--init`",
                "init" | "rl" => "`lm sft` trains a fresh model",
                _ => "its settings are another stage's",
            };
            format!(
                "does nothing in an `lm {}` run: {why}; a run's file holds only the settings \
                 its stage reads",
                stage.name()
            )
        })?;
        config.validate()?;
        Ok(config)
    }
    /// Reads the TOML file at `path`; an error names the file, the line and the key.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_file_as(path, None)
    }
    /// [`LmRunConfig::from_toml_as`] on the file at `path`.
    pub fn from_file_as(path: &Path, algo: Option<LmAlgo>) -> Result<Self> {
        let text = crate::core::files::read_text(path)?;
        Self::from_toml_as(&text, algo).with_context(|| format!("in {}", path.display()))
    }
    /// The settings as TOML, each value as the user would write it, with only the tables
    /// the run's stage reads.
    pub fn to_toml(&self) -> String {
        crate::core::config::to_toml_without(self, self.algo.unused())
    }
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        Arithmetic::new(self.task.clone()).map_err(|e| ConfigError(format!("task: {e}")))?;
        let m = &self.model;
        if m.d_model == 0 || m.n_heads == 0 || !m.d_model.is_multiple_of(m.n_heads) {
            return bad(format!(
                "model: d_model ({}) must be a positive multiple of n_heads ({})",
                m.d_model, m.n_heads
            ));
        }
        if m.n_layers == 0 || m.d_ff == 0 || m.max_seq_len == 0 {
            return bad("model: n_layers, d_ff and max_seq_len must be at least 1".into());
        }
        let r = &self.reward;
        if r.steps == 0 || r.batch_size == 0 || r.eval_every == 0 || r.held_out_pairs == 0 {
            return bad(
                "reward: steps, batch_size, eval_every and held_out_pairs must be at least 1"
                    .into(),
            );
        }
        if !(r.learning_rate > 0.0 && r.learning_rate.is_finite()) {
            return bad("reward: learning_rate must be positive".into());
        }
        let s = &self.sft;
        if s.steps == 0 || s.batch_size == 0 || s.eval_every == 0 {
            return bad("sft: steps, batch_size and eval_every must be at least 1".into());
        }
        if !(s.learning_rate > 0.0 && s.learning_rate.is_finite()) {
            return bad("sft: learning_rate must be positive".into());
        }
        if self.rl.eval_every == 0 {
            return bad("rl: eval_every must be at least 1".into());
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every must be at least 1".into());
        }
        if self.rl.devices == 0 {
            return bad("rl: devices must be at least 1".into());
        }
        let funcs = &self.rl.reward_funcs;
        if funcs.is_empty() {
            return bad(
                "rl: reward_funcs must name at least one (\"task\" or a reward model's folder)"
                    .into(),
            );
        }
        if let Some(w) = &self.rl.reward_weights {
            if w.len() != funcs.len() || w.iter().any(|w| !w.is_finite()) {
                return bad(format!(
                    "rl: reward_weights has {} finite weights; reward_funcs has {} functions",
                    w.len(),
                    funcs.len()
                ));
            }
        }
        let task_only = funcs.iter().all(|f| f == "task");
        if let Some(nodes) = &self.rl.nodes {
            nodes.validate()?;
        }
        if !task_only && self.data_parallel() {
            return bad("rl: reward models score runs on one device (devices = 1)".into());
        }
        if self.data_parallel() && self.algo == LmAlgo::Ppo {
            return bad(
                "rl: data parallelism (devices > 1 or nodes) is implemented for GRPO only".into(),
            );
        }
        let peers = crate::run::parallel::Nodes::world(self.rl.devices, self.rl.nodes.as_ref());
        if !self.grpo.update.num_groups.is_multiple_of(peers) {
            return bad(format!(
                "rl: grpo.num_groups ({}) must be a multiple of the devices of every node ({})",
                self.grpo.update.num_groups, peers
            ));
        }
        self.grpo.validate()?;
        self.ppo.validate()
    }
    /// Whether RL runs data-parallel: over several devices or several machines.
    pub fn data_parallel(&self) -> bool {
        self.rl.devices > 1 || self.rl.nodes.is_some()
    }

    /// The transformer's shape for `vocab_size` tokens.
    pub fn transformer(&self, vocab_size: usize) -> TransformerConfig {
        let m = &self.model;
        TransformerConfig::new(vocab_size)
            .with_max_seq_len(m.max_seq_len)
            .with_d_model(m.d_model)
            .with_n_layers(m.n_layers)
            .with_n_heads(m.n_heads)
            .with_d_ff(m.d_ff)
    }
    /// The longest completion RL samples, in tokens: the task's answer limit
    /// (`task.max_completion_length`, in characters, one token each) plus one for EOS.
    pub fn max_completion_length(&self) -> usize {
        self.task.completion_limit() + 1
    }
    /// The task's environment on one split of its problems (`Split::Train` for RL and SFT,
    /// `Split::Test` for the held-out accuracy).
    pub fn env(&self, split: Split) -> Result<Arithmetic> {
        Ok(Arithmetic::new(ArithmeticConfig {
            split,
            ..self.task.clone()
        })?)
    }
}

/// What an `lm` run does: the SFT warm start, or RL from a checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LmAlgo {
    #[default]
    Sft,
    Grpo,
    Ppo,
    /// A reward model trained on preference pairs (the RLHF rung).
    Reward,
}

impl LmAlgo {
    /// The settings this stage does not read: SFT trains a fresh model of `[model]`'s shape;
    /// RL starts from `--init` (its model and shape) and reads `[rl]` and its own table.
    pub fn unused(self) -> &'static [&'static str] {
        match self {
            LmAlgo::Sft => &["init", "rl", "grpo", "ppo", "reward"],
            LmAlgo::Grpo => &["model", "sft", "ppo", "reward"],
            LmAlgo::Ppo => &["model", "sft", "grpo", "reward"],
            LmAlgo::Reward => &["init", "rl", "grpo", "ppo", "sft"],
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            LmAlgo::Sft => "sft",
            LmAlgo::Grpo => "grpo",
            LmAlgo::Ppo => "ppo",
            LmAlgo::Reward => "reward",
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmSummary {
    /// Held-out accuracy of the starting model (none for SFT from scratch).
    pub start: Option<Accuracy>,
    pub end: Accuracy,
    /// SFT steps or RL iterations done.
    pub iterations: usize,
    pub seconds: f64,
    /// Where the model went.
    pub model: PathBuf,
}

/// Runs the stage `config.algo` names (SFT, or RL from `config.init`) on the backend
/// `config.device` names: [`run_sft`] and [`run_rl`] without a type parameter, for the command
/// line and for notebook cells (a cell that calls this compiles in a moment; one that calls
/// `run_rl::<Cpu>` compiles the whole LM stack for itself). RL runs on `rl.devices` devices of
/// that backend.
pub fn run_lm(
    config: &LmRunConfig,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    crate::backend::on_backend!(config.device, B => {
        run_lm_on::<B>(config, out, start, progress)
    })?
}

/// Refuses a [`Precision`] that backend `B` cannot store on `device`, naming the key.
pub fn check_precision<B: burn::tensor::backend::Backend>(
    precision: Precision,
    device: &B::Device,
) -> Result<()> {
    if !precision.supported::<B>(device) {
        bail!(
            "precision = \"{0}\": this backend cannot store {0} tensors on {device:?} (burn's \
             NdArray CPU backend, `--device cpu`, stores only f32 and f64); use `--device cuda` \
             for {0}, or precision = \"f32\"",
            precision.name()
        );
    }
    Ok(())
}

/// Whether the backend `device` names can run `precision` on its default device.
pub fn supports_precision(device: Device, precision: Precision) -> Result<bool> {
    Ok(crate::backend::on_backend!(device, B => {
        precision.supported::<B>(&Default::default())
    })?)
}

/// [`run_lm`] on backend `B`, on its default device (or its first `rl.devices` for RL).
fn run_lm_on<B: AutodiffBackend>(
    config: &LmRunConfig,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    match config.algo {
        LmAlgo::Sft => run_sft::<B>(config, &Default::default(), out, start, progress),
        LmAlgo::Reward => run_reward::<B>(config, &Default::default(), out, start, progress),
        LmAlgo::Grpo | LmAlgo::Ppo => {
            let init = config
                .init
                .as_ref()
                .context("RL starts from a model (init)")?;
            let devices = crate::backend::devices::<B>(config.rl.devices);
            run_rl::<B>(config, init, &devices, out, start, progress)
        }
    }
}

/// SFT from a fresh model on the task's demonstrations, stopping at `sft.stop_at_accuracy`,
/// in the run folder `out` (`start`: a new run, a replacement, or going on from the newest
/// checkpoint).
pub fn run_sft<B: AutodiffBackend>(
    config: &LmRunConfig,
    device: &B::Device,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    config.validate()?;
    check_precision::<B>(config.precision, device)?;
    let config_toml = config.to_toml();
    let mut folder = RunFolder::open(out, start, &config_toml, resume_command("sft", out))?;
    let tokenizer = task_tokenizer();
    let shape = config.transformer(tokenizer.vocab_size());
    let model: Transformer<B> =
        crate::backend::seeded::<B, _>(device, config.seed, || shape.init(device))
            .with_precision(config.precision);
    let s = &config.sft;
    let test_env = config.env(Split::Test)?;
    let train_env = config.env(Split::Train)?;
    let mut learner = Sft::new(
        model,
        tokenizer.clone(),
        train_env,
        s.batch_size,
        s.learning_rate,
        config.seed,
    );
    let (state, history) = resume_from(&mut folder, &mut learner, &config_toml, RESUMABLE, start)?;
    // The accuracy last measured, and whether it reached the stopping point.
    let mut last = history
        .iter()
        .rev()
        .find_map(|row| row.get("test_accuracy"))
        .map(|&accuracy| Accuracy {
            accuracy,
            ..Accuracy::default()
        })
        .unwrap_or_default();
    let reached = std::cell::Cell::new(last.accuracy >= s.stop_at_accuracy);
    let lm_tokenizer = LmTokenizer::Char(tokenizer.clone());
    let mut bar = Progress::new("sft", s.steps, "steps", 20, s.steps, progress);
    let driven = drive(
        &mut learner,
        &mut folder,
        state,
        history,
        Drive {
            config_toml: &config_toml,
            checkpoint_every: config.checkpoint_every,
            done: &|_, it| it >= s.steps || reached.get(),
            position: &|_, it| it,
            after: &mut |it, m, l| {
                if it % s.eval_every == 0 || it == s.steps {
                    last = evaluate_accuracy(&l.model.valid(), &tokenizer, &test_env, None)?;
                    m.insert("test_accuracy", last.accuracy);
                    reached.set(last.accuracy >= s.stop_at_accuracy);
                }
                Ok(())
            },
            save_policy: &|l, dir| save_lm(&dir.join("model"), &l.model, &shape, &lm_tokenizer),
        },
        &mut bar,
    );
    let driven = driven?;
    bar.finish();
    finish(&mut folder, None, last, &driven)
}
/// A reward model trained on the task's preference pairs (`lm::reward`), its held-out pair
/// accuracy measured along the way, in the run folder `out`; the model goes to `out/model`
/// (`lm::reward::load_reward_model` reads it). The summary's accuracy is the held-out pair
/// accuracy.
pub fn run_reward<B: AutodiffBackend>(
    config: &LmRunConfig,
    device: &B::Device,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    use crate::lm::reward::{
        evaluate_pairs, save_reward_model, PreferenceTask, RewardModel, RewardTrainer,
    };
    config.validate()?;
    check_precision::<B>(config.precision, device)?;
    let config_toml = config.to_toml();
    let mut folder = RunFolder::open(out, start, &config_toml, resume_command("reward", out))?;
    let tokenizer = task_tokenizer();
    let shape = config.transformer(tokenizer.vocab_size());
    let mut model: RewardModel<B> =
        crate::backend::seeded::<B, _>(device, config.seed, || RewardModel::new(&shape, device));
    model.backbone = model.backbone.with_precision(config.precision);
    let r = &config.reward;
    // Held-out pairs from another seed than any training draw (the trainer's is `seed`).
    let held_out = PreferenceTask::new(config.env(Split::Test)?)
        .pairs(r.held_out_pairs, config.seed.wrapping_add(0x5eed));
    let task = PreferenceTask::new(config.env(Split::Train)?);
    let mut learner = RewardTrainer::new(
        model,
        tokenizer.clone(),
        task,
        r.batch_size,
        r.learning_rate,
        config.seed,
    );
    let (state, history) = resume_from(&mut folder, &mut learner, &config_toml, RESUMABLE, start)?;
    let mut last = Accuracy {
        accuracy: history
            .iter()
            .rev()
            .find_map(|row| row.get("held_out_accuracy").copied())
            .unwrap_or(0.0),
        ..Accuracy::default()
    };
    let lm_tokenizer = LmTokenizer::Char(tokenizer.clone());
    let mut bar = Progress::new("reward", r.steps, "steps", 20, r.steps, progress);
    let driven = drive(
        &mut learner,
        &mut folder,
        state,
        history,
        Drive {
            config_toml: &config_toml,
            checkpoint_every: config.checkpoint_every,
            done: &|_, it| it >= r.steps,
            position: &|_, it| it,
            after: &mut |it, m, l| {
                if it % r.eval_every == 0 || it == r.steps {
                    let stats = evaluate_pairs(&l.model.valid(), &tokenizer, &held_out)?;
                    m.insert("held_out_accuracy", stats.accuracy);
                    m.insert("held_out_margin", stats.margin);
                    last.accuracy = stats.accuracy;
                }
                Ok(())
            },
            save_policy: &|l, dir| {
                save_reward_model(&dir.join("model"), &l.model, &shape, &lm_tokenizer)
            },
        },
        &mut bar,
    );
    let driven = driven?;
    bar.finish();
    finish(&mut folder, None, last, &driven)
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

/// RL (`algo`) from the checkpoint in `init`, with the held-out accuracy measured along
/// the way, in the run folder `out` (`start`: a new run, a replacement, or going on from
/// the newest checkpoint), on `devices` (more than one: data-parallel GRPO, one peer per
/// device).
pub fn run_rl<B: AutodiffBackend>(
    config: &LmRunConfig,
    init: &Path,
    devices: &[B::Device],
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    let device = devices.first().context("run_rl needs a device")?;
    config.validate()?;
    if matches!(config.algo, LmAlgo::Sft | LmAlgo::Reward) {
        bail!("run_rl needs algo = grpo or ppo; SFT is run_sft, the reward model run_reward");
    }
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
    let config_toml = config.to_toml();
    let name = config.algo.name();
    let mut folder = RunFolder::open(out, start, &config_toml, resume_command(name, out))?;
    let train_env = config.env(Split::Train)?;
    let test_env = config.env(Split::Test)?;
    let max_len = config.max_completion_length();
    let n = config.rl.iterations;
    let shape = loaded.config.clone();
    if config.data_parallel() {
        return run_data_parallel(
            config,
            &config_toml,
            loaded,
            train_env,
            &test_env,
            devices,
            folder,
            start,
            progress,
        );
    }
    let rewards = reward_funcs::<B::InnerBackend>(&config.rl, &tokenizer, device)?;
    let mut learner: Box<dyn Learner<Policy = Transformer<B>>> = match config.algo {
        LmAlgo::Sft | LmAlgo::Reward => unreachable!("refused above"),
        LmAlgo::Grpo => Box::new(
            GrpoLm::new(
                config.grpo.clone(),
                max_len,
                loaded.model,
                train_env,
                tokenizer.clone(),
                config.seed,
            )?
            .with_rewards(rewards),
        ),
        LmAlgo::Ppo => Box::new(
            PpoLm::new(
                config.ppo.clone(),
                max_len,
                loaded.model,
                train_env,
                tokenizer.clone(),
                config.seed,
            )?
            .with_rewards(rewards),
        ),
    };
    let (state, history) = resume_from(
        &mut folder,
        learner.as_mut(),
        &config_toml,
        RESUMABLE,
        start,
    )?;
    let mut history = history;
    let policy = learner.policy().valid();
    let start_accuracy = start_accuracy(&policy, &tokenizer, &test_env, &mut folder, &mut history)?;
    drop(policy);
    writeln!(
        progress,
        "start: held-out accuracy {:.3} on {} problems",
        start_accuracy.accuracy, start_accuracy.problems
    )?;
    let mut last = start_accuracy.clone();
    let mut bar = Progress::new(name, n, "iterations", 20, n, progress);
    let driven = drive(
        learner.as_mut(),
        &mut folder,
        state,
        history,
        Drive {
            config_toml: &config_toml,
            checkpoint_every: config.checkpoint_every,
            done: &|_, it| it >= n,
            position: &|_, it| it,
            after: &mut |it, m, l| {
                // The task is one step per completion: environment steps are completions.
                m.insert("global_step", m["completions_seen"]);
                if it % config.rl.eval_every == 0 || it == n {
                    last = evaluate_accuracy(&l.policy().valid(), &tokenizer, &test_env, None)?;
                    m.insert("test_accuracy", last.accuracy);
                }
                Ok(())
            },
            save_policy: &|l, dir| save_lm(&dir.join("model"), l.policy(), &shape, &tokenizer),
        },
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

/// Data-parallel GRPO (`devices > 1`) in the run folder, as every run: logged and checked,
/// checkpointed every `checkpoint_every` iterations and on Ctrl-C (each peer saves its own
/// prompt stream and generator into `resume/peer{k}/`), and resumed exactly.
#[allow(clippy::too_many_arguments)]
fn run_data_parallel<B: AutodiffBackend>(
    config: &LmRunConfig,
    config_toml: &str,
    loaded: crate::lm::checkpoint::LoadedLm<B>,
    train_env: Arithmetic,
    test_env: &Arithmetic,
    devices: &[B::Device],
    mut folder: RunFolder,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    use crate::run::parallel::{grpo_data_parallel_run, AfterIteration, Peers};
    if config.algo != LmAlgo::Grpo {
        bail!("data parallelism (devices > 1 or nodes) is implemented for GRPO only");
    }
    let tokenizer = loaded.tokenizer.clone();
    let shape = loaded.config.clone();
    let n = config.rl.iterations;
    // Where a resumed run stands: its checkpoint, and the rows it keeps.
    let (resume, state, mut history) = match start {
        Start::Resume => {
            let (ckpt, state, rows) = folder.resume_at(config_toml, RESUMABLE)?;
            (Some(ckpt), state, rows)
        }
        _ => (None, RunState::default(), Vec::new()),
    };
    let start_accuracy = start_accuracy(
        &loaded.model.valid(),
        &tokenizer,
        test_env,
        &mut folder,
        &mut history,
    )?;
    crate::run::interrupt::install();
    let started = std::time::Instant::now();
    let seconds = |s: &RunState| s.seconds + started.elapsed().as_secs_f64();
    let mut last = start_accuracy.clone();
    let mut bar = Progress::new("grpo", n, "iterations", 20, n, progress);
    let folder = std::sync::Mutex::new(folder);
    let history = std::sync::Mutex::new(history);
    let peers = Peers {
        config: config.grpo.clone(),
        max_completion_length: config.max_completion_length(),
        model: loaded.model,
        env: train_env,
        tokenizer: tokenizer.clone(),
        seed: config.seed,
        devices: devices.to_vec(),
        nodes: config.rl.nodes.clone(),
    };
    let model = grpo_data_parallel_run(
        peers,
        resume.as_deref(),
        state.iterations,
        n,
        |it, mut m, model| {
            m.insert("iteration", it as f64);
            m.insert("global_step", m["completions_seen"]);
            m.insert("time", seconds(&state));
            if it % config.rl.eval_every == 0 || it == n {
                last = evaluate_accuracy(&model.valid(), &tokenizer, test_env, None)?;
                m.insert("test_accuracy", last.accuracy);
            }
            let mut folder = folder.lock().unwrap();
            folder.log(it, &m)?;
            bar.update(it, &m)?;
            history
                .lock()
                .unwrap()
                .push(m.iter().map(|(k, v)| (k.to_string(), *v)).collect());
            let stop = crate::run::interrupt::requested();
            if !(it % config.checkpoint_every == 0 || it == n || stop) {
                return Ok(AfterIteration::default());
            }
            if !crate::core::checkpoint::all_finite(model) {
                bail!(
                    "after update {it} the network's weights are not finite (the run \
                     diverged: try a smaller learning rate); nothing was saved. {}",
                    folder.newest_checkpoint()
                );
            }
            Ok(AfterIteration {
                checkpoint: true,
                stop,
            })
        },
        |_| folder.lock().unwrap().begin_checkpoint(),
        |it, model, stopping| {
            let mut folder = folder.lock().unwrap();
            let done = RunState {
                iterations: it,
                seconds: seconds(&state),
                rows: None,
            };
            folder.finish_checkpoint(done, config_toml)?;
            save_lm(&folder.dir().join("model"), model, &shape, &tokenizer)?;
            // Stopping: asked here (Ctrl-C) or on another node.
            if stopping {
                return Err(crate::run::Interrupted {
                    iteration: it,
                    resume: folder.resume_command().to_string(),
                }
                .into());
            }
            Ok(())
        },
    )?;
    bar.finish();
    let mut folder = folder.into_inner().unwrap();
    save_lm(&folder.dir().join("model"), &model, &shape, &tokenizer)?;
    let driven = crate::run::Driven {
        iterations: n,
        seconds: seconds(&state),
        history: history.into_inner().unwrap(),
    };
    finish(&mut folder, Some(start_accuracy), last, &driven)
}

/// `policy-lab lm ALGO --resume DIR`.
fn resume_command(algo: &str, out: &Path) -> String {
    format!("policy-lab lm {algo} --resume {}", out.display())
}

/// The settings `--resume` may change: the budget and the device.
pub const RESUMABLE: &[&str] = &["sft.steps", "rl.iterations", "device"];

/// Writes `summary.json` and returns the summary.
fn finish(
    folder: &mut RunFolder,
    start: Option<Accuracy>,
    end: Accuracy,
    driven: &crate::run::Driven,
) -> Result<LmSummary> {
    let summary = LmSummary {
        start,
        end,
        iterations: driven.iterations,
        seconds: driven.seconds,
        model: folder.dir().join("model"),
    };
    folder.write(
        "summary.json",
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(summary)
}

/// The held-out accuracy of the checkpoint in `model_dir` on `task`.
pub fn run_eval<B: burn::tensor::backend::Backend>(
    model_dir: &Path,
    task: &ArithmeticConfig,
    device: &B::Device,
) -> Result<Accuracy> {
    let loaded = load_policy::<B>(model_dir, Some(&task_tokenizer()), device)?;
    let env = Arithmetic::new(ArithmeticConfig {
        split: Split::Test,
        ..task.clone()
    })?;
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
