//! `policy-lab train`: one run of one algorithm on one environment, with a progress line,
//! metrics per iteration (`metrics.jsonl` and `metrics.csv`), the resolved configuration
//! (`config.toml`), checkpoints written atomically, and a greedy evaluation at the end.
//!
//! A run's folder:
//!
//! ```text
//! runs/NAME/config.toml     everything the run used, defaults filled in
//! runs/NAME/metrics.jsonl   one JSON object per iteration
//! runs/NAME/metrics.csv     the same, as a table
//! runs/NAME/policy.mpk      the latest good policy, for `policy-lab eval`
//! runs/NAME/resume/         everything `--resume` needs to go on exactly (see `checkpoint`)
//! runs/NAME/eval.json       the final greedy evaluation
//! ```
//!
//! The folder is the run layer's ([`crate::run`]): locked while written, refused if it
//! already holds a run (unless `--resume` or `--overwrite`), written atomically, checkpointed
//! every `checkpoint_every` iterations and on Ctrl-C.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::record::{CompactRecorder, HalfPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use crate::algos::grpo::GrpoConfig;
use crate::algos::ppo::PpoConfig;
use crate::algos::reinforce::ReinforceConfig;
use crate::algos::trpo::TrpoConfig;
use crate::backend::Device;
use crate::core::learner::{Learner, Rung};
use crate::core::nn::Mlp;
use crate::run::evaluate::{evaluate, evaluate_sampled, Evaluation};
use crate::run::folder::{read_text, write_atomic};
use crate::run::{drive, resume_from, Budget, Drive, Progress, RunFolder, Start};
use crate::ConfigError;

pub use crate::run::MetricsRow;

// ANCHOR: ladder_registry
// The rungs the toy runner knows: a variant (`--algo ppo`), its table in the TOML settings
// (`[ppo]`) and its settings' type, which implements `Rung` in the rung's own file. Adding
// an algorithm is its file and one line here.
ladder! {
    Reinforce => reinforce: ReinforceConfig,
    Trpo => trpo: TrpoConfig,
    Ppo => ppo: PpoConfig,
    Grpo => grpo: GrpoConfig,
}
// ANCHOR_END: ladder_registry

// Not derived: the enum is written by `ladder!`, which knows no default.
#[allow(clippy::derivable_impls)]
impl Default for Algo {
    fn default() -> Self {
        Algo::Ppo
    }
}

/// Writes, from the list of rungs: the `Algo` enum, `RunConfig` (the shared settings and one
/// table per rung), and the one `match` that reaches the chosen rung's [`Rung`].
macro_rules! ladder {
    ($($variant:ident => $field:ident : $config:ty),* $(,)?) => {
        /// The rungs of the ladder.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
        #[serde(rename_all = "lowercase")]
        pub enum Algo {
            $($variant),*
        }

        impl Algo {
            /// Every rung, in the ladder's order.
            pub const ALL: &'static [Algo] = &[$(Algo::$variant),*];
            /// The name on the command line and of the settings' table.
            pub fn name(self) -> &'static str {
                match self {
                    $(Algo::$variant => stringify!($field)),*
                }
            }
        }

        /// Everything a run needs; read from TOML (unknown keys are refused) and completed
        /// by the command line.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct RunConfig {
            pub algo: Algo,
            /// An environment id, with options (`policy-lab envs`).
            pub env: String,
            pub seed: u64,
            /// Environment steps to train for.
            pub total_timesteps: usize,
            pub device: Device,
            /// Greedy evaluation episodes at the end.
            pub eval_episodes: usize,
            /// Write a checkpoint every this many iterations (and at the end).
            pub checkpoint_every: usize,
            $(pub $field: $config,)*
        }

        impl Default for RunConfig {
            fn default() -> Self {
                Self {
                    algo: Algo::default(),
                    env: "CartPole-v1".into(),
                    seed: 1,
                    total_timesteps: 200_000,
                    device: Device::Cpu,
                    eval_episodes: 20,
                    checkpoint_every: 10,
                    $($field: <$config>::default(),)*
                }
            }
        }

        impl RunConfig {
            /// The chosen rung's settings.
            pub fn rung(&self) -> &dyn Rung {
                match self.algo {
                    $(Algo::$variant => &self.$field),*
                }
            }
        }

        /// The learner `config` describes, on `device`.
        pub fn make_learner<B: AutodiffBackend>(
            config: &RunConfig,
            device: B::Device,
        ) -> Result<Box<dyn Learner<Policy = Mlp<B>>>> {
            let (env, seed, steps) = (&config.env, config.seed, config.total_timesteps);
            match config.algo {
                $(Algo::$variant => config.$field.learner::<B>(env, seed, steps, device)),*
            }
        }
    };
}
use ladder;

