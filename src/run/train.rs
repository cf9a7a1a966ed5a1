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

use crate::algos::grpo::{Grpo, GrpoConfig};
use crate::algos::ppo::{Ppo, PpoConfig};
use crate::algos::reinforce::{Reinforce, ReinforceConfig};
use crate::algos::trpo::{Trpo, TrpoConfig};
use crate::backend::Device;
use crate::core::learner::Learner;
use crate::core::nn::Mlp;
use crate::core::rollout::make_vec_env;
use crate::run::evaluate::{evaluate, Evaluation};
use crate::run::folder::{read_text, write_atomic};
use crate::run::{drive, Drive, Progress, RunFolder, RunState, Start};
use crate::ConfigError;

pub use crate::run::MetricsRow;

/// The rungs of the ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    Reinforce,
    Trpo,
    Ppo,
    Grpo,
}

impl Algo {
    pub const ALL: [Algo; 4] = [Algo::Reinforce, Algo::Trpo, Algo::Ppo, Algo::Grpo];
    pub fn name(self) -> &'static str {
        match self {
            Algo::Reinforce => "reinforce",
            Algo::Trpo => "trpo",
            Algo::Ppo => "ppo",
            Algo::Grpo => "grpo",
        }
    }
}

/// Everything a run needs; read from TOML (unknown keys are refused) and completed by the
/// command line.
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
    pub reinforce: ReinforceConfig,
    pub trpo: TrpoConfig,
    pub ppo: PpoConfig,
    pub grpo: GrpoConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            algo: Algo::Ppo,
            env: "CartPole-v1".into(),
            seed: 1,
            total_timesteps: 200_000,
            device: Device::Cpu,
            eval_episodes: 20,
            checkpoint_every: 10,
            reinforce: ReinforceConfig::default(),
            trpo: TrpoConfig::default(),
            ppo: PpoConfig::default(),
            grpo: GrpoConfig::default(),
        }
    }
}

impl RunConfig {
    /// Reads a TOML file's text; unknown keys and invalid values are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: RunConfig = crate::core::config::parse_toml(text)?;
        config.validate()?;
        Ok(config)
    }
    /// Reads the TOML file at `path`; an error names the file, the line and the key.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        Self::from_toml(&text).with_context(|| format!("in {}", path.display()))
    }
    /// The settings as TOML, each value as the user would write it (`gamma = 0.99`).
    pub fn to_toml(&self) -> String {
        crate::core::config::to_toml(self)
    }
    /// The hidden layers of the algorithm's networks.
    pub fn hidden(&self) -> &[usize] {
        match self.algo {
            Algo::Reinforce => &self.reinforce.hidden,
            Algo::Trpo => &self.trpo.hidden,
            Algo::Ppo => &self.ppo.hidden,
            Algo::Grpo => &self.grpo.hidden,
        }
    }
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (env, _) = policy_lab_envs::make(&self.env).map_err(|e| ConfigError(e.to_string()))?;
        if self.total_timesteps == 0 || self.checkpoint_every == 0 || self.eval_episodes == 0 {
            return Err(ConfigError(
                "total_timesteps, checkpoint_every and eval_episodes must be at least 1".into(),
            ));
        }
        match self.algo {
            Algo::Reinforce => self.reinforce.validate(),
            Algo::Trpo => self.trpo.validate(),
            Algo::Ppo => self.ppo.validate(),
            Algo::Grpo => self.grpo.validate(),
        }?;
        // The actor and (but for GRPO) a critic of the same hidden layers.
        let layers: Vec<u128> = std::iter::once(env.obs_dim())
            .chain(self.hidden().iter().copied())
            .map(|n| n as u128)
            .collect();
        let body: u128 = layers.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        let last = *layers.last().unwrap_or(&0);
        let actor = body + last * env.num_actions() as u128 + env.num_actions() as u128;
        let critic = body + last + 1;
        let networks = if self.algo == Algo::Grpo {
            2 * actor
        } else {
            actor + critic
        };
        crate::core::config::check_network_fits(&format!("{}.hidden", self.algo.name()), networks)
    }
}

