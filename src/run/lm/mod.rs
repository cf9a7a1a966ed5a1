//! Language-model runs, as `policy-lab lm ...` starts them: the stages of the registry below
//! (an SFT warm start and a reward model, each a fresh model; GRPO and PPO from a checkpoint),
//! and the accuracy evaluation.
//!
//! Each run is a folder, as for the toy environments:
//!
//! ```text
//! config.toml     the resolved settings (LmRunConfig), with only the tables its stage reads
//! metrics.jsonl   one line per step (fresh stages) or iteration (RL, after a line for the
//!                 start); the held-out measure at evaluations (`test_accuracy`),
//!                 `global_step` = demonstrations or pairs (fresh stages) or completions (RL)
//! model/          the model (weights, shape, tokenizer; see `lm::checkpoint`), written at
//!                 every checkpoint and at the end
//! resume/         everything `--resume` needs to go on exactly (see `run::folder`)
//! summary.json    the held-out measure at the start and the end, and the wall time
//! ```
//!
//! The folder is the run layer's ([`crate::run`]), as for the toy runs: locked while
//! written, refused if it already holds a run (unless `--resume` or `--overwrite`),
//! checkpointed every `checkpoint_every` iterations and on Ctrl-C, and resumed exactly.
//!
//! * [`fresh`]: the runner of every stage that trains a fresh model (`FreshStage`);
//! * [`rl`]: the runner of every RL stage from a checkpoint (`RlStage`), data-parallel GRPO
//!   included;
//! * [`eval`]: `policy-lab lm eval`.

pub mod eval;
pub mod fresh;
pub mod rl;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use policy_lab_envs::{Arithmetic, ArithmeticConfig, Split};
use serde::{Deserialize, Serialize};

use crate::algos::grpo_lm::GrpoLmConfig;
use crate::algos::ppo_lm::PpoLmConfig;
use crate::algos::RlStage;
use crate::backend::Device;
use crate::lm::model::{Precision, TransformerConfig};
use crate::lm::reward::RewardConfig;
use crate::lm::sft::SftConfig;
use crate::lm::stage::{FreshStage, Stage};
use crate::lm::task::Accuracy;
use crate::run::{Driven, RunFolder, Start};
use crate::ConfigError;

pub use eval::{run_eval, run_eval_dataset, Sampling};
pub use fresh::{run_fresh, run_sft};

// ANCHOR: lm_stage_registry
// The stages `policy-lab lm` knows: a variant (`lm sft`), its table in the TOML settings
// (`[sft]`), its settings' type, and its kind. A `Fresh` stage trains a new model of
// `[model]`'s shape (its settings implement `lm::stage::FreshStage` in the stage's own file);
// an `Rl` stage starts from `--init` and reads `[rl]` (`algos::RlStage`). Adding a stage is its
// file and one line here.
lm_stages! {
    Sft => sft: SftConfig, Fresh,
    Reward => reward: RewardConfig, Fresh,
    Grpo => grpo: GrpoLmConfig, Rl,
    Ppo => ppo: PpoLmConfig, Rl,
}
// ANCHOR_END: lm_stage_registry

/// The kind of stage that trains a fresh model of `[model]`'s shape: it reads `[model]`,
/// never `init` or `[rl]`.
pub struct Fresh;

impl Fresh {
    const FRESH: bool = true;
    const READS: &'static [&'static str] = &["model"];
    const WHY: &'static str = "it trains a fresh model";
    fn set_steps<S: FreshStage>(stage: &mut S, _: &mut RlConfig, steps: usize) {
        stage.set_steps(steps);
    }
    fn resumable(table: &str) -> String {
        format!("{table}.steps")
    }
    fn run<B: AutodiffBackend, S: FreshStage>(
        c: &LmRunConfig,
        s: &S,
        out: Out,
    ) -> Result<LmSummary> {
        run_fresh::<B, S>(c, s, &Default::default(), out)
    }
}

/// The kind of stage that starts from a checkpoint (`init`, `--init`): it reads `init` and
/// `[rl]`, never `[model]` (the model and its shape come from the checkpoint).
pub struct Rl;