impl RunConfig {
    /// Reads a TOML file's text; unknown keys, invalid values and another rung's table are
    /// errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::from_toml_as(text, None)
    }
    /// [`RunConfig::from_toml`] for the rung `algo` when given (the command line's `--algo`,
    /// over the file's `algo`): the file may hold that rung's table and no other.
    pub fn from_toml_as(text: &str, algo: Option<Algo>) -> Result<Self> {
        let mut config: RunConfig = crate::core::config::parse_toml(text)?;
        if let Some(algo) = algo {
            config.algo = algo;
        }
        let chosen = config.algo.name();
        crate::core::config::refuse_unused(text, &config.unused_tables(), |name| {
            format!(
                "holds the settings of the rung `{name}`, but this run is `algo = \"{chosen}\"`: \
                 a run's file holds only its own rung's table (remove [{name}], or train \
                 `--algo {name}`)"
            )
        })?;
        config.validate()?;
        Ok(config)
    }
    /// Reads the TOML file at `path`; an error names the file, the line and the key.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_file_as(path, None)
    }
    /// [`RunConfig::from_toml_as`] on the file at `path`.
    pub fn from_file_as(path: &Path, algo: Option<Algo>) -> Result<Self> {
        let text = read_text(path)?;
        Self::from_toml_as(&text, algo).with_context(|| format!("in {}", path.display()))
    }
    /// The settings as TOML, each value as the user would write it (`gamma = 0.99`), with
    /// the chosen rung's table only.
    pub fn to_toml(&self) -> String {
        crate::core::config::to_toml_without(self, &self.unused_tables())
    }
    /// The tables of the rungs this run is not.
    fn unused_tables(&self) -> Vec<&'static str> {
        let others = Algo::ALL.iter().filter(|a| **a != self.algo);
        others.map(|a| a.name()).collect()
    }
    /// Checks every setting; a message names the key and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (env, _) = policy_lab_envs::make(&self.env).map_err(|e| ConfigError(e.to_string()))?;
        if self.total_timesteps == 0 || self.checkpoint_every == 0 || self.eval_episodes == 0 {
            return Err(ConfigError(
                "total_timesteps, checkpoint_every and eval_episodes must be at least 1".into(),
            ));
        }
        let rung = self.rung();
        rung.validate()?;
        // The actor and, for a rung with a critic, a critic of the same hidden layers.
        let layers: Vec<u128> = std::iter::once(env.obs_dim())
            .chain(rung.hidden().iter().copied())
            .map(|n| n as u128)
            .collect();
        let body: u128 = layers.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        let last = *layers.last().unwrap_or(&0);
        let actions = env.num_actions() as u128;
        let actor = body + last * actions + actions;
        let second = match rung.has_critic() {
            true => body + last + 1,
            false => actor,
        };
        let what = format!("{}.hidden", self.algo.name());
        crate::core::config::check_network_fits(&what, actor + second)
    }
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The greedy policy's evaluation (`eval_episodes` episodes).
    pub evaluation: Evaluation,
    /// The same number of episodes with each action sampled from the policy.
    pub sampled: Evaluation,
    pub iterations: usize,
    pub global_step: usize,
    pub seconds: f64,
    /// Every iteration's metrics, the resumed ones included.
    pub history: Vec<MetricsRow>,
}

impl RunSummary {
    /// The metric `key` against environment steps, `(global_step, value)`, over the
    /// iterations where it is defined (`episodic_return` is not where no episode ended).
    pub fn curve(&self, key: &str) -> Vec<(f64, f64)> {
        crate::run::folder::curve(&self.history, "global_step", key)
    }
}

