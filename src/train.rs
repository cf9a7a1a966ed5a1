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

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::record::{CompactRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::algos::grpo::{Grpo, GrpoConfig};
use crate::algos::ppo::{Ppo, PpoConfig};
use crate::algos::reinforce::{Reinforce, ReinforceConfig};
use crate::algos::trpo::{Trpo, TrpoConfig};
use crate::backend::Device;
use crate::checkpoint::{self, RunState};
use crate::evaluate::{evaluate, Evaluation};
use crate::nn::Mlp;
use crate::rollout::{make_vec_env, Collector};
use crate::{ConfigError, Metrics};

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
    /// Reads a TOML file; unknown keys and invalid values are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: RunConfig =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("invalid config: {}", e.message()))?;
        config.validate()?;
        Ok(config)
    }
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a run config always serializes")
    }
    pub fn validate(&self) -> Result<(), ConfigError> {
        policy_lab_envs::make(&self.env).map_err(|e| ConfigError(e.to_string()))?;
        if self.total_timesteps == 0 || self.checkpoint_every == 0 {
            return Err(ConfigError(
                "total_timesteps and checkpoint_every must be at least 1".into(),
            ));
        }
        match self.algo {
            Algo::Reinforce => self.reinforce.validate(),
            Algo::Trpo => self.trpo.validate(),
            Algo::Ppo => self.ppo.validate(),
            Algo::Grpo => self.grpo.validate(),
        }
    }
}

/// A learner of any rung.
pub enum Learner<B: AutodiffBackend> {
    Reinforce(Reinforce<B>),
    Trpo(Trpo<B>),
    Ppo(Ppo<B>),
    Grpo(Grpo<B>),
}

impl<B: AutodiffBackend> Learner<B> {
    /// The learner `config` describes, on `device`.
    pub fn new(config: &RunConfig, device: B::Device) -> Result<Self> {
        let id = &config.env;
        let seed = config.seed;
        Ok(match config.algo {
            Algo::Reinforce => {
                let c = config.reinforce.clone();
                let venv = make_vec_env(id, c.num_envs)?;
                Learner::Reinforce(Reinforce::new(c, venv, seed, device)?)
            }
            Algo::Trpo => {
                let c = config.trpo.clone();
                let venv = make_vec_env(id, c.num_envs)?;
                Learner::Trpo(Trpo::new(c, venv, seed, device)?)
            }
            Algo::Ppo => {
                let c = config.ppo.clone();
                let venv = make_vec_env(id, c.num_envs)?;
                Learner::Ppo(Ppo::new(c, venv, seed, config.total_timesteps, device)?)
            }
            Algo::Grpo => {
                let (env, spec) = policy_lab_envs::make(id)?;
                Learner::Grpo(Grpo::new(
                    config.grpo.clone(),
                    env,
                    spec.max_episode_steps,
                    seed,
                    device,
                )?)
            }
        })
    }
    pub fn iterate(&mut self) -> policy_lab_envs::Result<Metrics> {
        match self {
            Learner::Reinforce(l) => l.iterate(),
            Learner::Trpo(l) => l.iterate(),
            Learner::Ppo(l) => l.iterate(),
            Learner::Grpo(l) => l.iterate(),
        }
    }
    pub fn global_step(&self) -> usize {
        match self {
            Learner::Reinforce(l) => l.global_step(),
            Learner::Trpo(l) => l.global_step(),
            Learner::Ppo(l) => l.global_step(),
            Learner::Grpo(l) => l.global_step(),
        }
    }
    /// The environments and episode statistics of REINFORCE, TRPO and PPO (GRPO plays its
    /// groups without one).
    pub fn collector(&self) -> Option<&Collector> {
        match self {
            Learner::Reinforce(l) => Some(&l.collector),
            Learner::Trpo(l) => Some(&l.collector),
            Learner::Ppo(l) => Some(&l.collector),
            Learner::Grpo(_) => None,
        }
    }
    /// The policy network.
    pub fn actor(&self) -> &Mlp<B> {
        match self {
            Learner::Reinforce(l) => &l.model.actor,
            Learner::Trpo(l) => &l.model.actor,
            Learner::Ppo(l) => &l.model.actor,
            Learner::Grpo(l) => &l.actor,
        }
    }
}

/// One iteration's metrics as read back from `metrics.jsonl`.
pub type MetricsRow = BTreeMap<String, f64>;

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