impl Rl {
    const FRESH: bool = false;
    const READS: &'static [&'static str] = &["init", "rl"];
    const WHY: &'static str = "the model and its shape come from `--init`";
    fn set_steps<S: RlStage>(_: &mut S, rl: &mut RlConfig, iterations: usize) {
        rl.iterations = iterations;
    }
    fn resumable(_: &str) -> String {
        "rl.iterations".into()
    }
    fn run<B: AutodiffBackend, S: RlStage>(c: &LmRunConfig, s: &S, out: Out) -> Result<LmSummary> {
        let init = c.init.as_ref().context("RL starts from a model (init)")?;
        let devices = crate::backend::devices::<B>(c.rl.devices);
        rl::run_stage::<B, S>(c, s, (init, &devices), out)
    }
}

/// RL (`config.algo`) from the checkpoint in `init`, with the held-out accuracy measured along
/// the way, in the run folder `out` (`start`: a new run, a replacement, or going on from the
/// newest checkpoint), on `config.rl.devices` devices of `B` (more than one: data-parallel
/// GRPO, one peer per device).
pub fn run_rl<B: AutodiffBackend>(
    config: &LmRunConfig,
    init: &Path,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    if config.algo.fresh() {
        bail!(
            "run_rl needs an RL stage (grpo, ppo); `{}` trains a fresh model (run_fresh)",
            config.algo.name()
        );
    }
    let config = LmRunConfig {
        init: Some(init.to_path_buf()),
        ..config.clone()
    };
    let out = Out {
        dir: out,
        start,
        progress,
    };
    run_lm_on::<B>(&config, out)
}

/// Where a run goes: its folder, how it starts there (a new run, a replacement, or going on
/// from the newest checkpoint), and where its progress goes.
pub struct Out<'a> {
    pub dir: &'a Path,
    pub start: Start,
    pub progress: &'a mut (dyn Write + Send),
}