/// Trains as `config` says on the backend it names (`device = "cpu"`, `"wgpu"`, `"cuda"`), on
/// that backend's default device: [`train`] without a type parameter, for the command line
/// and for notebook cells (a cell that calls this compiles in a moment; one that calls
/// `train::<Cpu>` compiles the whole training stack for itself).
pub fn train_on(
    config: &RunConfig,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<RunSummary> {
    crate::backend::on_backend!(config.device, B => {
        train::<B>(config, Default::default(), out, start, progress)
    })?
}

/// Trains as `config` says on backend `B`, in the run folder `out` (see the module docs and
/// [`crate::run::folder`]): a new run ([`Start::New`], refused if `out` holds a run), a
/// replacement ([`Start::Overwrite`]), or the run in `out` going on from its newest
/// checkpoint ([`Start::Resume`]; the rows logged after it are dropped and made again, and on
/// the CPU they come out the same as in an uninterrupted run). Progress goes to `progress`
/// (or a bar on a terminal, see [`crate::run::progress`]).
pub fn train<B: AutodiffBackend>(
    config: &RunConfig,
    device: B::Device,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<RunSummary> {
    config.validate()?;
    let config_toml = config.to_toml();
    let resume = format!("policy-lab train --resume {}", out.display());
    let mut learner = make_learner::<B>(config, device.clone())?;
    let mut folder = RunFolder::open(out, start, &config_toml, resume)?;
    let (state, history) = resume_from(
        &mut folder,
        learner.as_mut(),
        &config_toml,
        RESUMABLE,
        start,
    )?;
    let total = config.total_timesteps;
    let title = format!("{} {}", config.algo.name(), config.env);
    let mut bar = Progress::new(
        &title,
        total,
        "steps",
        20,
        expected_iterations(config),
        progress,
    );
    let every = config.checkpoint_every;
    let driven = drive(
        learner.as_mut(),
        &mut folder,
        (state, history),
        Drive::<dyn Learner<Policy = Mlp<B>>>::new(&config_toml, every, Budget::Steps(total))
            .save_policy(|l, dir| save_policy(l.policy(), dir)),
        &mut bar,
    )?;
    bar.finish();
    write_csv(&driven.history, &out.join("metrics.csv"))?;
    let (mut env, _) = policy_lab_envs::make(&config.env)?;
    let policy = learner.policy().valid();
    let eval_seed = config.seed.wrapping_add(10_000);
    let evaluation = evaluate(&policy, &mut env, config.eval_episodes, eval_seed)?;
    let sampled = evaluate_sampled(&policy, &mut env, config.eval_episodes, eval_seed)?;
    let mut eval_json = serde_json::json!({
        "episodes": config.eval_episodes,
        "mean_return": evaluation.mean_return(),
        "returns": evaluation.returns,
        "entropy": evaluation.entropy,
        "sampled": {
            "mean_return": sampled.mean_return(),
            "returns": sampled.returns,
            "entropy": sampled.entropy,
        },
        "global_step": learner.global_step(),
        "seconds": driven.seconds,
    });
    if let Some(rate) = evaluation.success_rate() {
        eval_json["success_rate"] = rate.into();
    }
    if let Some(rate) = sampled.success_rate() {
        eval_json["sampled"]["success_rate"] = rate.into();
    }
    folder.write(
        "eval.json",
        serde_json::to_string_pretty(&eval_json)?.as_bytes(),
    )?;
    Ok(RunSummary {
        evaluation,
        sampled,
        iterations: driven.iterations,
        global_step: learner.global_step(),
        seconds: driven.seconds,
        history: driven.history,
    })
}

/// The settings `--resume` may change: the budget and the device.
pub const RESUMABLE: &[&str] = &["total_timesteps", "device"];

/// About how many iterations `config` runs (for spacing progress lines).
fn expected_iterations(config: &RunConfig) -> usize {
    let per = config.rung().steps_per_iteration().max(1);
    config.total_timesteps.div_ceil(per)
}

/// Saves the policy as `policy.mpk` in `dir` (half precision, as burn's `CompactRecorder`
/// writes it), atomically.
pub fn save_policy<B: Backend>(actor: &Mlp<B>, dir: &Path) -> Result<()> {
    let bytes = NamedMpkBytesRecorder::<HalfPrecisionSettings>::new()
        .record(actor.clone().into_record(), ())
        .context("encoding the policy")?;
    write_atomic(&dir.join("policy.mpk"), &bytes)
}

/// Loads `policy.mpk` from a run folder into a policy shaped as that run's config says;
/// a checkpoint of another shape, or a damaged one, is an error that says so. Load it on a
/// backend without autodiff (`backend::Inference`) to evaluate or play: no graph is built.
pub fn load_policy<B: Backend>(run: &Path, device: &B::Device) -> Result<(RunConfig, Mlp<B>)> {
    let path = run.join("config.toml");
    if !path.exists() {
        bail!("{} is not a run folder (no config.toml)", run.display());
    }
    let config = RunConfig::from_file(&path)?;
    let (env, _) = policy_lab_envs::make(&config.env)?;
    let fresh = Mlp::<B>::new(
        env.obs_dim(),
        config.rung().hidden(),
        env.num_actions(),
        0.01,
        device,
    );
    let path = run.join("policy.mpk");
    let record = CompactRecorder::new()
        .load(path.clone(), device)
        .map_err(|e| crate::core::checkpoint::damaged(&path.with_extension(""), e))?;
    if let Err(why) = fresh.check_record(&record) {
        bail!("the checkpoint {} was saved by another architecture than its config.toml describes: {why}", path.display());
    }
    Ok((config, fresh.load_record(record)))
}

/// Writes the metrics as a CSV table, one column per metric name.
fn write_csv(history: &[MetricsRow], path: &Path) -> Result<()> {
    let mut columns: Vec<&str> = history
        .iter()
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    columns.sort_unstable();
    columns.dedup();
    let mut text = columns.join(",") + "\n";
    for m in history {
        let row: Vec<String> = columns
            .iter()
            .map(|c| m.get(*c).map(|v| v.to_string()).unwrap_or_default())
            .collect();
        text += &(row.join(",") + "\n");
    }
    write_atomic(path, text.as_bytes())
}
