//! The run layer: every run, toy or language model, goes through here. It owns the run
//! folder ([`folder`]), drives a [`Learner`] (iterate, log, checkpoint, stop), answers
//! Ctrl-C ([`interrupt`]) and shows progress ([`progress`]). The runners built on it:
//! [`train`] (the toy environments), [`lm`] (language models: SFT, the reward model, GRPO
//! (data-parallel too), PPO), the main job ([`ladder`]), and what reads runs or models
//! ([`evaluate`], [`plot`], [`play`], [`generate`]).
//!
//! The loop of [`drive`], for any algorithm:
//!
//! ```text
//! until the budget is spent:
//!     metrics = learner.iterate()
//!     after(iteration, metrics)             e.g. the held-out accuracy of a language model
//!     folder.log(metrics)                   a non-finite metric stops the run, naming it
//!     stop = learner.agree_to_stop(Ctrl-C)  every process of a run over machines agrees
//!     every checkpoint_every iterations, at the end, and on Ctrl-C:
//!         refuse non-finite weights, save the learner, the policy and where the loop stood
//!     on Ctrl-C: stop with exit status 130 and "resume with ..."
//! ```

pub mod evaluate;
pub mod figure;
pub mod folder;
pub mod generate;
pub mod interrupt;
pub mod ladder;
pub mod lm;
pub mod play;
pub mod plot;
pub mod progress;
pub mod train;

use anyhow::{bail, Result};

pub use folder::{MetricsRow, RunFolder, RunState, Start};
pub use interrupt::Interrupted;
pub use progress::Progress;

use crate::core::learner::Learner;
use crate::Metrics;

/// How much a run does: iterations, or environment steps (the learner's global step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    Iterations(usize),
    Steps(usize),
}

/// The hook [`drive`] calls after each iteration, before its row is logged (it may add
/// metrics): `(iteration, metrics, learner)`.
pub type After<'a, L> = Box<dyn FnMut(usize, &mut Metrics, &L) -> Result<()> + 'a>;

/// The hook that saves what users read besides the resume state (`policy.mpk`, a `model/`
/// folder) into the run folder, at each checkpoint: `(learner, run folder)`.
pub type SavePolicy<'a, L> = Box<dyn Fn(&L, &std::path::Path) -> Result<()> + 'a>;

/// How [`drive`] runs a learner: made by [`Drive::new`], with the hooks a run needs added.
pub struct Drive<'a, L: Learner + ?Sized> {
    /// The run's settings as written in `config.toml` (frozen into every checkpoint).
    pub config_toml: &'a str,
    /// Write a checkpoint every this many iterations (and at the end).
    pub checkpoint_every: usize,
    pub budget: Budget,
    /// Whether to stop before the budget is spent (checked after each iteration).
    pub stop_early: Box<dyn Fn() -> bool + 'a>,
    pub after: After<'a, L>,
    pub save_policy: SavePolicy<'a, L>,
}

impl<'a, L: Learner + ?Sized> Drive<'a, L> {
    /// A run of `budget` with `config.toml`'s text `config_toml`, a checkpoint every
    /// `checkpoint_every` iterations, and no hooks.
    pub fn new(config_toml: &'a str, checkpoint_every: usize, budget: Budget) -> Self {
        Self {
            config_toml,
            checkpoint_every,
            budget,
            stop_early: Box::new(|| false),
            after: Box::new(|_, _, _| Ok(())),
            save_policy: Box::new(|_, _| Ok(())),
        }
    }
    /// With `after` called after each iteration ([`After`]).
    pub fn after(self, after: impl FnMut(usize, &mut Metrics, &L) -> Result<()> + 'a) -> Self {
        let after = Box::new(after);
        Self { after, ..self }
    }
    /// With `save` writing what users read into the run folder at each checkpoint
    /// ([`SavePolicy`]).
    pub fn save_policy(self, save: impl Fn(&L, &std::path::Path) -> Result<()> + 'a) -> Self {
        let save_policy = Box::new(save);
        Self {
            save_policy,
            ..self
        }
    }
    /// Stopping as soon as `stop` says so (after an iteration, which is checkpointed).
    pub fn stop_early(self, stop: impl Fn() -> bool + 'a) -> Self {
        let stop_early = Box::new(stop);
        Self { stop_early, ..self }
    }
    /// Whether the budget is spent after `it` iterations, or the run asked to stop.
    fn done(&self, learner: &L, it: usize) -> bool {
        (self.stop_early)() || self.position(learner, it) >= self.total()
    }
    /// Where the progress bar stands, in the budget's unit.
    fn position(&self, learner: &L, it: usize) -> usize {
        match self.budget {
            Budget::Iterations(_) => it,
            Budget::Steps(_) => learner.global_step(),
        }
    }
    fn total(&self) -> usize {
        match self.budget {
            Budget::Iterations(n) | Budget::Steps(n) => n,
        }
    }
}