/// Writes, from the list of stages: the `LmAlgo` enum, `LmRunConfig` (the shared settings and
/// one table per stage), which tables each stage reads, and the `match`es that reach the
/// chosen stage's settings and runner.
macro_rules! lm_stages {
    ($($variant:ident => $field:ident : $config:ty, $kind:ident),* $(,)?) => {
        /// What an `lm` run does: one of the registry's stages.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum LmAlgo {
            $($variant),*
        }

        impl LmAlgo {
            /// Every stage, in the registry's order.
            pub const ALL: &'static [LmAlgo] = &[$(LmAlgo::$variant),*];
            /// The name on the command line and of the settings' table.
            pub fn name(self) -> &'static str {
                match self {
                    $(LmAlgo::$variant => stringify!($field)),*
                }
            }
            /// What the stage does, in a sentence (`policy-lab lm --help`).
            pub fn about(self) -> &'static str {
                match self {
                    $(LmAlgo::$variant => <$config as Stage>::ABOUT),*
                }
            }
            /// The held-out metric the run's summary reports (`test_accuracy`).
            pub fn measure(self) -> &'static str {
                match self {
                    $(LmAlgo::$variant => <$config as Stage>::MEASURE),*
                }
            }
            /// Whether the stage trains a fresh model (else it starts from `--init`).
            pub fn fresh(self) -> bool {
                match self {
                    $(LmAlgo::$variant => $kind::FRESH),*
                }
            }
            /// The optional tables and keys the stage reads besides the shared settings: its
            /// kind's and its own table.
            pub fn reads(self) -> Vec<&'static str> {
                let kind = match self {
                    $(LmAlgo::$variant => $kind::READS),*
                };
                kind.iter().copied().chain([self.name()]).collect()
            }
            /// Why a table the stage does not read does nothing in its run.
            fn why_unread(self, table: &str) -> &'static str {
                let kind_reads = match self {
                    $(LmAlgo::$variant => $kind::READS),*
                };
                if TABLES_OF_KINDS.contains(&table) && !kind_reads.contains(&table) {
                    match self {
                        $(LmAlgo::$variant => $kind::WHY),*
                    }
                } else {
                    "its settings are another stage's"
                }
            }
            /// The settings `--resume` may change: the budget and the device.
            pub fn resumable(self) -> Vec<String> {
                let budget = match self {
                    $(LmAlgo::$variant => $kind::resumable(stringify!($field))),*
                };
                vec![budget, "device".into()]
            }
        }

        /// Every table or key that some stage reads and another does not.
        const OPTIONAL: &[&str] = &["init", "model", "rl", $(stringify!($field)),*];

        /// Everything an `lm` run needs; read from TOML (unknown keys are refused).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct LmRunConfig {
            /// The stage (the command sets it).
            pub algo: LmAlgo,
            pub seed: u64,
            pub device: Device,
            /// The forward passes' number type: `f32`, or `bf16` / `f16` with the weights,
            /// gradients and optimizer state kept in f32 (mixed precision, [`Precision`]).
            /// bf16 and f16 need a backend that stores them (`cuda`; burn's NdArray, `cpu`,
            /// stores only f32 and f64).
            pub precision: Precision,
            /// Write a checkpoint (`resume/` and `model/`) every this many steps or
            /// iterations, and at the end.
            pub checkpoint_every: usize,
            /// The model an RL stage starts from (`--init`, recorded so that `--resume`
            /// starts from the same one); none for a fresh stage.
            pub init: Option<PathBuf>,
            pub task: ArithmeticConfig,
            /// The shape of a fresh stage's model.
            pub model: ModelShape,
            /// What RL stages share.
            pub rl: RlConfig,
            $(pub $field: $config,)*
        }

        impl Default for LmRunConfig {
            fn default() -> Self {
                Self {
                    algo: LmAlgo::ALL[0],
                    seed: 1,
                    device: Device::Cpu,
                    precision: Precision::F32,
                    checkpoint_every: 50,
                    init: None,
                    task: ArithmeticConfig::default(),
                    model: ModelShape::default(),
                    rl: RlConfig::default(),
                    $($field: <$config>::default(),)*
                }
            }
        }

        impl LmRunConfig {
            /// The chosen stage's own checks.
            fn validate_stage(&self) -> Result<(), ConfigError> {
                match self.algo {
                    $(LmAlgo::$variant => self.$field.validate()),*
                }
            }
            /// Sets the stage's budget: a fresh stage's most steps, or RL's iterations.
            pub fn set_budget(&mut self, n: usize) {
                match self.algo {
                    $(LmAlgo::$variant => $kind::set_steps(&mut self.$field, &mut self.rl, n)),*
                }
            }
        }

        /// [`run_lm`] on backend `B`: the chosen stage's runner.
        fn run_lm_on<B: AutodiffBackend>(config: &LmRunConfig, out: Out) -> Result<LmSummary> {
            match config.algo {
                $(LmAlgo::$variant => $kind::run::<B, $config>(config, &config.$field, out)),*
            }
        }
    };
}
use lm_stages;

impl Default for LmAlgo {
    fn default() -> Self {
        LmAlgo::ALL[0]
    }
}

/// The tables that a kind of stage reads (`[model]`, `init`, `[rl]`).
const TABLES_OF_KINDS: &[&str] = &["init", "model", "rl"];

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