/// Trains as `config` says on backend `B`, writing into `out` (see the module docs);
/// `progress` gets one line per iteration. With `resume`, the run in `out` goes on from its
/// latest checkpoint (`resume/`): the metrics logged after it are dropped and made again,
/// and on the CPU they come out the same as in an uninterrupted run.
pub fn train<B: AutodiffBackend>(
    config: &RunConfig,
    device: B::Device,
    out: &Path,
    resume: bool,
    progress: &mut dyn Write,
) -> Result<RunSummary> {
    config.validate()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut learner = Learner::<B>::new(config, device.clone())?;
    let metrics_path = out.join("metrics.jsonl");
    let mut lines: Vec<String> = Vec::new();
    let mut run = RunState::default();
    if resume {
        run = checkpoint::load(&mut learner, out, &device)?;
        let text = std::fs::read_to_string(&metrics_path)
            .with_context(|| format!("reading {}", metrics_path.display()))?;
        lines = text
            .lines()
            .take(run.iterations)
            .map(String::from)
            .collect();
        if lines.len() < run.iterations {
            bail!(
                "{} has {} lines but the checkpoint is at iteration {}",
                metrics_path.display(),
                lines.len(),
                run.iterations
            );
        }
    }
    write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
    write_atomic(
        &metrics_path,
        lines
            .iter()
            .map(|l| l.clone() + "\n")
            .collect::<String>()
            .as_bytes(),
    )?;
    let mut history: Vec<MetricsRow> = lines
        .iter()
        .map(|l| serde_json::from_str(l))
        .collect::<Result<_, _>>()
        .with_context(|| format!("a bad line in {}", metrics_path.display()))?;
    let mut jsonl = std::fs::OpenOptions::new()
        .append(true)
        .open(&metrics_path)?;
    let started = std::time::Instant::now();
    let seconds = || run.seconds + started.elapsed().as_secs_f64();
    let mut iterations = run.iterations;
    while learner.global_step() < config.total_timesteps {
        let mut m = learner.iterate()?;
        iterations += 1;
        m.insert("iteration", iterations as f64);
        m.insert("time", seconds());
        m.insert("SPS", learner.global_step() as f64 / seconds());
        // A non-finite loss or reward stops the run; the last checkpoint stays as it was.
        if let Some((k, v)) = m
            .iter()
            .find(|(k, v)| !v.is_finite() && !NAN_ALLOWED.contains(k))
        {
            bail!(
                "update {iterations} produced {k} = {v}; stopping. The last good checkpoint is in {}",
                out.display()
            );
        }
        writeln!(jsonl, "{}", serde_json::to_string(&m)?)?;
        let frac = (learner.global_step() as f64 / config.total_timesteps as f64).min(1.0);
        let bar: String = (0..30)
            .map(|i| if (i as f64) < frac * 30.0 { '#' } else { '.' })
            .collect();
        let score = m
            .get("episodic_return")
            .or(m.get("reward"))
            .map(|r| format!("{r:.3}"))
            .unwrap_or("-".into());
        writeln!(
            progress,
            "[{bar}] {:>3.0}% step {:>8}  return {score:>9}  {:.1}s",
            frac * 100.0,
            learner.global_step(),
            seconds()
        )?;
        history.push(m.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        if iterations % config.checkpoint_every == 0 {
            jsonl.flush()?;
            save_checkpoint(&learner, iterations, seconds(), out)?;
        }
    }
    save_checkpoint(&learner, iterations, seconds(), out)?;
    write_csv(&history, &out.join("metrics.csv"))?;
    let (mut env, _) = policy_lab_envs::make(&config.env)?;
    let evaluation = evaluate(
        &learner.actor().valid(),
        &mut env,
        config.eval_episodes,
        config.seed.wrapping_add(10_000),
        &device,
    )?;
    let eval_json = serde_json::json!({
        "episodes": config.eval_episodes,
        "mean_return": evaluation.mean_return(),
        "success_rate": evaluation.success_rate(),
        "returns": evaluation.returns,
        "global_step": learner.global_step(),
        "seconds": seconds(),
    });
    write_atomic(
        &out.join("eval.json"),
        serde_json::to_string_pretty(&eval_json)?.as_bytes(),
    )?;
    Ok(RunSummary {
        evaluation,
        iterations,
        global_step: learner.global_step(),
        seconds: seconds(),
        history,
    })
}

/// Writes the policy for `eval` (`policy.mpk`) and the full state for `--resume`.
fn save_checkpoint<B: AutodiffBackend>(
    learner: &Learner<B>,
    iterations: usize,
    seconds: f64,
    out: &Path,
) -> Result<()> {
    save_policy(learner.actor(), out)?;
    checkpoint::save(
        learner,
        RunState {
            iterations,
            seconds,
        },
        out,
    )
}

/// Metrics that are NaN by definition in some iterations (no variance to explain).
const NAN_ALLOWED: [&str; 2] = ["explained_variance", "grad_norm"];

/// Writes `bytes` to `path` through a temporary file and a rename, so that a crash never
/// leaves a half-written file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Saves the policy as `policy.mpk` in `dir`, atomically.
pub fn save_policy<B: AutodiffBackend>(actor: &Mlp<B>, dir: &Path) -> Result<()> {
    let tmp = dir.join("policy.tmp");
    actor
        .clone()
        .save_file(&tmp, &CompactRecorder::new())
        .context("saving the policy")?;
    std::fs::rename(tmp.with_extension("mpk"), dir.join("policy.mpk"))
        .context("moving the checkpoint into place")?;
    Ok(())
}

/// Loads `policy.mpk` from a run folder into a policy shaped as that run's config says;
/// a checkpoint of another shape is an error that says so.
pub fn load_policy<B: burn::tensor::backend::Backend>(
    run: &Path,
    device: &B::Device,
) -> Result<(RunConfig, Mlp<B>)> {
    let text = std::fs::read_to_string(run.join("config.toml"))
        .with_context(|| format!("reading {}/config.toml", run.display()))?;
    let config = RunConfig::from_toml(&text)?;
    let (env, _) = policy_lab_envs::make(&config.env)?;
    let hidden = match config.algo {
        Algo::Reinforce => &config.reinforce.hidden,
        Algo::Trpo => &config.trpo.hidden,
        Algo::Ppo => &config.ppo.hidden,
        Algo::Grpo => &config.grpo.hidden,
    };
    let fresh = Mlp::<B>::new(env.obs_dim(), hidden, env.num_actions(), 0.01, device);
    let path = run.join("policy.mpk");
    let record = CompactRecorder::new()
        .load(path.clone(), device)
        .with_context(|| format!("reading the checkpoint {}", path.display()))?;
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