/// Where a run ended.
pub struct Driven {
    pub iterations: usize,
    pub seconds: f64,
    /// Every iteration's metrics, the resumed ones included.
    pub history: Vec<MetricsRow>,
}

/// Runs `learner` in `folder` from `state` (zero for a new run, with the rows kept so far:
/// what [`resume_from`] returns) until its budget is spent, logging every iteration and
/// checkpointing as the module docs say.
pub fn drive<L: Learner + ?Sized>(
    learner: &mut L,
    folder: &mut RunFolder,
    (state, mut history): (RunState, Vec<MetricsRow>),
    mut how: Drive<'_, L>,
    progress: &mut Progress<'_>,
) -> Result<Driven> {
    interrupt::install();
    let started = std::time::Instant::now();
    let seconds = || state.seconds + started.elapsed().as_secs_f64();
    let mut it = state.iterations;
    // ANCHOR: run_drive
    while !how.done(learner, it) {
        let mut m = learner.iterate()?;
        it += 1;
        m.insert("iteration", it as f64);
        m.insert("time", seconds());
        m.insert("SPS", learner.global_step() as f64 / seconds().max(1e-9));
        (how.after)(it, &mut m, learner)?;
        folder.log(it, &m)?;
        progress.update(how.position(learner, it), &m)?;
        history.push(m.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        let stop = learner.agree_to_stop(interrupt::requested())?;
        if it.is_multiple_of(how.checkpoint_every) || how.done(learner, it) || stop {
            checkpoint(learner, folder, it, seconds(), &how)?;
        }
        if stop {
            progress.finish();
            return Err(Interrupted {
                iteration: it,
                resume: folder.resume_command().to_string(),
            }
            .into());
        }
    }
    // ANCHOR_END: run_drive
    Ok(Driven {
        iterations: it,
        seconds: seconds(),
        history,
    })
}

/// For [`Start::Resume`], restores `learner` from the folder's newest checkpoint (after
/// checking that `config_toml` differs from its settings only in the `allowed` keys) and
/// returns where the loop stood and the rows kept; for a new run, a fresh start.
pub fn resume_from<L: Learner + ?Sized>(
    folder: &mut RunFolder,
    learner: &mut L,
    config_toml: &str,
    allowed: &[&str],
    start: Start,
) -> Result<(RunState, Vec<MetricsRow>)> {
    if start != Start::Resume {
        return Ok((RunState::default(), Vec::new()));
    }
    let (ckpt, state, rows) = folder.resume_at(config_toml, allowed)?;
    learner.load(&ckpt)?;
    Ok((state, rows))
}

/// Saves the learner and its policy, unless a weight is not finite.
fn checkpoint<L: Learner + ?Sized>(
    learner: &L,
    folder: &mut RunFolder,
    iterations: usize,
    seconds: f64,
    how: &Drive<'_, L>,
) -> Result<()> {
    if !learner.is_finite() {
        bail!(
            "after update {iterations} the network's weights are not finite (the run \
             diverged: try a smaller learning rate); nothing was saved. {}",
            folder.newest_checkpoint()
        );
    }
    let state = RunState {
        iterations,
        seconds,
        rows: None,
    };
    folder.checkpoint(state, how.config_toml, |dir| learner.save(dir))?;
    (how.save_policy)(learner, folder.dir())
}