/// What RL runs share, whichever the algorithm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlConfig {
    pub iterations: usize,
    /// Measure the held-out accuracy every this many iterations (and at the start and end).
    pub eval_every: usize,
    /// Data-parallel GRPO over this many devices (`algos::grpo_parallel`): `cuda` devices 0, 1, ...;
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
    /// folders of reward models (`lm reward`'s `model/`); with `dataset`, the functions of
    /// the text: `accuracy`, `format`, `length`, `equation` (`[rl.rewards]` sets them up) and
    /// `command:PROGRAM [ARGS]`.
    pub reward_funcs: Vec<String>,
    /// TRL's `reward_weights`, one per entry of `reward_funcs`; unset: 1 each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_weights: Option<Vec<f32>>,
    /// Prompts from a dataset instead of the task's problems (`--dataset`): a JSON Lines file
    /// in TRL's formats (`lm dataset` writes one), whose rows' other columns the reward
    /// functions read. Its conversational prompts go through the checkpoint's chat template;
    /// its standard ones too with `chat_template`, raw otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<PathBuf>,
    /// With `dataset`: the held-out prompts (`--eval-dataset`) on which the accuracy is
    /// measured greedily every `eval_every` iterations; unset, none is measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_dataset: Option<PathBuf>,
    /// With `dataset`: the most tokens of a completion (TRL's `max_completion_length`; 64
    /// when unset). The arithmetic task has its own, `task.max_completion_length`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_length: Option<usize>,
    /// How the built-in reward functions (`accuracy`, `format`, `length`, `equation`,
    /// `command:...`) read a completion (`[rl.rewards]`).
    #[serde(skip_serializing_if = "is_default_rewards")]
    pub rewards: crate::lm::rewards::RewardSettings,
    /// Data-parallel GRPO over several machines: this process's place among them
    /// (`[rl.nodes]`, [`crate::algos::grpo_parallel::Nodes`]); each node uses its `devices`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<crate::algos::grpo_parallel::Nodes>,
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
            dataset: None,
            eval_dataset: None,
            max_completion_length: None,
            rewards: Default::default(),
            nodes: None,
        }
    }
}

fn is_default_rewards(r: &crate::lm::rewards::RewardSettings) -> bool {
    *r == Default::default()
}

impl RlConfig {
    fn validate(&self, algo: LmAlgo, num_groups: usize) -> Result<(), ConfigError> {
        let check = |ok, m: &str| ConfigError::unless(ok, "rl", m);
        check(self.eval_every > 0, "eval_every must be at least 1")?;
        check(self.devices > 0, "devices must be at least 1")?;
        let funcs = &self.reward_funcs;
        check(
            !funcs.is_empty(),
            "reward_funcs must name at least one (\"task\" or a reward model's folder)",
        )?;
        let text_funcs = funcs
            .iter()
            .filter(|f| crate::lm::rewards::is_text_function(f))
            .count();
        match &self.dataset {
            Some(_) => check(
                !funcs.iter().any(|f| f == "task"),
                "with a dataset, the reward functions score the completions: \"task\" (the \
                 arithmetic task's reward) is not one of them; use accuracy, format, length, \
                 equation or command:PROGRAM",
            )?,
            None => check(
                text_funcs == 0,
                "accuracy, format, length, equation and command: read a dataset's rows: set \
                 rl.dataset (--dataset)",
            )?,
        }
        check(
            self.eval_dataset.is_none() || self.dataset.is_some(),
            "eval_dataset needs dataset",
        )?;
        check(
            self.max_completion_length != Some(0),
            "max_completion_length must be at least 1",
        )?;
        // One completion length per run: the task's own, or this one with a dataset.
        check(
            self.max_completion_length.is_none() || self.dataset.is_some(),
            "max_completion_length is the limit of a dataset's completions; the arithmetic \
             task's is task.max_completion_length (in characters)",
        )?;
        if let Some(w) = &self.reward_weights {
            check(
                w.len() == funcs.len() && w.iter().all(|w| w.is_finite()),
                &format!(
                    "reward_weights has {} finite weights; reward_funcs has {} functions",
                    w.len(),
                    funcs.len()
                ),
            )?;
        }
        if let Some(nodes) = &self.nodes {
            nodes.validate()?;
        }
        let parallel = self.devices > 1 || self.nodes.is_some();
        let task_only = funcs.iter().all(|f| f == "task");
        check(
            task_only || !parallel,
            "reward models score runs on one device (devices = 1)",
        )?;
        check(
            !parallel || algo == LmAlgo::Grpo,
            "data parallelism (devices > 1 or nodes) is implemented for GRPO only",
        )?;
        let peers = crate::algos::grpo_parallel::Nodes::world(self.devices, self.nodes.as_ref());
        check(
            num_groups.is_multiple_of(peers),
            &format!(
                "grpo.num_groups ({num_groups}) must be a multiple of the devices of every \
                 node ({peers})"
            ),
        )
    }
}

