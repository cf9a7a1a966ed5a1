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
//! model/          the checkpoint (weights, shape, tokenizer; see `lm::checkpoint`)
//! summary.json    the held-out accuracy at the start and the end, and the wall time
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use policy_lab_envs::{Arithmetic, ArithmeticConfig, EnvRng, Split};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::checkpoint::{load_policy, save_lm};
use super::model::{Transformer, TransformerConfig};
use super::sft::{sft_loss, LmError};
use super::task::{evaluate_accuracy, task_tokenizer, Accuracy};
use super::tokenizer::{LmTokenizer, Tokenizer};
use crate::algos::grpo::GrpoConfig;
use crate::algos::grpo_lm::GrpoLm;
use crate::algos::ppo::PpoConfig;
use crate::algos::ppo_lm::PpoLm;
use crate::backend::Device;
use crate::lm::parallel::grpo_data_parallel;
use crate::train::write_atomic;
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
    /// The longest completion sampled; `None` is the task's answer limit plus one for EOS.
    pub max_completion_length: Option<usize>,
    /// Data-parallel GRPO over this many devices (`lm::parallel`): `cuda` devices 0, 1, ...;
    /// on `cpu`, peers that share the cores (for testing). 1 is one device.
    pub devices: usize,
}

impl Default for RlConfig {
    fn default() -> Self {
        Self {
            iterations: 1000,
            eval_every: 50,
            max_completion_length: None,
            devices: 1,
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
    pub task: ArithmeticConfig,
    pub model: ModelShape,
    pub sft: SftConfig,
    pub rl: RlConfig,
    pub grpo: GrpoConfig,
    /// PPO with a value head; it samples one completion per prompt for
    /// `grpo.num_groups * grpo.num_generations` prompts, the same batch as GRPO.
    pub ppo: PpoConfig,
}

impl Default for LmRunConfig {
    fn default() -> Self {
        Self {
            algo: LmAlgo::Sft,
            seed: 1,
            device: Device::Cpu,
            task: ArithmeticConfig::default(),
            model: ModelShape::default(),
            sft: SftConfig::default(),
            rl: RlConfig::default(),
            grpo: GrpoConfig {
                num_groups: 16,
                num_generations: 8,
                learning_rate: 2e-4,
                // Without it, most groups of a sharp SFT model soon score all right or all
                // wrong, teach nothing, and held-out accuracy stalls (BENCHMARKS.md).
                dynamic_sampling: true,
                ..GrpoConfig::default()
            },
            ppo: PpoConfig {
                learning_rate: 2e-4,
                anneal_lr: false,
                gamma: 1.0,
                gae_lambda: 0.95,
                num_minibatches: 1,
                update_epochs: 1,
                ent_coef: 0.0,
                vf_coef: 0.1,
                max_grad_norm: 1.0,
                ..PpoConfig::default()
            },
        }
    }
}

impl LmRunConfig {
    /// Reads a TOML file's text; unknown keys and invalid values are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        // The file's values go over these defaults, key by key: a `[grpo]` table that sets
        // only `temperature` keeps the language-model defaults of the other GRPO settings
        // (not `GrpoConfig::default()`, which is tuned for the toy environments).
        let file: toml::Value = toml::from_str(text).context("reading the lm config")?;
        let mut merged = toml::Value::try_from(Self::default())?;
        merge(&mut merged, file);
        let config: Self = merged.try_into().context("reading the lm config")?;
        config.validate()?;
        Ok(config)
    }
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("an lm config is always TOML")
    }
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        Arithmetic::new(self.task.clone()).map_err(|e| ConfigError(format!("task: {e}")))?;
        let m = &self.model;
        if m.d_model == 0 || m.n_heads == 0 || m.d_model % m.n_heads != 0 {
            return bad(format!(
                "model: d_model ({}) must be a positive multiple of n_heads ({})",
                m.d_model, m.n_heads
            ));
        }
        if m.n_layers == 0 || m.d_ff == 0 || m.max_seq_len == 0 {
            return bad("model: n_layers, d_ff and max_seq_len must be at least 1".into());
        }
        let s = &self.sft;
        if s.steps == 0 || s.batch_size == 0 || s.eval_every == 0 {
            return bad("sft: steps, batch_size and eval_every must be at least 1".into());
        }
        if !(s.learning_rate > 0.0 && s.learning_rate.is_finite()) {
            return bad("sft: learning_rate must be positive".into());
        }
        if self.rl.eval_every == 0 || self.rl.max_completion_length == Some(0) {
            return bad("rl: eval_every and max_completion_length must be at least 1".into());
        }
        if self.rl.devices == 0 {
            return bad("rl: devices must be at least 1".into());
        }
        if self.rl.devices > 1 && self.algo == LmAlgo::Ppo {
            return bad("rl: data parallelism (devices > 1) is implemented for GRPO only".into());
        }
        if self.grpo.num_groups % self.rl.devices != 0 {
            return bad(format!(
                "rl: grpo.num_groups ({}) must be a multiple of devices ({})",
                self.grpo.num_groups, self.rl.devices
            ));
        }
        self.grpo.validate()?;
        self.ppo.validate()
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
    /// The longest completion RL samples.
    pub fn max_completion_length(&self) -> usize {
        self.rl
            .max_completion_length
            .unwrap_or(self.task.completion_limit() + 1)
    }
    fn env(&self, split: Split) -> Result<Arithmetic> {
        Ok(Arithmetic::new(ArithmeticConfig {
            split,
            ..self.task.clone()
        })?)
    }
}