/// The learner `config` describes, on `device`: the one place where a toy algorithm is
/// chosen by name (adding an algorithm is its file and one line here).
pub fn make_learner<B: AutodiffBackend>(
    config: &RunConfig,
    device: B::Device,
) -> Result<Box<dyn Learner<Policy = Mlp<B>>>> {
    let (id, seed) = (&config.env, config.seed);
    Ok(match config.algo {
        Algo::Reinforce => {
            let c = config.reinforce.clone();
            let venv = make_vec_env(id, c.num_envs)?;
            Box::new(Reinforce::new(c, venv, seed, device)?)
        }
        Algo::Trpo => {
            let c = config.trpo.clone();
            let venv = make_vec_env(id, c.num_envs)?;
            Box::new(Trpo::new(c, venv, seed, device)?)
        }
        Algo::Ppo => {
            let c = config.ppo.clone();
            let venv = make_vec_env(id, c.num_envs)?;
            Box::new(Ppo::new(c, venv, seed, config.total_timesteps, device)?)
        }
        Algo::Grpo => {
            let (env, spec) = policy_lab_envs::make(id)?;
            let limit = spec.max_episode_steps;
            Box::new(Grpo::new(config.grpo.clone(), env, limit, seed, device)?)
        }
    })
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub evaluation: Evaluation,
    pub iterations: usize,
    pub global_step: usize,
    pub seconds: f64,
    /// Every iteration's metrics, the resumed ones included.
    pub history: Vec<MetricsRow>,
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
    progress: &mut dyn Write,
) -> Result<RunSummary> {
    config.validate()?;
    let config_toml = config.to_toml();
    let resume = format!("policy-lab train --resume {}", out.display());
    let mut learner = make_learner::<B>(config, device.clone())?;
    let mut folder = RunFolder::open(out, start, &config_toml, resume)?;
    let (mut state, mut history) = (RunState::default(), Vec::new());
    if start == Start::Resume {
        let (ckpt, s, rows) = folder.resume_at(&config_toml, RESUMABLE)?;
        learner.load(&ckpt)?;
        (state, history) = (s, rows);
    }
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
    let driven = drive(
        learner.as_mut(),
        &mut folder,
        state,
        history,
        Drive {
            config_toml: &config_toml,
            checkpoint_every: config.checkpoint_every,
            done: &|l, _| l.global_step() >= total,
            position: &|l, _| l.global_step(),
            after: &mut |_, _, _| Ok(()),
            save_policy: &|l, dir| save_policy(l.policy(), dir),
        },
        &mut bar,
    )?;
    bar.finish();
    write_csv(&driven.history, &out.join("metrics.csv"))?;
    let (mut env, _) = policy_lab_envs::make(&config.env)?;
    let evaluation = evaluate(
        &learner.policy().valid(),
        &mut env,
        config.eval_episodes,
        config.seed.wrapping_add(10_000),
        &device,
    )?;
    let mut eval_json = serde_json::json!({
        "episodes": config.eval_episodes,
        "mean_return": evaluation.mean_return(),
        "returns": evaluation.returns,
        "global_step": learner.global_step(),
        "seconds": driven.seconds,
    });
    if let Some(rate) = evaluation.success_rate() {
        eval_json["success_rate"] = rate.into();
    }
    folder.write(
        "eval.json",
        serde_json::to_string_pretty(&eval_json)?.as_bytes(),
    )?;
    Ok(RunSummary {
        evaluation,
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
    let per = match config.algo {
        Algo::Reinforce => config.reinforce.num_envs * config.reinforce.num_steps,
        Algo::Trpo => config.trpo.num_envs * config.trpo.num_steps,
        Algo::Ppo => config.ppo.num_envs * config.ppo.num_steps,
        // GRPO's episodes have no fixed length: a rough guess of 16 steps per episode.
        Algo::Grpo => config.grpo.num_groups * config.grpo.num_generations * 16,
    };
    config.total_timesteps.div_ceil(per.max(1))
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
        config.hidden(),
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