impl LmRunConfig {
    /// Reads a TOML file's text; unknown keys, invalid values and settings the run's stage
    /// does not read are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::from_toml_as(text, None)
    }
    /// [`LmRunConfig::from_toml`] for the stage `algo` when given (the command's, over the
    /// file's `algo`): a file holds `[task]`, the shared keys and the tables its stage reads
    /// ([`LmAlgo::reads`]: an `lm sft` file `[model]` and `[sft]`, an `lm grpo` one `init`,
    /// `[rl]` and `[grpo]`).
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
        crate::core::config::refuse_unused(text, &config.unused(), |name| {
            format!(
                "does nothing in an `lm {}` run: {}; a run's file holds only the settings \
                 its stage reads",
                stage.name(),
                stage.why_unread(name)
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
        crate::core::config::to_toml_without(self, &self.unused())
    }
    /// The optional tables and keys the run's stage does not read.
    fn unused(&self) -> Vec<&'static str> {
        let reads = self.algo.reads();
        OPTIONAL
            .iter()
            .copied()
            .filter(|t| !reads.contains(t))
            .collect()
    }
    pub fn validate(&self) -> Result<(), ConfigError> {
        Arithmetic::new(self.task.clone()).map_err(|e| ConfigError(format!("task: {e}")))?;
        let m = &self.model;
        ConfigError::unless(
            m.d_model > 0 && m.n_heads > 0 && m.d_model.is_multiple_of(m.n_heads),
            "model",
            &format!(
                "d_model ({}) must be a positive multiple of n_heads ({})",
                m.d_model, m.n_heads
            ),
        )?;
        ConfigError::unless(
            m.n_layers > 0 && m.d_ff > 0 && m.max_seq_len > 0,
            "model",
            "n_layers, d_ff and max_seq_len must be at least 1",
        )?;
        if self.checkpoint_every == 0 {
            return Err(ConfigError("checkpoint_every must be at least 1".into()));
        }
        self.rl.validate(self.algo, self.grpo.update.num_groups)?;
        self.validate_stage()
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
    /// (`task.max_completion_length`, in characters, one token each) plus one for EOS, or
    /// with a dataset `rl.max_completion_length` (64 unset).
    pub fn max_completion_length(&self) -> usize {
        match (self.rl.max_completion_length, &self.rl.dataset) {
            (Some(n), _) => n,
            (None, Some(_)) => 64,
            (None, None) => self.task.completion_limit() + 1,
        }
    }
    /// The task's environment on one split of its problems (`Split::Train` for RL and SFT,
    /// `Split::Test` for the held-out accuracy).
    pub fn env(&self, split: Split) -> Result<Arithmetic> {
        Ok(crate::lm::task::task_env(&self.task, split)?)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmSummary {
    /// Held-out accuracy of the starting model (none for a fresh model).
    pub start: Option<Accuracy>,
    /// The held-out measure at the end: the accuracy, or a reward model's pair accuracy.
    pub end: Accuracy,
    /// Steps or RL iterations done.
    pub iterations: usize,
    pub seconds: f64,
    /// Where the model went.
    pub model: PathBuf,
}

/// Runs the stage `config.algo` names on the backend `config.device` names, without a type
/// parameter, for the command line and for notebook cells (a cell that calls this compiles in
/// a moment; one that calls `run_rl::<Cpu>` compiles the whole LM stack for itself). RL runs
/// on `rl.devices` devices of that backend.
pub fn run_lm(
    config: &LmRunConfig,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    crate::backend::on_backend!(config.device, B => {
        run_lm_on::<B>(config, Out { dir: out, start, progress })
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

/// Opens the run folder of an `lm` run for `config` (see [`RunFolder::open`]).
fn open_folder(config: &LmRunConfig, out: &Out) -> Result<(RunFolder, String)> {
    let config_toml = config.to_toml();
    let name = config.algo.name();
    let resume = format!("policy-lab lm {name} --resume {}", out.dir.display());
    let folder = RunFolder::open(out.dir, out.start, &config_toml, resume)?;
    Ok((folder, config_toml))
}

/// Writes `summary.json` and returns the summary.
fn finish(
    folder: &mut RunFolder,
    start: Option<Accuracy>,
    end: Accuracy,
    driven: &Driven,
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