/// `over`'s keys written into `base`, tables merged key by key.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(b) if b.is_table() && value.is_table() => merge(b, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
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
}

impl LmAlgo {
    pub fn name(self) -> &'static str {
        match self {
            LmAlgo::Sft => "sft",
            LmAlgo::Grpo => "grpo",
            LmAlgo::Ppo => "ppo",
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

/// SFT from a fresh model on the task's demonstrations, stopping at `sft.stop_at_accuracy`.
pub fn run_sft<B: AutodiffBackend>(
    config: &LmRunConfig,
    device: &B::Device,
    out: &Path,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    config.validate()?;
    let mut log = RunLog::create(out, config)?;
    let tokenizer = task_tokenizer();
    let shape = config.transformer(tokenizer.vocab_size());
    let mut model: Transformer<B> =
        crate::backend::seeded::<B, _>(device, config.seed, || shape.init(device));
    let train_env = config.env(Split::Train)?;
    let test_env = config.env(Split::Test)?;
    let mut rng = EnvRng::seed_from_u64(config.seed);
    let s = &config.sft;
    let mut optim = burn::optim::AdamWConfig::new()
        .with_weight_decay(0.0)
        .init();
    let mut last = Accuracy::default();
    let mut steps = 0;
    while steps < s.steps {
        let pairs: Vec<(String, String)> = (0..s.batch_size)
            .map(|_| train_env.demonstration(&mut rng))
            .collect();
        let loss = sft_loss(&model, &tokenizer, &pairs)?;
        let mut m = Metrics::new();
        m.insert("loss", crate::scalar(&loss));
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
        model = burn::optim::Optimizer::step(&mut optim, s.learning_rate, model, grads);
        steps += 1;
        m.insert("step", steps as f64);
        m.insert("global_step", (steps * s.batch_size) as f64);
        let done = steps % s.eval_every == 0 || steps == s.steps;
        if done {
            last = evaluate_accuracy(&model.valid(), &tokenizer, &test_env, None)?;
            m.insert("test_accuracy", last.accuracy);
        }
        log.row(m, steps, s.steps, progress)?;
        if done && last.accuracy >= s.stop_at_accuracy {
            break;
        }
    }
    let tokenizer = LmTokenizer::Char(tokenizer);
    log.finish(&model, &shape, &tokenizer, None, last, steps)
}

/// RL (`algo`) from the checkpoint in `init`, with the held-out accuracy measured along
/// the way, on `devices` (more than one: data-parallel GRPO, one peer per device).
pub fn run_rl<B: AutodiffBackend>(
    config: &LmRunConfig,
    init: &Path,
    devices: &[B::Device],
    out: &Path,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    let device = devices.first().context("run_rl needs a device")?;
    config.validate()?;
    if config.algo == LmAlgo::Sft {
        bail!("run_rl needs algo = grpo or ppo; SFT is run_sft");
    }
    let tokenizer = task_tokenizer();
    let loaded = load_policy::<B>(init, Some(&tokenizer), device)?;
    let tokenizer = loaded.tokenizer;
    let needed = 1 + config.task.digits as usize * 2 + 2 + config.max_completion_length();
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
    let mut log = RunLog::create(out, config)?;
    let train_env = config.env(Split::Train)?;
    let test_env = config.env(Split::Test)?;
    let max_len = config.max_completion_length();
    let start = evaluate_accuracy(&loaded.model.valid(), &tokenizer, &test_env, None)?;
    writeln!(
        progress,
        "start: held-out accuracy {:.3} on {} problems",
        start.accuracy, start.problems
    )?;
    // The curve starts at the checkpoint's accuracy.
    let mut m = Metrics::new();
    m.insert("iteration", 0.0);
    m.insert("global_step", 0.0);
    m.insert("test_accuracy", start.accuracy);
    log.row(m, 0, config.rl.iterations, progress)?;
    let n = config.rl.iterations;
    let mut last = start.clone();
    // After each iteration, on one device or on peer 0 of several: the step count (the task
    // is one step per completion, so environment steps are completions), the held-out
    // accuracy now and then, a log row.
    let mut record = |it: usize, mut m: Metrics, model: &Transformer<B>| -> Result<()> {
        m.insert("iteration", it as f64);
        m.insert("global_step", m["completions_seen"]);
        if it % config.rl.eval_every == 0 || it == n {
            last = evaluate_accuracy(&model.valid(), &tokenizer, &test_env, None)?;
            m.insert("test_accuracy", last.accuracy);
        }
        log.row(m, it, n, progress)
    };
    let model = if devices.len() > 1 {
        if config.algo != LmAlgo::Grpo {
            bail!("data parallelism (devices > 1) is implemented for GRPO only");
        }
        grpo_data_parallel(
            config.grpo.clone(),
            max_len,
            loaded.model,
            train_env,
            tokenizer.clone(),
            config.seed,
            devices.to_vec(),
            n,
            |it, m, model| record(it, m, model).map_err(|e| LmError::Stopped(format!("{e:#}"))),
        )?
    } else {
        let mut learner = match config.algo {
            LmAlgo::Sft => unreachable!("refused above"),
            LmAlgo::Grpo => LmLearner::Grpo(Box::new(GrpoLm::new(
                config.grpo.clone(),
                max_len,
                loaded.model,
                train_env,
                tokenizer.clone(),
                config.seed,
            )?)),
            LmAlgo::Ppo => LmLearner::Ppo(Box::new(PpoLm::new(
                config.ppo.clone(),
                config.grpo.num_groups * config.grpo.num_generations,
                max_len,
                loaded.model,
                train_env,
                tokenizer.clone(),
                config.seed,
            )?)),
        };
        for it in 1..=n {
            let m = learner.iterate()?;
            record(it, m, learner.model())?;
        }
        learner.model().clone()
    };
    log.finish(&model, &loaded.config, &tokenizer, Some(start), last, n)
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
    Ok(evaluate_accuracy(
        &loaded.model,
        &loaded.tokenizer,
        &env,
        None,
    )?)
}

/// GRPO or PPO, behind one `iterate`.
enum LmLearner<B: AutodiffBackend> {
    Grpo(Box<GrpoLm<B, Arithmetic, LmTokenizer>>),
    Ppo(Box<PpoLm<B, Arithmetic, LmTokenizer>>),
}

impl<B: AutodiffBackend> LmLearner<B> {
    fn iterate(&mut self) -> Result<Metrics, LmError> {
        match self {
            LmLearner::Grpo(l) => l.iterate(),
            LmLearner::Ppo(l) => l.iterate(),
        }
    }
    fn model(&self) -> &Transformer<B> {
        match self {
            LmLearner::Grpo(l) => &l.model,
            LmLearner::Ppo(l) => l.policy(),
        }
    }
}

/// The run folder being written: config, metrics and progress.
struct RunLog {
    out: PathBuf,
    jsonl: std::fs::File,
    started: Instant,
}

impl RunLog {
    fn create(out: &Path, config: &LmRunConfig) -> Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
        let jsonl = std::fs::File::create(out.join("metrics.jsonl"))?;
        Ok(Self {
            out: out.to_path_buf(),
            jsonl,
            started: Instant::now(),
        })
    }

    /// Writes one row; a non-finite value stops the run, naming it.
    fn row(
        &mut self,
        mut m: Metrics,
        done: usize,
        total: usize,
        progress: &mut (dyn Write + Send),
    ) -> Result<()> {
        m.insert("time", self.started.elapsed().as_secs_f64());
        if let Some((k, v)) = m.iter().find(|(k, v)| !v.is_finite() && **k != "grad_norm") {
            bail!("step {done} produced {k} = {v}; stopping");
        }
        writeln!(self.jsonl, "{}", serde_json::to_string(&m)?)?;
        let show = |k: &str| m.get(k).map_or("-".into(), |v| format!("{v:.3}"));
        if m.contains_key("test_accuracy") || done == total || done % 10 == 0 {
            writeln!(
                progress,
                "{done:>6}/{total}  loss {}  reward {}  test accuracy {}  {:.0}s",
                show("loss"),
                show("reward"),
                show("test_accuracy"),
                m["time"]
            )?;
        }
        Ok(())
    }

    fn finish<B: burn::tensor::backend::Backend>(
        self,
        model: &Transformer<B>,
        shape: &TransformerConfig,
        tokenizer: &LmTokenizer,
        start: Option<Accuracy>,
        end: Accuracy,
        iterations: usize,
    ) -> Result<LmSummary> {
        let model_dir = self.out.join("model");
        save_lm(&model_dir, model, shape, tokenizer)?;
        let summary = LmSummary {
            start,
            end,
            iterations,
            seconds: self.started.elapsed().as_secs_f64(),
            model: model_dir,
        };
        write_atomic(
            &self.out.join("summary.json"),
            serde_json::to_string_pretty(&summary)?.as_bytes(),
        )?;
        Ok(summary)
    }
}
